"""Mutation-effect scoring: the VAE's ΔELBO and the site-independent baseline against a DMS."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr

from latente.domains.protein.alignment import Focus, encode
from latente.domains.protein.model import elbo
from latente.domains.protein.mutations import MutationSet
from latente.domains.protein.prepared import WeightedAlignment
from latente.domains.protein.site_independent import profile, site_independent_effects
from latente.shared.errors import UserError
from latente.shared.models import LoadedModel
from latente.shared.models.autoencoders import VariationalAutoencoder
from latente.shared.results import Results


def model_effects(model: VariationalAutoencoder, focus: Focus, mutations: MutationSet, samples: int, seed: int) -> np.ndarray:
    """ELBO(mutant) − ELBO(wild type), each averaged over the same `samples` latent draws."""
    wild_type = encode(focus.sequence)[None]
    values = elbo(model, np.concatenate([wild_type, mutations.codes]), samples, seed)
    return values[1:] - values[0]


def baseline_effects(data: WeightedAlignment, mutations: MutationSet, pseudocount: float) -> np.ndarray:
    log_profile = profile(data.alignment.codes, data.weights, pseudocount)
    return site_independent_effects(log_profile, encode(data.alignment.focus.sequence), mutations.codes)


def spearman(predicted: np.ndarray, measured: np.ndarray) -> float:
    if len(predicted) < 3:
        return float("nan")
    return float(spearmanr(predicted, measured).statistic)


def check_same_focus(loaded: LoadedModel, focus: Focus, where: str) -> None:
    trained = Focus.from_dict(loaded.preprocessing["focus"])
    if trained.sequence != focus.sequence:
        raise UserError(where, f"its focus sequence {focus.name} differs from the one the model was trained on ({trained.name})",
                        "score mutants with the alignment the model was trained on")


@dataclass
class Scores:
    model: np.ndarray
    baseline: np.ndarray
    seconds: float


def score(model: VariationalAutoencoder, data: WeightedAlignment, mutations: MutationSet, samples: int, seed: int,
          pseudocount: float) -> Scores:
    warning = mutations.warning()
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    started = time.perf_counter()
    predicted = model_effects(model, data.alignment.focus, mutations, samples, seed)
    seconds = time.perf_counter() - started
    return Scores(predicted, baseline_effects(data, mutations, pseudocount), seconds)


def add_rows(results: Results, scores: Scores, mutations: MutationSet, samples: int) -> None:
    """Rows for the model and the baseline: all scorable mutants, then per mutation count if mixed."""
    skips = {f"skipped_{kind}": n for kind, n in mutations.skipped.items()}
    results.add("model", {"spearman": spearman(scores.model, mutations.scores), "n": len(mutations.mutants), **skips,
                          "samples": samples, "seconds": scores.seconds})
    results.add("site_independent", {"spearman": spearman(scores.baseline, mutations.scores), "n": len(mutations.mutants)})
    orders = np.unique(mutations.n_mutations)
    if len(orders) > 1:
        for order in orders:
            keep = mutations.n_mutations == order
            for method, values in (("model", scores.model), ("site_independent", scores.baseline)):
                results.add(method, {"spearman": spearman(values[keep], mutations.scores[keep]), "n": int(keep.sum())},
                            mutations=int(order))
