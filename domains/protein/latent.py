"""A 2-D view of the latent space: PCA of the posterior means, coloured by sequence cluster.

The headers of UniProt-derived alignments carry at most a species mnemonic (`..._ECOLX`,
`..._9BURK`), not a taxonomy with a few groups to colour by, so the colours are k-means
clusters of the sequences themselves; the mnemonic is kept as a column for other uses.
"""
from __future__ import annotations

import re

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from latente.domains.protein.alignment import one_hot

SPECIES = re.compile(r"_([0-9A-Z]{3,5})(?:/\d+-\d+)?$")


def species_code(seq_id: str) -> str:
    """The UniProt species mnemonic at the end of an entry name, or '' when there is none."""
    match = SPECIES.search(seq_id)
    return match.group(1) if match else ""


def project(means: np.ndarray) -> np.ndarray:
    """[N, 2] principal components of the latent means."""
    return PCA(n_components=2, random_state=0).fit_transform(means)


def sequence_clusters(codes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels of the one-hot sequences, ordered so that cluster 0 is the largest."""
    k = min(k, len(codes))
    flat = one_hot(codes).reshape(len(codes), -1)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(flat)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    return np.argsort(order)[labels]
