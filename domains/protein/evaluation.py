"""The evaluation protocol: the VAE's ΔELBO and the site-independent baseline against a DMS
(Spearman ρ), then sequences generated from the prior against the natural family."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from latente.domains.protein import DOMAIN
from latente.domains.protein.baselines import baseline_effects
from latente.domains.protein.data import Focus, MutationSet, WeightedAlignment, encode, load_prepared, read_mutations
from latente.domains.protein.metrics import compare_with_natural, spearman
from latente.domains.protein.model import elbo, sample_sequences
from latente.domains.protein.params import EvaluateParams
from latente.domains.protein.report import write_report
from latente.shared.errors import UserError
from latente.shared.models import LoadedModel, load_model
from latente.shared.models.autoencoders import VariationalAutoencoder
from latente.shared.results import Results
from latente.shared.stage import DomainPaths


def model_effects(model: VariationalAutoencoder, focus: Focus, mutations: MutationSet, samples: int, seed: int) -> np.ndarray:
    """ELBO(mutant) − ELBO(wild type), each averaged over the same `samples` latent draws."""
    wild_type = encode(focus.sequence)[None]
    values = elbo(model, np.concatenate([wild_type, mutations.codes]), samples, seed)
    return values[1:] - values[0]


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


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """The evaluate stage: mutation effects, training record and generation → metrics.json, then the report."""
    data = load_prepared(paths.prepared)
    loaded = load_model(paths.model, domain=DOMAIN)
    check_same_focus(loaded, data.alignment.focus, str(paths.model))
    mutations = read_mutations(paths.raw / params.mutations, data.alignment.focus, params.mutant_column, params.score_column)
    scores = score(loaded.model, data, mutations, params.samples, params.seed, params.pseudocount)

    results = Results(DOMAIN, f"{data.alignment.source} + {params.mutations}", [data.alignment.source, params.mutations])
    add_rows(results, scores, mutations, params.samples)
    fit = loaded.info["fit"]
    a = data.alignment
    results.add("model", {"seconds": fit["seconds"], "cpu_seconds": fit["cpu_seconds"], "threads": loaded.info["threads"],
                          "epochs": fit["epochs_run"], "neff": data.neff,
                          "sequences": a.shape[0], "columns": a.shape[1]}, task="train")

    generated = sample_sequences(loaded.model, params.generated, params.seed)
    generation = compare_with_natural(generated, a.codes, data.weights, params.seed)
    results.add("model", generation["generated"]["metrics"], task="generation")
    results.add("natural", generation["natural"]["metrics"], task="generation")
    results.write(paths.metrics)

    write_report(paths, params, data, loaded, mutations, scores, results, generation, generated)
    results.print_json()
