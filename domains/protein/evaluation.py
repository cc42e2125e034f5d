"""The evaluation protocol: the ensemble's difference of a bound on log p(x) (IWAE or ELBO) and the
site-independent baseline against a DMS
(Spearman ρ) for every replicate procedure, the ensemble size against the validation ELBO, the
alignment-depth curve, the calibration of the score's standard error, and sequences generated from
the prior against the natural family."""
from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from latente.domains.protein import DOMAIN
from latente.domains.protein.baselines import baseline_effects
from latente.domains.protein.data import Focus, MutationSet, WeightedAlignment, encode, load_prepared, read_mutations, subsample
from latente.domains.protein.metrics import compare_with_natural, frequency_agreement, spearman
from latente.domains.protein.model import (
    Effects, FamilyEnsemble, ensemble_effects, load_family, log_mean_exp, sample_sequences, sequence_draws,
)
from latente.domains.protein.params import EvaluateParams, TrainParams
from latente.domains.protein.report import sequence_index, write_report
from latente.domains.protein.training import split, steps_matched, train_ensemble
from latente.shared.errors import UserError
from latente.shared.models.autoencoders import VariationalAutoencoder
from latente.shared.params import PARAMS_FILE, stage_params
from latente.shared.results import Results
from latente.shared.stage import DomainPaths


def check_same_focus(ensemble: FamilyEnsemble, focus: Focus, where: str) -> None:
    trained = Focus.from_dict(ensemble.first.preprocessing["focus"])
    if trained.sequence != focus.sequence:
        raise UserError(where, f"its focus sequence {focus.name} differs from the one the model was trained on ({trained.name})",
                        "score mutants with the alignment the model was trained on")


@dataclass
class Scores:
    by_bound: dict[str, Effects]  # the ensemble's difference of each bound, from the same draws
    bound: str  # the bound that scores
    baseline: np.ndarray
    seconds: float

    @property
    def effects(self) -> Effects:
        """The scoring bound's differences, their standard errors, each member's."""
        return self.by_bound[self.bound]

    @property
    def model(self) -> np.ndarray:
        return self.effects.mean


def score(models: list[VariationalAutoencoder], data: WeightedAlignment, mutations: MutationSet, samples: int, seed: int,
          pseudocount: float, bound: str) -> Scores:
    """The ensemble's difference of `bound` for every mutant (with its standard error; the other bound's beside it)
    and the site-independent baseline's."""
    warning = mutations.warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    started = time.perf_counter()
    effects = ensemble_effects(models, encode(data.alignment.focus.sequence), mutations.codes, samples, seed)
    seconds = time.perf_counter() - started
    return Scores(effects, bound, baseline_effects(data, mutations, pseudocount), seconds)


def add_rows(results: Results, scores: Scores, mutations: MutationSet, samples: int, replicate_rhos: list[float] = ()) -> None:
    """Rows for the model and the baseline: all scorable mutants, then per mutation count if mixed.

    With `replicate_rhos` (the ρ of every replicate procedure, these scores' first), the overall ρ is
    their mean and `spearman_sd` their standard deviation.
    """
    skips = {f"skipped_{kind}": n for kind, n in mutations.skipped.items()}
    rho = spearman(scores.model, mutations.scores)
    spread = {"spearman_sd": _sd(list(replicate_rhos)), "replicates": len(replicate_rhos)} if replicate_rhos else {}
    results.add("model", {"spearman": float(np.mean(replicate_rhos)) if replicate_rhos else rho, **spread,
                          "n": len(mutations.mutants), **skips,
                          "members": len(scores.effects.members), "samples": samples,
                          "se_median": float(np.nanmedian(scores.effects.se)), "seconds": scores.seconds})
    results.add("site_independent", {"spearman": spearman(scores.baseline, mutations.scores), "n": len(mutations.mutants)})
    orders = np.unique(mutations.n_mutations)
    if len(orders) > 1:
        for order in orders:
            keep = mutations.n_mutations == order
            for method, values in (("model", scores.model), ("site_independent", scores.baseline)):
                results.add(method, {"spearman": spearman(values[keep], mutations.scores[keep]), "n": int(keep.sum())},
                            mutations=int(order))


@dataclass
class Replicate:
    """One procedure's ensemble, its DMS scores and its members' ELBOs of the held-out sequences."""

    seed: int
    ensemble: FamilyEnsemble
    scores: Scores
    validation: np.ndarray  # [members, held-out sequences]
    validation_weights: np.ndarray


