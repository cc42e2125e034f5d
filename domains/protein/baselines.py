"""The site-independent baseline: a weighted per-column profile with pseudo-counts.

Effect of a mutant = Σ over its substitutions of log p_l(mutant) − log p_l(wild type), with
p_l ∝ weighted count + pseudo-count over the 21 states of column l.
"""
from __future__ import annotations

import numpy as np

from latente.domains.protein.data import ALPHABET, MutationSet, WeightedAlignment, encode


def profile(codes: np.ndarray, weights: np.ndarray, pseudocount: float = 1.0) -> np.ndarray:
    """[L, 21] log-probabilities of each state per column."""
    counts = np.zeros((codes.shape[1], len(ALPHABET)), dtype=np.float64)
    for state in range(len(ALPHABET)):
        counts[:, state] = weights @ (codes == state)
    counts += pseudocount
    return np.log(counts / counts.sum(1, keepdims=True))


def site_independent_effects(log_profile: np.ndarray, wild_type: np.ndarray, mutated: np.ndarray) -> np.ndarray:
    """log p(mutant) − log p(wild type) under the profile, for each mutated sequence [M, L]."""
    columns = np.arange(log_profile.shape[0])
    return (log_profile[columns, mutated] - log_profile[columns, wild_type]).sum(1)


def baseline_effects(data: WeightedAlignment, mutations: MutationSet, pseudocount: float) -> np.ndarray:
    """The site-independent effect of each mutant, from the weighted profile of the whole alignment."""
    log_profile = profile(data.alignment.codes, data.weights, pseudocount)
    return site_independent_effects(log_profile, encode(data.alignment.focus.sequence), mutations.codes)
