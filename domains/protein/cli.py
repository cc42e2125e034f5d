"""`latente protein ...`: score mutants with a trained family VAE, train-and-score, sample sequences."""
from __future__ import annotations

import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from latente.domains.protein import BOUNDS, DOMAIN
from latente.shared.cli import (
    epochs_option, float_option, force_option, input_file, int_option, json_option, model_folder, model_option,
    output_file, output_folder, project_path, seed_option,
)

DEFAULT_MODEL = Path("models") / DOMAIN
DEFAULT_PARAMS = Path("params.yaml")
SAMPLES_MAX = 10_000  # latent draws per sequence: the pipeline uses 100; the cost grows linearly (mutants × samples)
MEMBERS_MAX = 50  # as the params schema allows
SEQUENCES_MAX = 10_000  # `sample -n`: the decoder holds n × 21 × L probabilities at once; run again with another --seed for more

app = typer.Typer(no_args_is_help=True, help="Protein family VAE: mutation effects (Δ log p(x) bound) and sequence generation.")

ALIGNMENT_HELP = "family alignment: A2M/A3M FASTA or Stockholm; the first sequence is the focus unless --focus names one"
MUTATIONS_HELP = "DMS CSV with a mutant column (A23V, multi-mutants joined by ':') and a score column"


def _samples_option():
    return int_option(100, "--samples", low=1, high=SAMPLES_MAX, help="latent draws per sequence",
                      why="the run time grows linearly with it")


BoundChoice = Enum("BoundChoice", {bound: bound for bound in BOUNDS}, type=str)  # --bound's choices, as typer takes them


def _bound_option():
    return typer.Option(BOUNDS[0], "--bound",
                        help="bound on log p(x) whose difference mutant − wild type scores a mutant: the ELBO, or the "
                             "importance-weighted bound (tighter, but a noisier estimate at the same draws)")


def _theta_option(help: str):
    return float_option(0.2, "--theta", low=0.0, high=1.0, open_low=True, open_high=True, help=help,
                        why="neighbours share more than 1 - theta of their residues")


def _inputs(alignment: Path, mutations: Path) -> None:
    input_file(alignment, "--alignment", "alignment file")
    input_file(mutations, "--mutations", "CSV file")


def _results(alignment: Path, mutations: Path):
    from latente.shared.results import Results

    return Results(DOMAIN, f"{alignment} + {mutations}", [alignment.name, mutations.name])


@app.command("score")
def score_command(
    alignment: Path = typer.Option(..., "--alignment", help=ALIGNMENT_HELP),
    mutations: Path = typer.Option(..., "--mutations", help=MUTATIONS_HELP),
    model: Optional[Path] = model_option(DEFAULT_MODEL, f"model folder written by train@{DOMAIN} or `evaluate --model-out`"),
    mutant_column: str = typer.Option("mutant", help="column holding the mutants"),
    score_column: str = typer.Option("score", help="column holding the measured effect"),
    focus: Optional[str] = typer.Option(None, help="id of the focus sequence (default: the first)"),
    samples: int = _samples_option(),
    bound: BoundChoice = _bound_option(),
    seed: int = seed_option("seed of the latent draws"),
    theta: float = _theta_option("sequence-weight identity threshold 1 - theta (site-independent baseline)"),
    out: Optional[Path] = typer.Option(None, help="also write per-mutant predictions to this CSV"),
    force: bool = force_option("--out"),
    json_output: bool = json_option(),
) -> None:
    """Spearman ρ of the model's Δ bound (--bound) and of the site-independent baseline against a DMS.

    An ensemble folder (the train stage's, or `evaluate --model-out`) averages its members' differences;
    `--out` writes each mutant's difference with its Monte Carlo standard error (`model_se`).
    """
    from latente.domains.protein.data import read_mutations, weigh
    from latente.domains.protein.evaluation import add_rows, check_same_focus, score
    from latente.domains.protein.model import load_family

    _inputs(alignment, mutations)
    if out is not None:
        output_file(out, force, "--out")
    ensemble = load_family(model_folder(model, DEFAULT_MODEL, DOMAIN))
    data = weigh(alignment, focus, theta)
    check_same_focus(ensemble, data.alignment.focus, str(alignment))
    mset = read_mutations(mutations, data.alignment.focus, mutant_column, score_column)
    print(f"scoring {len(mset.mutants)} mutants × {samples} samples × {len(ensemble.members)} members", file=sys.stderr)
    scores = score(ensemble.models, data, mset, samples, seed, pseudocount=1.0, bound=bound.value)
    results = _results(alignment, mutations)
    add_rows(results, scores, mset, samples)
    if out is not None:
        _write_predictions(out, mset, scores)
    _emit(results, json_output)


