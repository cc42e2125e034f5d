"""Protein: a family VAE on a multiple sequence alignment scores mutation effects (the difference of a
bound on log p(x), the ELBO or importance-weighted, mutant − wild type) against a deep mutational scan and
generates new sequences of the family."""

DOMAIN = "protein"
BOUNDS = ("elbo", "iwae")  # the bounds on log p(x) a mutant can be scored by (domains/protein/model.py); the first is the default
