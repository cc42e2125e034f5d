"""`latente protein ...`: score mutants with a trained family VAE, train-and-score, sample sequences."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from latente.domains.protein import DOMAIN

app = typer.Typer(no_args_is_help=True, help="Protein family VAE: mutation effects (ΔELBO) and sequence generation.")

ALIGNMENT_HELP = "family alignment: A2M/A3M FASTA or Stockholm; the first sequence is the focus unless --focus names one"
MUTATIONS_HELP = "DMS CSV with a mutant column (A23V, multi-mutants joined by ':') and a score column"


def _results(alignment: Path, mutations: Path):
    from latente.shared.results import Results

    return Results(DOMAIN, f"{alignment} + {mutations}", [alignment.name, mutations.name])


@app.command("score")
def score_command(
    alignment: Path = typer.Option(..., "--alignment", help=ALIGNMENT_HELP),
    mutations: Path = typer.Option(..., "--mutations", help=MUTATIONS_HELP),
    model: Path = typer.Option(..., "--model", help=f"model folder written by train@{DOMAIN} or `evaluate --model-out`"),
    mutant_column: str = typer.Option("mutant", help="column holding the mutants"),
    score_column: str = typer.Option("score", help="column holding the measured effect"),
    focus: Optional[str] = typer.Option(None, help="id of the focus sequence (default: the first)"),
    samples: int = typer.Option(100, min=1, help="ELBO samples per sequence"),
    seed: int = typer.Option(0, help="seed of the latent draws"),
    theta: float = typer.Option(0.2, help="sequence-weight identity threshold 1 - theta (site-independent baseline)"),
    out: Optional[Path] = typer.Option(None, help="also write per-mutant predictions to this CSV"),
    force: bool = typer.Option(False, "--force", help="overwrite --out if it exists"),
    json_output: bool = typer.Option(False, "--json", help="print only the results JSON on stdout"),
) -> None:
    """Spearman ρ of the model's ΔELBO and of the site-independent baseline against a DMS."""
    from latente.domains.protein.data import read_mutations, weigh
    from latente.domains.protein.evaluation import add_rows, check_same_focus, score
    from latente.shared.io import refuse_existing
    from latente.shared.models import load_model

    if out is not None:
        refuse_existing(out, force)
    loaded = load_model(model, domain=DOMAIN)
    data = weigh(alignment, focus, theta)
    check_same_focus(loaded, data.alignment.focus, str(alignment))
    mset = read_mutations(mutations, data.alignment.focus, mutant_column, score_column)
    scores = score(loaded.model, data, mset, samples, seed, pseudocount=1.0)
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
    params_file: Path = typer.Option(Path("params.yaml"), "--params", help=f"params.yaml whose {DOMAIN}.train section is the training profile"),
    epochs: Optional[int] = typer.Option(None, min=1, help="override the profile's epochs (quick runs)"),
    samples: int = typer.Option(100, min=1, help="ELBO samples per sequence"),
    seed: int = typer.Option(0, help="seed of the latent draws"),
    theta: float = typer.Option(0.2, help="sequence-weight identity threshold 1 - theta"),
    model_out: Optional[Path] = typer.Option(None, help="save the trained model folder here"),
    force: bool = typer.Option(False, "--force", help="overwrite --model-out if it exists"),
    json_output: bool = typer.Option(False, "--json", help="print only the results JSON on stdout"),
) -> None:
    """Train a family VAE on any alignment with the configured profile, then score the DMS."""
    from latente.domains.protein.data import read_mutations, weigh
    from latente.domains.protein.evaluation import add_rows, score
    from latente.domains.protein.params import TrainParams
    from latente.domains.protein.training import save_family_vae, train_family_vae
    from latente.shared.io import refuse_existing
    from latente.shared.params import stage_params

    if model_out is not None:
        refuse_existing(model_out, force)
    params = stage_params(DOMAIN, "train", TrainParams, params_file)
    if epochs is not None:
        params = params.model_copy(update={"trainer": params.trainer.model_copy(update={"epochs": epochs})})
    data = weigh(alignment, focus, theta)
    mset = read_mutations(mutations, data.alignment.focus, mutant_column, score_column)
    print(f"{data.alignment.shape[0]} sequences × {data.alignment.shape[1]} columns, Neff {data.neff:.1f}; "
          f"{len(mset.mutants)} scorable mutants", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix=f"latente-{DOMAIN}-") as checkpoint:
        trained = train_family_vae(data.alignment.codes, data.weights, params, checkpoint,
                                   fingerprint={"params": params.model_dump(mode="json")})
    plain = trained.model.plain()
    scores = score(plain, data, mset, samples, seed, pseudocount=1.0)
    results = _results(alignment, mutations)
    add_rows(results, scores, mset, samples)
    results.add("model", {"seconds": trained.fit.seconds, "cpu_seconds": trained.fit.cpu_seconds,
                          "epochs": trained.fit.epochs_run, "neff": data.neff,
                          "sequences": data.alignment.shape[0], "columns": data.alignment.shape[1]}, task="train")
    if model_out is not None:
        save_family_vae(trained, data, model_out, force=force)
    _emit(results, json_output)


@app.command("sample")
def sample_command(
    model: Path = typer.Option(..., "--model", help="model folder"),
    n: int = typer.Option(100, "-n", min=1, help="number of sequences"),
    out: Path = typer.Option(..., "--out", help="FASTA file to write"),
    seed: int = typer.Option(0, help="random seed"),
    force: bool = typer.Option(False, "--force", help="overwrite --out if it exists"),
) -> None:
    """Sample sequences from the prior (z ~ N(0, I)) and decode them; writes focus-column FASTA."""
    from latente.domains.protein.data import decode
    from latente.domains.protein.model import sample_sequences
    from latente.shared.io import refuse_existing, write_text
    from latente.shared.models import load_model

    refuse_existing(out, force)
    loaded = load_model(model, domain=DOMAIN)
    sequences = decode(sample_sequences(loaded.model, n, seed))
    focus = loaded.preprocessing["focus"]["name"]
    write_text(out, "".join(f">sample_{i + 1} prior sample of {model.name} (focus {focus})\n{s}\n"
                            for i, s in enumerate(sequences)), force=force)
    print(f"wrote {n} sequences to {out}", file=sys.stderr)


def _write_predictions(path: Path, mset, scores) -> None:
    from latente.shared.report import write_plot_csv

    write_plot_csv(path, [{"mutant": m, "score": float(s), "model": float(p), "site_independent": float(b)}
                          for m, s, p, b in zip(mset.mutants, mset.scores, scores.model, scores.baseline)])


def _emit(results, json_output: bool) -> None:
    if json_output:
        results.print_json()
        return
    for row in results.rows:
        cond = ", ".join(f"{k}={v}" for k, v in row["condition"].items())
        metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["metrics"].items())
        print(f"{row['method']}{f' [{cond}]' if cond else ''}: {metrics}")

