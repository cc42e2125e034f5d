"""`latente anomaly ...`: fit a detector on normal operation, score any CSV in chunks, run SKAB's protocol."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from latente.domains.anomaly import DOMAIN
from latente.shared.cli import (
    epochs_option, force_option, input_file, input_folder, int_option, json_option, model_folder, model_option,
    output_file, output_folder, seed_option,
)

DEFAULT_MODEL = Path("models") / DOMAIN / "global"  # the train stage's detector fitted on SKAB's anomaly-free run
CHUNK_ROWS_MAX = 10_000_000  # a chunk is held in memory: rows × sensors floats
TRAIN_ROWS_MAX = 100_000_000

app = typer.Typer(no_args_is_help=True, help="Sensor anomaly detection: 1-D conv autoencoder, SKAB protocol.")

SEP_HELP = "column separator of the CSV"
TIMESTAMP_HELP = "timestamp column ('' for none: rows are taken in file order)"
SENSORS_HELP = "comma-separated sensor columns (default: every column holding numbers, except timestamp and labels)"
NAN_HELP = "what to do with missing values: error, drop (the row) or ffill (carry the last value)"


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _reader(sep: str, timestamp: str, sensors: Optional[str], label: str, changepoint: str, nan_policy: str):
    from latente.domains.anomaly.params import ReaderConfig
    from latente.shared.params import validate

    values = {"sep": sep, "timestamp": timestamp or None, "label": label or None, "changepoint": changepoint or None,
              "nan_policy": nan_policy,
              "sensors": [s.strip() for s in sensors.split(",") if s.strip()] if sensors else None}
    return validate(ReaderConfig, values, "option", file="command line")


def _detector_config(seed: int, epochs: Optional[int]):
    """The pipeline's default detector with the command line's seed and epoch limit."""
    from latente.domains.anomaly.params import DetectorConfig

    return DetectorConfig().with_trainer(seed=seed, **({"epochs": epochs} if epochs else {}))


def _rows(text: Optional[str], n: int) -> slice:
    """'START:END' (0-based, END exclusive, either may be empty) → a slice of the cleaned rows."""
    from latente.shared.errors import UserError

    if not text:
        return slice(0, n)
    try:
        start, end = (int(part) if part.strip() else None for part in text.split(":"))
    except ValueError:
        raise UserError(f"--rows {text}", "expected START:END, e.g. 0:400") from None
    return slice(start or 0, n if end is None else min(end, n))


def _report_data(path: Path, report, nan_policy: str) -> None:
    problems = report.problems(nan_policy)
    _log(f"{path}: {report.rows_kept} of {report.rows_read} rows used" + (f"; {'; '.join(problems)}" if problems else ""))


@app.command("fit")
def fit_command(
    csv: Path = typer.Argument(..., help="CSV of normal operation (a whole file or a --rows range of it)"),
    model_out: Path = typer.Option(..., "--model-out", help="model folder to write"),
    rows: Optional[str] = typer.Option(None, help="train on rows START:END of the file (0-based, e.g. 0:400 for SKAB)"),
    sep: str = typer.Option(";", help=SEP_HELP),
    timestamp: str = typer.Option("datetime", help=TIMESTAMP_HELP),
    sensors: Optional[str] = typer.Option(None, help=SENSORS_HELP),
    label: str = typer.Option("anomaly", help="label column, excluded from the sensors if present"),
    changepoint: str = typer.Option("changepoint", help="change-point column, excluded from the sensors if present"),
    nan_policy: str = typer.Option("ffill", help=NAN_HELP),
    epochs: Optional[int] = epochs_option("override the maximum number of epochs"),
    seed: int = seed_option("training seed"),
    force: bool = force_option("--model-out"),
) -> None:
    """Train a detector (standardisation, autoencoder, threshold) on normal-operation rows."""
    from latente.domains.anomaly.data import read_series
    from latente.domains.anomaly.training import fit_detector

    input_file(csv, "CSV", "CSV file")
    output_folder(model_out, force, "--model-out")
    reader = _reader(sep, timestamp, sensors, label, changepoint, nan_policy)
    series = read_series(csv, reader)
    part = _rows(rows, len(series))
    train = series.crop(part.start, part.stop)
    config = _detector_config(seed, epochs)
    detector = fit_detector(train.values, series.sensors, config, reader=reader, step_s=series.report.step_s,
                            where=f"{csv} rows {part.start}:{part.stop}")
    detector.save(model_out, data={"file": str(csv), "rows": [part.start, part.stop]}, force=force)
    _report_data(csv, series.report, reader.nan_policy)
    if train.labels is not None and train.labels.any():
        _log(f"warning: {int(train.labels.sum())} training rows are labelled anomalous")
    constant = detector.info["constant_sensors"]
    if constant:
        _log(f"warning: constant in the training rows (scale 1, raw units): {', '.join(constant)}")
    record = detector.info["fit"]
    _log(f"fitted on {len(train)} rows × {len(series.sensors)} sensors in {record['seconds']:.1f} s "
         f"({record['epochs_run']} epochs); threshold {detector.threshold:.4g}; saved {model_out}")


@app.command("score")
def score_command(
    csv: Path = typer.Argument(..., help="CSV to score (same sensor columns as the model's training data)"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "model folder from `fit` or models/anomaly/..."),
    out: Path = typer.Option(..., "--out", help="per-row CSV: row, timestamp, score, flag, top_sensor, top_share"),
    chunk_rows: int = int_option(100_000, "--chunk-rows", low=1, high=CHUNK_ROWS_MAX,
                                 help="rows read per chunk (memory stays bounded)"),
    force: bool = force_option("--out"),
) -> None:
    """Stream a CSV in chunks; write each row's score, flag and top contributing sensor; explain every alarm."""
    from latente.domains.anomaly.data import stream_series
    from latente.domains.anomaly.model import check_model_columns, load_detector, write_scores

    input_file(csv, "CSV", "CSV file")
    output_file(out, force, "--out")
    model = model_folder(model, DEFAULT_MODEL, DOMAIN)
    detector = load_detector(model)
    check_model_columns(csv, detector, model)
    chunks, report = stream_series(csv, detector.reader, detector.sensors, detector.step_s, chunk_rows)
    summary = write_scores(out, csv, detector, chunks, force=force)
    _report_data(csv, report, detector.reader.nan_policy)
    _log(f"scored {summary.scored} of {summary.rows} rows (SKAB's rule leaves the first {detector.window - 1} and "
         f"last {2 * detector.window - 2} unscored); threshold {detector.threshold:.4g}; "
         f"{summary.flagged} rows flagged in {len(summary.alarms)} alarm(s); wrote {out}")
    for i, alarm in enumerate(summary.alarms, 1):
        _log(f"alarm {i}: " + summary.describe(alarm))


