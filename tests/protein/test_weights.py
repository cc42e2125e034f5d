"""Sequence weights: blocked products against a brute-force loop and a hand computation."""
from __future__ import annotations

import numpy as np
import pytest

from latente.domains.protein.data import encode, read_alignment, sequence_weights, sequence_weights_loop


def random_family(n: int, length: int, seed: int) -> np.ndarray:
    """Random sequences plus mutated copies and gappy rows, so that neighbour counts vary."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 21, (n, length)).astype(np.int8)
    parents = rng.integers(0, n // 4, n // 2)
    copies = codes[parents].copy()
    flips = rng.random(copies.shape) < rng.uniform(0.0, 0.4, (len(copies), 1))
    copies[flips] = rng.integers(0, 21, flips.sum())
    codes[n // 2 :] = copies
    codes[rng.random(codes.shape) < 0.1] = 20
    return codes


@pytest.mark.parametrize("length, block", [(40, 7), (600, 64)])  # 600 > 256 positions: several exact chunks
def test_blocked_weights_equal_brute_force(length, block):
    codes = random_family(300, length, seed=length)
    fast = sequence_weights(codes, theta=0.2, block=block)
    slow = sequence_weights_loop(codes, theta=0.2)
    assert np.array_equal(fast, slow)
    assert 1.0 < fast.sum() < len(codes)  # some sequences do have neighbours


def test_weights_by_hand():
    # identity is measured on the non-gap length of the sequence itself:
    # a→b 4/5, b→a 4/4 (b has a gap), c is far from both
    codes = np.stack([encode("ACDEF"), encode("ACDE-"), encode("WWWWF"), encode("-----")])
    # theta 0.25: a's neighbours {a, b} (0.8 > 0.75), b's {a, b}, c alone, the all-gap row alone
    assert np.allclose(sequence_weights(codes, 0.25), [0.5, 0.5, 1.0, 1.0])
    # theta 0.2: 0.8 is not > 0.8, so a stands alone while b still counts a
    assert np.allclose(sequence_weights(codes, 0.2), [1.0, 0.5, 1.0, 1.0])
    assert np.allclose(sequence_weights_loop(codes, 0.2), [1.0, 0.5, 1.0, 1.0])


def test_neff_of_the_real_alignment(blat_alignment):
    # 2605.0225 by the brute-force reference: sequence_weights_loop(read_alignment(<the file>).codes, 0.2).sum()
    # (26 s, so measured once rather than rerun here)
    codes = read_alignment(blat_alignment).codes
    assert sequence_weights(codes, 0.2).sum() == pytest.approx(2605.0, abs=0.05)
