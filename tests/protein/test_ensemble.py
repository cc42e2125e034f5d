"""The ensemble procedure: combining members (hand-computed), the ΔELBO standard error and its
calibration, the seeded weight-aware subsample, steps matching, the ensemble folder, and the
sampling knobs."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from latente.domains.protein import BOUNDS
from latente.domains.protein.data import GAP_CODE, Alignment, Focus, WeightedAlignment, encode, read_alignment, subsample, weigh
from latente.domains.protein.metrics import frequency_agreement
from latente.domains.protein.model import (
    ENSEMBLE, combine_members, elbo_effect, ensemble_effects, iwae_effect, leave_one_out_log_mean_exp, load_family,
    log_mean_exp, sample_sequences, sequence_draws,
)
from latente.domains.protein.training import MEMBER_SEED_STRIDE, split, steps_matched
from latente.shared.errors import UserError
from latente.shared.models import load_model
from tests.tiny import PROTEIN


def test_members_combine_by_hand():
    # member A: ΔELBO draws 1 and 3 → mean 2, sample variance 2, variance of the mean 2 / 2 = 1
    # member B: draws 0 and 0 → mean 0, variance 0; ensemble mean (2 + 0) / 2 = 1, SE √(1 + 0) / 2 = 0.5
    # (row 0 of each member's draws is the wild type's ELBO)
    effects = combine_members([elbo_effect(np.array([[0.0, 0.0], [1.0, 3.0], [2.0, 2.0]])),
                               elbo_effect(np.array([[1.0, -1.0], [1.0, -1.0], [5.0, 5.0]]))])
    assert np.allclose(effects.mean, [1.0, 3.5])
    # second mutant: A mean 2 var 0; B draws 4 and 6 → mean 5, sample variance 2, /2 = 1 → SE √1 / 2
    assert np.allclose(effects.se, [0.5, 0.5])
    assert np.allclose(effects.members, [[2.0, 2.0], [0.0, 5.0]])
    one_draw = combine_members([elbo_effect(np.array([[0.0], [1.0]]))])
    assert one_draw.mean.tolist() == [1.0] and math.isnan(one_draw.se[0])


def test_importance_weighted_effect_and_its_jackknife_by_hand():
    # wild type: log weights 0, 0 → log mean 0; mutant: log 3, 0 → log((3 + 1) / 2) = log 2
    delta, variance = iwae_effect(np.array([[0.0, 0.0], [math.log(3.0), 0.0]]))
    assert np.allclose(delta, [math.log(2.0)])
    # leaving draw 1 out: log 1 − log 1 = 0; leaving draw 2 out: log 3 − 0; their mean log 3 / 2;
    # jackknife (S − 1)/S Σ (θ − mean)² = ½ · 2 (log 3 / 2)² = (log 3)² / 4
    assert np.allclose(variance, [math.log(3.0) ** 2 / 4])
    # a constant shift of both sequences' weights in a draw (shared by mutant and wild type) cancels in the jackknife
    same = iwae_effect(np.array([[0.0, 5.0], [1.0, 6.0]]))
    assert np.allclose(same[0], [1.0]) and np.allclose(same[1], [0.0])
    one_draw = iwae_effect(np.array([[0.0], [2.0]]))
    assert one_draw[0].tolist() == [2.0] and math.isnan(one_draw[1][0])


def test_leave_one_out_log_mean_exp_keeps_the_small_terms():
    values = np.array([[0.0, -50.0, -60.0], [1.0, 2.0, 3.0]])
    by_hand = [[math.log((math.exp(a) + math.exp(b)) / 2) for a, b in ((-50.0, -60.0), (0.0, -60.0), (0.0, -50.0))],
               [math.log((math.exp(a) + math.exp(b)) / 2) for a, b in ((2.0, 3.0), (1.0, 3.0), (1.0, 2.0))]]
    # the largest left out: e^-50 + e^-60 would vanish against 1 if it were taken from the full sum
    assert np.allclose(leave_one_out_log_mean_exp(values), by_hand, rtol=1e-12, atol=0)


def test_log_mean_exp_by_hand_and_without_overflow():
    # log((e^0 + e^{log 3}) / 2) = log 2
    assert np.allclose(log_mean_exp(np.array([[0.0], [math.log(3.0)]])), [math.log(2.0)])
    assert np.allclose(log_mean_exp(np.array([[-1000.0, 1000.0], [-1000.0, 1000.0]])), [-1000.0, 1000.0])


def test_ensemble_of_one_is_the_member(tiny_model, cropped_alignment):
    ensemble = load_family(tiny_model)
    model = ensemble.models[0]
    codes = read_alignment(cropped_alignment).codes
    wild_type, mutants = codes[0], codes[1:9]
    draws = sequence_draws(model, codes[:9], 6, seed=2)
    alone = ensemble_effects([model], wild_type, mutants, 6, seed=2)
    assert set(alone) == set(BOUNDS)
    elbo = draws.elbo[1:] - draws.elbo[:1]
    assert np.allclose(alone["elbo"].mean, elbo.mean(1))
    assert np.allclose(alone["elbo"].se, elbo.std(1, ddof=1) / math.sqrt(6))
    iwae = log_mean_exp(draws.log_weight, axis=1)
    assert np.allclose(alone["iwae"].mean, iwae[1:] - iwae[0])
    both = ensemble_effects(ensemble.models, wild_type, mutants, 6, seed=2)
    for bound in BOUNDS:
        assert len(ensemble.models) == PROTEIN["train"]["members"] == len(both[bound].members)
        assert np.allclose(both[bound].mean, both[bound].members.mean(0))
        assert not np.allclose(both[bound].members[0], both[bound].members[1])


def test_standard_error_is_calibrated_and_shrinks_with_samples(tiny_model, cropped_alignment):
    """Independent estimates scatter as much as the stated error says, and more samples shrink it: by 16× the
    samples a quarter for the ELBO's mean of draws. The importance-weighted bound is the log of a mean of
    heavy-tailed weights (this 3-epoch model's posteriors are loose), which reaches that 1/√S rate only once
    the draws cover the tail: its jackknife must still state its error as it is. Both bounds come from the
    same runs, as in the pipeline."""
    models = load_family(tiny_model).models
    codes = read_alignment(cropped_alignment).codes
    mutants = codes[1:41]
    runs = {samples: [ensemble_effects(models, codes[0], mutants, samples, seed=10 + r) for r in range(8)] for samples in (8, 128)}
    for bound in BOUNDS:
        stated, observed = {}, {}
        for samples in (8, 128):
            estimates = [run[bound] for run in runs[samples]]
            stated[samples] = np.sqrt(np.mean([e.se ** 2 for e in estimates]))
            observed[samples] = np.sqrt(np.mean(np.var([e.mean for e in estimates], axis=0, ddof=1)))
            assert 0.6 < observed[samples] / stated[samples] < 1.6, (bound, samples, observed[samples], stated[samples])
        assert stated[128] < 0.7 * stated[8]
        if bound == "elbo":
            assert 0.15 < stated[128] / stated[8] < 0.35  # 1/√16 = 0.25


def test_ensemble_folder_layout_and_seeds(tiny_model, tiny_params):
    index = json.loads((tiny_model / ENSEMBLE).read_text())
    k = tiny_params.members
    assert index["members"] == [f"members/{i}" for i in range(k)]
    assert index["member_seeds"] == [tiny_params.trainer.seed + MEMBER_SEED_STRIDE * i for i in range(k)]
    ensemble = load_family(tiny_model)
    assert [m.info["seed"] for m in ensemble.members] == index["member_seeds"]
    # members differ (their own seeds) but all held out the same sequences (the procedure's seed)
    first, second = (dict(m.model.named_parameters()) for m in ensemble.members)
    assert not torch.equal(first["encoder.net.1.0.weight"], second["encoder.net.1.0.weight"])
    # a plain model folder loads as an ensemble of one
    single = load_family(tiny_model / "members" / "0")
    assert len(single.members) == 1 and single.seed is None
    assert torch.equal(single.models[0].encoder.net[1][0].weight, load_model(tiny_model / "members" / "0").model.encoder.net[1][0].weight)


def test_a_broken_ensemble_index_is_a_user_error(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "m"
    shutil.copytree(tiny_model, copy)
    (copy / ENSEMBLE).write_text(json.dumps({"seed": 0, "members": []}))
    with pytest.raises(UserError, match="lists no members"):
        load_family(copy)
    (copy / ENSEMBLE).write_text(json.dumps({"members": ["members/0"]}))
    with pytest.raises(UserError, match="not an ensemble index"):
        load_family(copy)


def _clustered_alignment() -> WeightedAlignment:
    """A focus, 100 copies of one sequence (weight 1/100 each: one cluster) and 100 sequences that are
    all far apart (weight 1 each)."""
    rng = np.random.default_rng(0)
    length = 40
    focus_codes = rng.integers(0, GAP_CODE, length)
    copy = rng.integers(0, GAP_CODE, length)
    distinct = rng.integers(0, GAP_CODE, (100, length))
    codes = np.concatenate([focus_codes[None], np.repeat(copy[None], 100, 0), distinct]).astype(np.int8)
    focus = Focus("F/1-40", 1, "".join("ACDEFGHIKLMNPQRSTVWY"[c] for c in focus_codes), tuple(range(length)))
    alignment = Alignment([f"s{i}" for i in range(len(codes))], codes, focus, 0, "clusters")
    data = weigh_codes(alignment)
    assert np.allclose(data.weights[1:101], 0.01) and np.allclose(data.weights[101:], 1.0)
    return data


def weigh_codes(alignment: Alignment) -> WeightedAlignment:
    from latente.domains.protein.data import sequence_weights

    return WeightedAlignment(alignment, sequence_weights(alignment.codes, 0.2), 0.2)


def test_subsample_is_seeded_keeps_the_focus_and_draws_by_weight():
    data = _clustered_alignment()
    shallow = subsample(data, 21, seed=3)
    assert shallow.alignment.shape == (21, 40) and shallow.alignment.ids[0] == "s0"
    assert shallow.alignment.ids == subsample(data, 21, seed=3).alignment.ids
    assert shallow.alignment.ids != subsample(data, 21, seed=4).alignment.ids
    from_cluster = sum(1 for i in shallow.alignment.ids[1:] if 1 <= int(i[1:]) <= 100)
    # by weight the cluster holds 1 / 101 of the mass: a uniform draw would take about half from it
    assert from_cluster <= 2
    assert np.allclose(shallow.weights, 1.0 / np.array([1 + (1 <= int(i[1:]) <= 100) * (from_cluster - 1) for i in shallow.alignment.ids]))
    assert subsample(data, 500, seed=0) is data


def test_steps_matched_by_hand():
    # 8355 sequences, 5 % held out: 8355 − 418 = 7937 train; 1000 → 1000 − 50 = 950; 7937 / 950 = 8.35 → 8
    assert steps_matched(1000, 8355, 0.05) == 8
    assert steps_matched(8355, 8355, 0.05) == 1
    assert steps_matched(250, 8355, 0.05) == round(7937 / (250 - 12))
    # without a validation split every sequence trains
    assert steps_matched(100, 1000, 0.0) == 10
    assert split(100, 0.05, 0)[1].size == 5


def test_sampling_knobs_by_hand(tiny_model):
    model = load_family(tiny_model).models[0]
    # latent scale 0 puts every z at 0; a tiny temperature then draws each column's most likely state
    # wherever the top two logits are 0.2 apart (odds e^-20 at temperature 0.01)
    drawn = sample_sequences([model], 4, seed=0, temperature=0.01, latent_scale=0.0)
    with torch.no_grad():
        logits = model.decode(torch.zeros(1, model.config.latent_dim))[0]  # [21, L]
    top = logits.topk(2, dim=0).values
    clear = (top[0] - top[1] > 0.2).numpy()
    assert clear.mean() > 0.5
    assert (drawn[:, clear] == logits.argmax(0).numpy()[clear]).all()
    # temperature 1 and scale 1 is the plain prior sample, and more diverse than a cooled one
    hot, cold = sample_sequences([model], 50, seed=1), sample_sequences([model], 50, seed=1, temperature=0.5)
    assert len({r.tobytes() for r in hot}) == 50 and (hot != hot[0]).mean() > (cold != cold[0]).mean()


def test_frequency_agreement_by_hand():
    coupled = np.array([[0, 1], [0, 1], [1, 2], [1, 2]], dtype=np.int8)
    same = frequency_agreement(coupled, coupled, np.ones(4))
    assert same["site_r"] == pytest.approx(1.0) and same["pair_r"] == pytest.approx(1.0)
    # the natural pairs: C(0,1) = f(0,1) − f(0)f(1) = 1/2 − 1/4 = 1/4, C(0,2) = −1/4, C(1,1) = −1/4, C(1,2) = 1/4,
    # every other pair of states 0. The anti-coupled family has the same single-site frequencies and
    # exactly the opposite covariances: site r = 1, pair r = −1.
    anti = np.array([[0, 2], [0, 2], [1, 1], [1, 1]], dtype=np.int8)
    opposite = frequency_agreement(anti, coupled, np.ones(4))
    assert opposite["site_r"] == pytest.approx(1.0) and opposite["pair_r"] == pytest.approx(-1.0)


def test_duplicate_mutants_are_counted_once(tmp_path, cropped_alignment):
    from latente.domains.protein.data import read_mutations

    focus = read_alignment(cropped_alignment).focus
    table = tmp_path / "dms.csv"
    table.write_text("mutant,score\nV29A,1.0\nV29A,2.0\nV29A:K30A,0.5\nK30A:V29A,0.7\n")
    mutations = read_mutations(table, focus)
    assert mutations.mutants == ["V29A", "V29A:K30A"] and mutations.scores.tolist() == [1.0, 0.5]
    assert mutations.skipped["duplicate"] == 2 and "2 duplicate (e.g. V29A)" in mutations.warning()
    empty = tmp_path / "empty.csv"
    empty.write_text("mutant,score\n")
    with pytest.raises(UserError, match="has a header but no mutant rows"):
        read_mutations(empty, focus)