@app.command("evaluate")
def evaluate_command(
    data: Path = typer.Option(..., "--data", help="folder of labelled CSV files (searched recursively)"),
    train_rows: int = int_option(400, "--train-rows", low=2, high=TRAIN_ROWS_MAX,
                                 help="rows at the start of each file used for training"),
    sep: str = typer.Option(";", help=SEP_HELP),
    timestamp: str = typer.Option("datetime", help=TIMESTAMP_HELP),
    sensors: Optional[str] = typer.Option(None, help=SENSORS_HELP),
    label: str = typer.Option("anomaly", help="point-label column (0/1)"),
    changepoint: str = typer.Option("changepoint", help="change-point column (0/1), '' for none (no NAB score)"),
    nan_policy: str = typer.Option("ffill", help=NAN_HELP),
    epochs: Optional[int] = epochs_option("override the maximum number of epochs (quick runs)"),
    seed: int = seed_option("training seed"),
    json_output: bool = json_option(),
) -> None:
    """SKAB's per-file protocol on any folder: F1, FAR, MAR (and NAB) for the model and the baselines."""
    from latente.domains.anomaly.evaluation import evaluate_folder
    from latente.domains.anomaly.params import EvaluateParams
    from latente.domains.anomaly.report import results_table
    from latente.shared.errors import UserError

    input_folder(data, "--data", "folder of labelled CSV files")
    reader = _reader(sep, timestamp, sensors, label, changepoint, nan_policy)
    if not reader.label:
        raise UserError("--label", "evaluation needs a label column")
    config = _detector_config(seed, epochs)
    results, _ = evaluate_folder(data, reader, train_rows, config, EvaluateParams(), progress=_log)
    if json_output:
        results.print_json()
    else:
        print(results_table(results), end="")
