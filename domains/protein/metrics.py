"""The metrics: rank correlation of predicted and measured mutation effects, and the statistics
that compare generated sequences with the natural family."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from latente.domains.protein.data import ALPHABET, GAP_CODE, identities


def spearman(predicted: np.ndarray, measured: np.ndarray) -> float:
    """Spearman ρ; NaN below 3 mutants, where a rank correlation means nothing."""
    if len(predicted) < 3:
        return float("nan")
    return float(spearmanr(predicted, measured).statistic)


def nearest_identity(query: np.ndarray, reference: np.ndarray, exclude_same_index: bool = False) -> np.ndarray:
    """Identity of each query sequence to its nearest reference sequence.

    With `exclude_same_index`, query row i is reference row i and is not its own neighbour
    (the natural-vs-natural reference figure).
    """
    best = np.empty(len(query))
    for lo, identity in identities(query, reference):
        if exclude_same_index:
            rows = np.arange(len(identity))
            identity[rows, rows + lo] = -1.0
        best[lo : lo + len(identity)] = identity.max(1).values.numpy()
    return best


def column_frequencies(codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """[L, 21] (weighted) state frequencies per column."""
    w = np.ones(len(codes)) if weights is None else np.asarray(weights, dtype=np.float64)
    freq = np.stack([w @ (codes == state) for state in range(len(ALPHABET))], axis=1)
    return freq / w.sum()


def column_entropy(freq: np.ndarray) -> np.ndarray:
    """Per-column Shannon entropy in bits over the 21 states."""
    safe = np.where(freq > 0, freq, 1.0)
    return -(freq * np.log2(safe)).sum(1)


def compare_with_natural(generated: np.ndarray, natural: np.ndarray, natural_weights: np.ndarray, seed: int = 0) -> dict:
    """Generated vs natural: identity to the nearest natural sequence, column entropy, gaps.

    The natural identity figure takes as many natural sequences as were generated (drawn by
    sequence weight, the distribution the model is trained on) and excludes each one itself.
    Natural frequencies are weighted; generated ones are plain counts. The natural entry's
    `picked` holds the rows of `natural` that were drawn.
    """
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(natural), size=min(len(generated), len(natural)), replace=False, p=natural_weights / natural_weights.sum())
    reordered = np.concatenate([picked, np.setdiff1d(np.arange(len(natural)), picked)])
    natural_identity = nearest_identity(natural[picked], natural[reordered], exclude_same_index=True)
    gen_freq, nat_freq = column_frequencies(generated), column_frequencies(natural, natural_weights)
    out = {}
    for name, identity, freq in (("generated", nearest_identity(generated, natural), gen_freq),
                                 ("natural", natural_identity, nat_freq)):
        entropy = column_entropy(freq)
        out[name] = {
            "metrics": {
                "identity_nearest": float(identity.mean()),
                "identity_nearest_median": float(np.median(identity)),
                "entropy_bits": float(entropy.mean()),
                "gap_fraction": float(freq[:, GAP_CODE].mean()),
                "n": len(identity),
            },
            "identity": identity,
            "entropy": entropy,
        }
    out["natural"]["picked"] = picked
    return out


def frequency_agreement(generated: np.ndarray, natural: np.ndarray, natural_weights: np.ndarray) -> dict[str, float]:
    """How well generated sequences reproduce the family's statistics, as Pearson r against the natural ones:
    `site_r` over the single-column state frequencies f_i(a), `pair_r` over the pair covariances
    C_ij(a, b) = f_ij(a, b) − f_i(a) f_j(b) of every two different columns (the coupling signal that a
    site-independent model cannot carry). Natural statistics are weighted, generated ones plain."""
    states = len(ALPHABET)

    def statistics(codes: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.eye(states, dtype=np.float32)[codes].reshape(len(codes), -1)  # [N, L·21]
        w = (weights / weights.sum()).astype(np.float32)
        f = w @ x
        return f, (x * w[:, None]).T @ x - np.outer(f, f)

    (f_gen, c_gen), (f_nat, c_nat) = statistics(generated, np.ones(len(generated))), statistics(natural, natural_weights)
    column = np.repeat(np.arange(generated.shape[1]), states)
    upper = column[:, None] < column[None, :]
    return {"site_r": float(np.corrcoef(f_gen, f_nat)[0, 1]),
            "pair_r": float(np.corrcoef(c_gen[upper], c_nat[upper])[0, 1])}
