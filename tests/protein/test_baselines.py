"""The site-independent baseline on a hand-made alignment."""
from __future__ import annotations

import numpy as np

from latente.domains.protein.baselines import profile, site_independent_effects
from latente.domains.protein.data import encode


def test_profile_and_effects_by_hand():
    codes = np.stack([encode("AC"), encode("AD"), encode("GC")])
    weights = np.array([1.0, 1.0, 0.5])
    log_p = profile(codes, weights, pseudocount=1.0)
    # column 0: A 2 + 1, G 0.5 + 1, the other 19 states 1 → total 23.5
    assert np.isclose(np.exp(log_p[0, 0]), 3 / 23.5)
    assert np.allclose(np.exp(log_p).sum(1), 1.0)
    wild_type = encode("AC")
    mutants = np.stack([encode("GC"), encode("AD"), encode("GD"), encode("WC"), encode("AC")])
    effects = site_independent_effects(log_p, wild_type, mutants)
    # column 1: C 1 + 0.5 + 1 = 2.5, D 1 + 1 = 2
    expected = [np.log(1.5 / 3), np.log(2 / 2.5), np.log(1.5 / 3) + np.log(2 / 2.5), np.log(1 / 3), 0.0]
    assert np.allclose(effects, expected)
