"""Protein: a family VAE on a multiple sequence alignment scores mutation effects (ΔELBO) against a
deep mutational scan and generates new sequences of the family."""

DOMAIN = "protein"