def replicate_rows(results: Results, replicates: list[Replicate], mutations: MutationSet) -> None:
    """Per replicate, its ensemble's ρ; per bound, the ρ of its differences; per ensemble size k (the
    first k members), the ρ and the held-out bound log mean_k exp(ELBO_k); each averaged over the replicates.

    The bound is a lower bound on the log-likelihood of the held-out sequences under the mixture of
    the k members (each ELBO bounds its member's log p): it is the validation figure that justifies
    the ensemble size without the DMS.
    """
    for rep in replicates:
        results.add("model", {"spearman": spearman(rep.scores.model, mutations.scores), "members": len(rep.ensemble.members)},
                    seed=rep.seed)
    for bound in replicates[0].scores.by_bound:
        rhos = [spearman(rep.scores.by_bound[bound].mean, mutations.scores) for rep in replicates]
        results.add("model", {"spearman": float(np.mean(rhos)), "spearman_sd": _sd(rhos), "replicates": len(replicates)},
                    bound=bound)
    for k in range(1, min(len(rep.ensemble.members) for rep in replicates) + 1):
        rhos = [spearman(rep.scores.effects.members[:k].mean(0), mutations.scores) for rep in replicates]
        bounds = [float(rep.validation_weights @ log_mean_exp(rep.validation[:k])) for rep in replicates]
        results.add("model", {"spearman": float(np.mean(rhos)), "spearman_sd": _sd(rhos),
                              "val_elbo_bound": float(np.mean(bounds)), "replicates": len(replicates)}, members=k)