@app.command("evaluate")
def evaluate_command(
    alignment: Path = typer.Option(..., "--alignment", help=ALIGNMENT_HELP),
    mutations: Path = typer.Option(..., "--mutations", help=MUTATIONS_HELP),
    mutant_column: str = typer.Option("mutant", help="column holding the mutants"),
    score_column: str = typer.Option("score", help="column holding the measured effect"),
    focus: Optional[str] = typer.Option(None, help="id of the focus sequence (default: the first)"),
    params_file: Optional[Path] = typer.Option(
        None, "--params", metavar="FILE", show_default=False,
        help=f"params.yaml whose {DOMAIN}.train section is the training profile (default: params.yaml, looked up in "
             f"the current folder, then in the latente project folder)"),
    epochs: Optional[int] = epochs_option("override the profile's epochs (quick runs)"),
    members: Optional[int] = int_option(None, "--members", low=1, high=MEMBERS_MAX,
                                        help="override the profile's ensemble size (quick runs: 1)",
                                        why="each member is a whole training"),
    samples: int = _samples_option(),
    bound: BoundChoice = _bound_option(),
    seed: int = seed_option("seed of the latent draws"),
    theta: float = _theta_option("sequence-weight identity threshold 1 - theta"),
    model_out: Optional[Path] = typer.Option(None, help="save the trained model folder here"),
    force: bool = force_option("--model-out"),
    json_output: bool = json_option(),
) -> None:
    """Train the configured procedure (an ensemble of family VAEs) on any alignment, then score the DMS."""
    from latente.domains.protein.data import read_mutations, weigh
    from latente.domains.protein.evaluation import add_rows, score
    from latente.domains.protein.params import TrainParams
    from latente.domains.protein.training import train_ensemble, write_ensemble
    from latente.shared.io import atomic_dir
    from latente.shared.params import stage_params

    _inputs(alignment, mutations)
    if params_file is None:
        params_file = project_path(DEFAULT_PARAMS, "--params", "pass --params FILE")
    input_file(params_file, "--params", "params file")
    if model_out is not None:
        output_folder(model_out, force, "--model-out")
    params = stage_params(DOMAIN, "train", TrainParams, params_file)
    if epochs is not None:
        params = params.model_copy(update={"trainer": params.trainer.model_copy(update={"epochs": epochs})})
    if members is not None:
        params = params.model_copy(update={"members": members})
    data = weigh(alignment, focus, theta)
    mset = read_mutations(mutations, data.alignment.focus, mutant_column, score_column)
    print(f"{data.alignment.shape[0]} sequences × {data.alignment.shape[1]} columns, Neff {data.neff:.1f}; "
          f"{len(mset.mutants)} scorable mutants", file=sys.stderr)
    print(f"training {params.members} member(s), {params.trainer.epochs} epochs each", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"latente-{DOMAIN}-") as checkpoint:
        members = train_ensemble(data.alignment.codes, data.weights, params, checkpoint,
                                 fingerprint={"params": params.model_dump(mode="json")})
    models = [trained.model.plain() for trained in members]
    scores = score(models, data, mset, samples, seed, pseudocount=1.0, bound=bound.value)
    results = _results(alignment, mutations)
    add_rows(results, scores, mset, samples)
    results.add("model", {"seconds": sum(t.fit.seconds for t in members), "cpu_seconds": sum(t.fit.cpu_seconds for t in members),
                          "members": len(members), "epochs": members[0].fit.epochs_run, "neff": data.neff,
                          "sequences": data.alignment.shape[0], "columns": data.alignment.shape[1]}, task="train")
    if model_out is not None:
        with atomic_dir(model_out, force=force) as tmp:
            write_ensemble(members, data, params.trainer.seed, tmp)
    _emit(results, json_output)


@app.command("sample")
def sample_command(
    model: Optional[Path] = model_option(DEFAULT_MODEL, "model folder (an ensemble draws sequence i from member i mod K)"),
    n: int = int_option(100, "-n", low=1, high=SEQUENCES_MAX, help="number of sequences",
                        why="for more, run again with another --seed"),
    out: Path = typer.Option(..., "--out", help="FASTA file to write"),
    temperature: float = float_option(1.0, "--temperature", low=0.05, high=10.0,
                                      help="divides the decoder's logits: below 1 sharpens each column",
                                      why="outside it the columns are all one state or all noise"),
    latent_scale: float = float_option(1.0, "--latent-scale", low=0.0, high=10.0,
                                       help="z ~ N(0, scale² I): below 1 stays nearer the natural sequences' codes",
                                       why="the prior has unit scale"),
    seed: int = seed_option("random seed"),
    force: bool = force_option("--out"),
) -> None:
    """Sample sequences from the prior and decode them; writes focus-column FASTA.

    The evaluate stage's report sweeps --temperature and --latent-scale against the family's
    single-column and pair statistics.
    """
    from latente.domains.protein.data import decode
    from latente.domains.protein.model import load_family, sample_sequences
    from latente.shared.io import write_text

    output_file(out, force, "--out")
    model = model_folder(model, DEFAULT_MODEL, DOMAIN)
    ensemble = load_family(model)
    sequences = decode(sample_sequences(ensemble.models, n, seed, temperature, latent_scale))
    focus = ensemble.first.preprocessing["focus"]["name"]
    setting = f"temperature {temperature:g}, latent scale {latent_scale:g}"
    write_text(out, "".join(f">sample_{i + 1} prior sample of {model.name} (focus {focus}; {setting})\n{s}\n"
                            for i, s in enumerate(sequences)), force=force)
    print(f"wrote {n} sequences to {out}", file=sys.stderr)


def _write_predictions(path: Path, mset, scores) -> None:
    from latente.shared.report import write_plot_csv

    write_plot_csv(path, [{"mutant": m, "score": float(s), "model": float(p), "model_se": float(e), "site_independent": float(b)}
                          for m, s, p, e, b in zip(mset.mutants, mset.scores, scores.model, scores.effects.se, scores.baseline)])


def _emit(results, json_output: bool) -> None:
    if json_output:
        results.print_json()
        return
    for row in results.rows:
        cond = ", ".join(f"{k}={v}" for k, v in row["condition"].items())
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["metrics"].items())
        print(f"{row['method']}{f' [{cond}]' if cond else ''}: {metrics}")

