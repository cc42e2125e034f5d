"""A short real training run on a cropped copy of the real alignment beats a random predictor."""
from __future__ import annotations

import numpy as np

from latente.domains.protein.data import read_alignment, read_mutations
from latente.domains.protein.data import encode
from latente.domains.protein.metrics import spearman
from latente.domains.protein import BOUNDS
from latente.domains.protein.model import ensemble_effects, load_family, sequence_draws
from tests.tiny import PROTEIN


def test_short_training_beats_random(tiny_model, cropped_alignment, blat_dms):
    ensemble = load_family(tiny_model)
    loaded = ensemble.first
    assert loaded.meta["model"]["name"] == "dense_vae" and loaded.meta["data"]["columns"] == 253
    fit = loaded.info["fit"]
    assert fit["epochs_run"] == PROTEIN["train"]["trainer"]["epochs"] == len(fit["history"])
    assert fit["resumed_from_epoch"] == 0 and 0 < fit["cpu_seconds"] and 0 < fit["seconds"]
    history = fit["history"]
    assert history[-1]["train/recon"] < history[0]["train/recon"]  # it learned something
    focus = read_alignment(cropped_alignment).focus
    mutations = read_mutations(blat_dms, focus, "mutant", "2500")
    rows = np.random.default_rng(0).choice(len(mutations.mutants), 800, replace=False)
    mutations.codes, mutations.scores = mutations.codes[rows], mutations.scores[rows]
    effects = ensemble_effects(ensemble.models, encode(focus.sequence), mutations.codes, samples=4, seed=0)
    # a random predictor on 800 mutants has |ρ| < 0.15 with probability > 99.99 %
    for bound in BOUNDS:
        rho = spearman(effects[bound].mean, mutations.scores)
        assert rho > 0.3, (bound, rho)


def test_natural_sequences_score_above_shuffled_ones(tiny_model, cropped_alignment):
    loaded = load_family(tiny_model).first
    natural = read_alignment(cropped_alignment).codes[:50]
    rng = np.random.default_rng(1)
    shuffled = np.stack([row[rng.permutation(len(row))] for row in natural])
    assert sequence_draws(loaded.model, natural, 4).elbo.mean() > sequence_draws(loaded.model, shuffled, 4).elbo.mean() + 50