def _sd(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def held_out_elbo(ensemble: FamilyEnsemble, data: WeightedAlignment, train: TrainParams, seed: int, samples: int,
                  draw_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """[members, held-out] ELBOs of the sequences the procedure with `seed` held out, and their normalised weights."""
    _, held_out = split(data.alignment.shape[0], train.val_fraction, seed)
    codes = data.alignment.codes[held_out]
    values = np.stack([sequence_draws(model, codes, samples, draw_seed).elbo.mean(1) for model in ensemble.models])
    weights = data.weights[held_out]
    return values, weights / weights.sum()


def depth_rows(results: Results, data: WeightedAlignment, mutations: MutationSet, train: TrainParams, params: EvaluateParams,
               full: Replicate) -> list[dict]:
    """The procedure retrained on weight-drawn subsamples (a shallow family built from this one), each
    taking as many optimiser steps as the full alignment; the full alignment's point is the first
    `depth.members` members of the headline ensemble, trained the same way."""
    depth = params.depth
    train = train.model_copy(update={"members": depth.members})
    curve = []
    n_full = data.alignment.shape[0]
    for n in sorted(set(s for s in depth.sequences if s < n_full)) + [n_full]:
        if n < n_full:
            shallow = subsample(data, n, depth.seed)
            repeat = steps_matched(n, n_full, train.val_fraction)
            started = time.perf_counter()
            with tempfile.TemporaryDirectory(prefix=f"latente-{DOMAIN}-depth-") as checkpoint:
                members = train_ensemble(shallow.alignment.codes, shallow.weights, train, checkpoint,
                                         fingerprint={"depth": n}, repeat=repeat)
            seconds = time.perf_counter() - started
            models = [trained.model.plain() for trained in members]
        else:
            shallow, repeat, seconds, models = data, 1, float("nan"), full.ensemble.models[: depth.members]
        effects = ensemble_effects(models, encode(data.alignment.focus.sequence), mutations.codes, params.samples,
                                   params.seed)[params.bound]
        point = {"sequences": n, "neff": shallow.neff, "repeat": repeat, "seconds": seconds,
                 "model": spearman(effects.mean, mutations.scores),
                 "site_independent": spearman(baseline_effects(shallow, mutations, params.pseudocount), mutations.scores)}
        results.add("model", {"spearman": point["model"], "neff": point["neff"], "members": depth.members,
                              "train_seconds": seconds}, sequences=n)
        results.add("site_independent", {"spearman": point["site_independent"], "neff": point["neff"]}, sequences=n)
        print(f"depth {n}: Neff {shallow.neff:.1f}, ρ model {point['model']:.4f}, "
              f"site-independent {point['site_independent']:.4f}", file=sys.stderr, flush=True)
        curve.append(point)
    return curve


def calibration_rows(results: Results, ensemble: FamilyEnsemble, data: WeightedAlignment, mutations: MutationSet,
                     params: EvaluateParams) -> list[dict]:
    """The standard error each estimate states against the spread of independent estimates.

    For each number of samples S, `repeats` estimates of the scoring bound's difference for the same mutants with fresh
    draws: the stated error (root mean square over repeats and mutants) should match the standard
    deviation of the estimates across repeats (root mean square over mutants), and both shrink as 1/√S.
    """
    c = params.calibration
    rng = np.random.default_rng(params.seed)
    chosen = np.sort(rng.choice(len(mutations.mutants), size=min(c.mutants, len(mutations.mutants)), replace=False))
    wild_type = encode(data.alignment.focus.sequence)
    rows = []
    for samples in c.samples:
        runs = [ensemble_effects(ensemble.models, wild_type, mutations.codes[chosen], samples, params.seed + 1 + r)[params.bound]
                for r in range(c.repeats)]
        stated = float(np.sqrt(np.mean([run.se ** 2 for run in runs])))
        spread = float(np.sqrt(np.mean(np.var([run.mean for run in runs], axis=0, ddof=1))))
        row = {"samples": samples, "se_stated": stated, "se_observed": spread, "ratio": spread / stated}
        results.add("model", {"se_stated": stated, "se_observed": spread, "n": len(chosen), "repeats": c.repeats},
                    task="calibration", samples=samples)
        rows.append(row)
    return rows


def generation_sweep(results: Results, ensemble: FamilyEnsemble, data: WeightedAlignment, params: EvaluateParams) -> tuple[dict, np.ndarray, list[dict]]:
    """Sequences from the prior for every (temperature, latent scale), against the natural family.

    Returns the comparison and the sequences of the first setting (the report's main sample) and
    the sweep's rows; the natural reference row is as many natural sequences drawn by weight.
    """
    g = params.generation
    a = data.alignment
    sweep, main = [], None
    for temperature in g.temperatures:
        for scale in g.latent_scales:
            generated = sample_sequences(ensemble.models, g.sequences, params.seed, temperature, scale)
            comparison = compare_with_natural(generated, a.codes, data.weights, params.seed)
            metrics = {**comparison["generated"]["metrics"], **frequency_agreement(generated, a.codes, data.weights)}
            results.add("model", metrics, task="generation", temperature=temperature, latent_scale=scale)
            sweep.append({"temperature": temperature, "latent_scale": scale, **metrics})
            if main is None:
                main = (comparison, generated)
    assert main is not None
    comparison, generated = main
    picked = comparison["natural"]["picked"]
    natural = {**comparison["natural"]["metrics"], **frequency_agreement(a.codes[picked], a.codes, data.weights)}
    results.add("natural", natural, task="generation")
    sweep.append({"temperature": None, "latent_scale": None, **natural})
    return comparison, generated, sweep


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """The evaluate stage → metrics.json, then the report.

    The overall `model` row is the mean over the replicate procedures (`spearman_sd` their spread);
    `seed` rows give each, `members` rows the ensemble-size ablation, `sequences` rows the depth curve.
    """
    train = stage_params(DOMAIN, "train", TrainParams, paths.root / PARAMS_FILE)  # the depth curve retrains with it
    data = load_prepared(paths.prepared)
    headline = load_family(paths.model)
    check_same_focus(headline, data.alignment.focus, str(paths.model))
    if params.interpolation:  # a misnamed sequence stops here, not after an hour of scoring and retraining
        for end in ("start", "end"):
            sequence_index(data.alignment, getattr(params.interpolation, end), f"interpolation.{end}")
    mutations = read_mutations(paths.raw / params.mutations, data.alignment.focus, params.mutant_column, params.score_column)
    replicates = []
    for seed, ensemble in [(headline.seed, headline), *((s, load_family(f)) for s, f in sorted(headline.replicates.items()))]:
        scores = score(ensemble.models, data, mutations, params.samples, params.seed, params.pseudocount, params.bound)
        validation, weights = held_out_elbo(ensemble, data, train, seed, params.samples, params.seed)
        replicates.append(Replicate(seed, ensemble, scores, validation, weights))
        print(f"seed {seed}: ρ {spearman(scores.model, mutations.scores):.4f} ({len(ensemble.members)} members, "
              f"{scores.seconds:.0f} s)", file=sys.stderr, flush=True)

    results = Results(DOMAIN, f"{data.alignment.source} + {params.mutations}", [data.alignment.source, params.mutations])
    first = replicates[0]
    add_rows(results, first.scores, mutations, params.samples, [spearman(rep.scores.model, mutations.scores) for rep in replicates])
    replicate_rows(results, replicates, mutations)
    fits = [member.info["fit"] for member in first.ensemble.members]
    a = data.alignment
    results.add("model", {"seconds": sum(f["seconds"] for f in fits), "cpu_seconds": sum(f["cpu_seconds"] for f in fits),
                          "threads": first.ensemble.first.info["threads"], "members": len(fits),
                          "epochs": fits[0]["epochs_run"], "neff": data.neff, "sequences": a.shape[0], "columns": a.shape[1]},
                task="train")
    curve = depth_rows(results, data, mutations, train, params, first)
    calibration = calibration_rows(results, first.ensemble, data, mutations, params)
    generation, generated, sweep = generation_sweep(results, first.ensemble, data, params)
    results.write(paths.metrics)

    write_report(paths, params, train, data, replicates, mutations, results, curve, calibration, generation, generated, sweep)
    results.print_json()
