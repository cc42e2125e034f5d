"""DeepSequence sequence weights: 1 / number of neighbours within 1 − θ identity.

Identity of sequence i to j is (positions where both hold the same amino acid) divided by
the number of non-gap positions of i itself; j is a neighbour of i when that exceeds 1 − θ
(i is always its own neighbour). Neff is the sum of the weights.
"""
from __future__ import annotations

import numpy as np
import torch

from latente.domains.protein.alignment import AMINO_ACIDS, GAP_CODE


# bfloat16 holds integers up to 256 exactly, so a product over at most 256 positions
# gives exact match counts at several times the float32 speed.
EXACT_POSITIONS = 256


def _residue_one_hot(codes: np.ndarray) -> list[torch.Tensor]:
    """bfloat16 one-hot of the amino acids (gaps all zero), in chunks of ≤ 256 positions."""
    x = torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), GAP_CODE + 1)[..., : len(AMINO_ACIDS)]
    return [x[:, lo : lo + EXACT_POSITIONS].reshape(len(codes), -1).to(torch.bfloat16)
            for lo in range(0, codes.shape[1], EXACT_POSITIONS)]


def identities(query: np.ndarray, reference: np.ndarray, block: int = 1024):
    """Yield (row offset, [b, N_ref] identity of each query row to each reference row), blocked.

    Identity = same-residue positions / non-gap positions of the query sequence.
    """
    q_chunks, r_chunks = _residue_one_hot(query), _residue_one_hot(reference)
    lengths = torch.as_tensor((query != GAP_CODE).sum(1), dtype=torch.float64).clamp(min=1)
    with torch.no_grad():
        for lo in range(0, len(query), block):
            matches = sum((q[lo : lo + block] @ r.T).double() for q, r in zip(q_chunks, r_chunks))
            yield lo, matches / lengths[lo : lo + block, None]


def sequence_weights(codes: np.ndarray, theta: float = 0.2, block: int = 1024) -> np.ndarray:
    """Weights of every sequence, by blocked one-hot matrix products (exact integer counts)."""
    neighbours = np.empty(len(codes), dtype=np.int64)
    for lo, identity in identities(codes, codes, block):
        neighbours[lo : lo + len(identity)] = (identity > 1 - theta).sum(1).clamp(min=1).numpy()
    return 1.0 / neighbours


def sequence_weights_loop(codes: np.ndarray, theta: float = 0.2) -> np.ndarray:
    """The straightforward row-by-row NumPy reference that tests and the benchmark compare against."""
    residue = codes != GAP_CODE
    weights = np.empty(len(codes), dtype=np.float64)
    for i in range(len(codes)):
        matches = ((codes == codes[i]) & residue[i]).sum(1)
        identity = matches / max(int(residue[i].sum()), 1)
        weights[i] = 1.0 / max(int((identity > 1 - theta).sum()), 1)
    return weights
