"""`latente anomaly ...`: fit a detector on normal operation, score any CSV in chunks, run SKAB's protocol."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from latente.domains.anomaly import DOMAIN
from latente.shared.cli import (
    epochs_option, float_option, force_option, input_file, input_folder, int_option, json_option, model_folder,
    model_option, output_file, output_folder, seed_option,
)

DEFAULT_MODEL = Path("models") / DOMAIN / "global"  # the train stage's detector fitted on SKAB's anomaly-free run
CHUNK_ROWS_MAX = 10_000_000  # a chunk is held in memory: rows × sensors floats
TRAIN_ROWS_MAX = 100_000_000

app = typer.Typer(no_args_is_help=True, help="Sensor anomaly detection: 1-D conv autoencoder, SKAB protocol.")

CALIBRATE_HELP = ("standardise, weight and threshold on the first N rows of the scored file (normal operation), "
                  "keeping the model's network: use it whenever the file comes from another run or machine than the "
                  "model's training rows, as SKAB's per-file protocol does with its first 400 rows; at least "
                  "3 × window − 2 rows (178 for the default window of 60)")
FAR_HELP = ("with --calibrate-rows: set the threshold so that this share of the calibration rows' scores lie above it "
            "(e.g. 0.05), instead of the model's rule (4/3 × the 0.999 quantile of the calibration windows' residuals). "
            "It is the false-alarm rate on the calibration rows only: later normal rows drift away from them and "
            "alarm more often")
SEP_HELP = "column separator of the CSV"
TIMESTAMP_HELP = "timestamp column ('' for none: rows are taken in file order)"
SENSORS_HELP = "comma-separated sensor columns (default: every column holding numbers, except timestamp and labels)"
NAN_HELP = "what to do with missing values: error, drop (the row) or ffill (carry the last value)"


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def _check_sep(sep: str) -> str:
    from latente.shared.errors import UserError

    if not sep:
        raise UserError("--sep", "is empty", "give the column separator, e.g. --sep ';' or --sep ','")
    return sep


def _reader(sep: str, timestamp: str, sensors: Optional[str], label: str, changepoint: str, nan_policy: str):
    from latente.domains.anomaly.params import ReaderConfig
    from latente.shared.params import validate

    _check_sep(sep)
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
    if (start is not None and start < 0) or (end is not None and end < 0):
        raise UserError(f"--rows {text}", "row numbers count from 0 at the first data row and cannot be negative")
    start = start or 0
    if start >= n:
        raise UserError(f"--rows {text}", f"starts after the last of the file's {n} usable rows")
    if end is not None and end <= start:
        raise UserError(f"--rows {text}", "END must be above START")
    return slice(start, n if end is None else min(end, n))


def _report_data(path: Path, report, nan_policy: str, used: str = "") -> None:
    problems = report.problems(nan_policy)
    counts = (f"{used} of {report.rows_kept} usable rows ({report.rows_read} read)" if used
              else f"{report.rows_kept} of {report.rows_read} rows used")
    _log(f"{path}: {counts}" + (f"; {'; '.join(problems)}" if problems else ""))


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
    """Train a detector (standardisation, autoencoder, threshold) on normal-operation rows.

    Progress goes to stderr, one line per epoch (training stops early when the validation loss stops improving).
    To score files of other runs or machines with it, pass `score --calibrate-rows N`.
    """
    from latente.domains.anomaly.data import read_series
    from latente.domains.anomaly.training import fit_detector, window_split

    input_file(csv, "CSV", "CSV file")
    output_folder(model_out, force, "--model-out")
    reader = _reader(sep, timestamp, sensors, label, changepoint, nan_policy)
    series = read_series(csv, reader)
    part = _rows(rows, len(series))
    train = series.crop(part.start, part.stop)
    config = _detector_config(seed, epochs)
    where = f"{csv} rows {part.start}:{part.stop}"
    window_split(len(train), config, where)
    _report_data(csv, series.report, reader.nan_policy, used=f"trained on rows {part.start}:{part.stop} ({len(train)} rows)")
    _log(f"training on {len(train)} rows × {len(series.sensors)} sensors, at most {config.trainer.epochs} epochs")
    detector = fit_detector(train.values, series.sensors, config, reader=reader, step_s=series.report.step_s,
                            where=where, quiet=False)
    detector.save(model_out, data={"file": str(csv), "rows": [part.start, part.stop]}, force=force)
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
    calibrate_rows: Optional[int] = int_option(None, "--calibrate-rows", low=2, high=CHUNK_ROWS_MAX,
                                               help=CALIBRATE_HELP),
    far: Optional[float] = float_option(None, "--far", low=0.0, high=1.0, open_low=True, open_high=True, help=FAR_HELP),
    sep: Optional[str] = typer.Option(None, "--sep", help=SEP_HELP + " (default: the one the model was fitted with)"),
    chunk_rows: int = int_option(100_000, "--chunk-rows", low=1, high=CHUNK_ROWS_MAX,
                                 help="rows read per chunk (memory stays bounded)"),
    force: bool = force_option("--out"),
) -> None:
    """Stream a CSV in chunks; write each row's score, flag and top contributing sensor; explain every alarm.

    Row t is flagged when the W−1 windows that start before it all exceed the threshold (SKAB's rule; W = 60).
    So the first W−1 and the last 2W−2 rows (59 and 118) get no score: empty score and top_sensor, flag 0.
    A file from another run or machine than the model's training rows needs --calibrate-rows N (N normal rows at
    its start); when the file's first rows lie far from the training data, a warning names the sensors.
    """
    from dataclasses import replace

    from latente.domains.anomaly.data import stream_series
    from latente.domains.anomaly.model import (
        SHIFT_ROWS, check_model_columns, distribution_shift, first_rows, load_detector, shortest_calibration,
        write_scores,
    )
    from latente.shared.errors import UserError

    input_file(csv, "CSV", "CSV file")
    output_file(out, force, "--out")
    if far is not None and calibrate_rows is None:
        raise UserError("--far", "needs --calibrate-rows", "the threshold is a quantile of the calibration rows' scores")
    model = model_folder(model, DEFAULT_MODEL, DOMAIN)
    detector = load_detector(model)
    if calibrate_rows is not None and calibrate_rows < shortest_calibration(detector.window):
        raise UserError("--calibrate-rows", f"{calibrate_rows} rows are too few for the model's windows of {detector.window}",
                        f"calibrate on at least {shortest_calibration(detector.window)} rows (3 × window − 2)")
    if sep is not None:
        detector = replace(detector, reader=detector.reader.model_copy(update={"sep": _check_sep(sep)}))
    check_model_columns(csv, detector, model)
    chunks, report = stream_series(csv, detector.reader, detector.sensors, detector.step_s, chunk_rows)
    first, chunks = first_rows(chunks, calibrate_rows or SHIFT_ROWS, len(detector.sensors))
    if calibrate_rows is not None:
        if len(first) < calibrate_rows:
            raise UserError(csv, f"has {len(first)} usable rows, fewer than the {calibrate_rows} calibration rows",
                            "lower --calibrate-rows")
        detector = detector.calibrated(first, far=far)
        rule = f"{far:g} of their scores above it" if far is not None else "the model's rule"
        _log(f"calibrated on the first {calibrate_rows} rows: standardisation, sensor weights and threshold ({rule})")
    else:
        shifted = distribution_shift(detector, first)
        if shifted:
            _log(f"warning: {csv}: the first {len(first)} rows lie far from the model's training data: {'; '.join(shifted)}"
                 f" — most rows may be flagged: pass --calibrate-rows N (N normal rows at the start of the file)")
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
                                 help="per-file protocol: rows at the start of each file used for training"),
    model: Optional[Path] = typer.Option(None, "--model", metavar="FOLDER", help=(
        "cross-file protocol: score every file with this detector (from `fit`) instead of fitting one per file; "
        "each file's first --calibrate-rows rows calibrate it and count in no metric")),
    calibrate_rows: int = int_option(400, "--calibrate-rows", low=2, high=TRAIN_ROWS_MAX,
                                     help="with --model: calibration rows at the start of each file (see `score --help`)"),
    far: Optional[float] = float_option(None, "--far", low=0.0, high=1.0, open_low=True, open_high=True,
                                        help="with --model: threshold by the calibration rows' false-alarm rate "
                                             "(see `score --help`)"),
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
    """F1, FAR, MAR (and NAB) on any folder of labelled files.

    Without --model, SKAB's per-file protocol: a detector fitted on each file's first --train-rows rows scores the
    rest, beside the PCA T²+Q and Isolation Forest baselines.
    With --model, the cross-file protocol: that one detector scores every file, calibrated on its first
    --calibrate-rows rows (which count in no metric), as `score --calibrate-rows` does.
    """
    from latente.domains.anomaly.evaluation import cross_file, evaluate_folder, labelled_files
    from latente.domains.anomaly.params import EvaluateParams
    from latente.domains.anomaly.report import results_table
    from latente.shared.errors import UserError

    input_folder(data, "--data", "folder of labelled CSV files")
    reader = _reader(sep, timestamp, sensors, label, changepoint, nan_policy)
    if not reader.label:
        raise UserError("--label", "evaluation needs a label column")
    if model is None and far is not None:
        raise UserError("--far", "needs --model", "the per-file protocol keeps SKAB's threshold rule")
    if model is not None:
        from latente.domains.anomaly.model import load_detector

        detector = load_detector(model_folder(model, None, DOMAIN))
        if sensors is not None and list(reader.sensors) != detector.sensors:
            raise UserError("--sensors", "differs from the model's sensors", f"the model's are {','.join(detector.sensors)}")
        results, _ = cross_file(labelled_files(data), data, reader, detector, calibrate_rows, far, EvaluateParams(),
                                progress=_log)
    else:
        results, _ = evaluate_folder(data, reader, train_rows, _detector_config(seed, epochs), EvaluateParams(),
                                     progress=_log)
    if json_output:
        results.print_json()
    else:
        print(results_table(results).rstrip("\n"))
