"""Reading multivariate sensor CSVs, whole or in chunks, with data problems handled and reported;
the prepare stage and its output (cleaned series as .npz, no pickle, plus a manifest).

One cleaner serves both modes, so a file read whole and the same file streamed in chunks
give the same rows: unsorted timestamps are sorted (whole file) or refused (stream, which
cannot reorder), duplicate timestamps keep their first row, NaNs follow the configured
policy, and gaps (steps over 1.5 × the usual step) are counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.params import PrepareParams, ReaderConfig
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.stage import DomainPaths

GAP_FACTOR = 1.5
MANIFEST = "manifest.json"


@dataclass
class DataReport:
    """What was wrong with a file and what was done about it."""

    rows_read: int = 0
    rows_kept: int = 0
    unsorted_rows: int = 0
    duplicate_rows: int = 0
    nan_cells: int = 0
    nan_rows_dropped: int = 0
    gaps: int = 0
    largest_gap_s: float = 0.0
    step_s: float | None = None

    def problems(self, nan_policy: str) -> list[str]:
        lines = []
        if self.unsorted_rows:
            lines.append(f"{self.unsorted_rows} rows out of timestamp order (sorted)")
        if self.duplicate_rows:
            lines.append(f"{self.duplicate_rows} duplicate timestamps (first row kept)")
        if self.nan_cells:
            done = {"ffill": "filled forward", "drop": "rows dropped"}.get(nan_policy, "")
            dropped = f", {self.nan_rows_dropped} rows dropped" if self.nan_rows_dropped else ""
            lines.append(f"{self.nan_cells} NaN values ({done}{dropped})")
        if self.gaps:
            lines.append(f"{self.gaps} gaps over {GAP_FACTOR:g}× the {self.step_s:g} s step (largest {self.largest_gap_s:g} s)")
        return lines

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Series:
    """A cleaned multivariate series: one row per kept input row."""

    path: Path
    sensors: list[str]
    values: np.ndarray  # float64 [n, sensors]
    rows: np.ndarray  # int64 [n], 1-based data row numbers in the file (header excluded)
    timestamps: np.ndarray | None  # int64 ns [n]
    labels: np.ndarray | None  # int8 [n]
    changepoints: np.ndarray | None  # int8 [n]
    report: DataReport

    def __len__(self) -> int:
        return len(self.values)

    def seconds(self) -> np.ndarray:
        """Time axis in seconds from the first row (row index when there are no timestamps)."""
        if self.timestamps is None:
            return np.arange(len(self), dtype=np.float64)
        return (self.timestamps - self.timestamps[0]) / 1e9

    def crop(self, start: int, stop: int | None = None) -> "Series":
        part = slice(start, stop)
        pick = lambda a: None if a is None else a[part]  # noqa: E731
        return Series(self.path, self.sensors, self.values[part], self.rows[part], pick(self.timestamps),
                      pick(self.labels), pick(self.changepoints), self.report)


def read_error(path: Path, err: Exception) -> UserError:
    """The one error line for a CSV that pandas cannot read."""
    if isinstance(err, pd.errors.EmptyDataError):
        return UserError(path, "the file is empty", "a CSV with a header row and data rows is expected")
    if isinstance(err, FileNotFoundError):
        return UserError(path, "file not found")
    if isinstance(err, UnicodeDecodeError):
        return UserError(path, "not a text CSV file")
    return UserError(path, f"cannot be parsed as CSV ({str(err).strip().splitlines()[0]})", "check the separator (--sep)")


READ_ERRORS = (pd.errors.ParserError, pd.errors.EmptyDataError, FileNotFoundError, UnicodeDecodeError, ValueError)
SNIFF_BYTES = 8192


def check_text(path: Path) -> None:
    """A file with a NUL byte near its start is binary (a spreadsheet, an archive, an image), not a CSV.

    pandas may parse such a file into one garbled column, or fail with a UnicodeDecodeError
    depending on where the bytes fall; this says what is wrong in every case.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    if b"\0" in head:
        raise UserError(path, "not a text CSV file (it holds binary data)", "give a text file of comma- or semicolon-separated values")


def _frames(path: Path, reader: ReaderConfig, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The file as one frame (chunk_rows None) or as consecutive chunks; the index counts data rows from 0."""
    if path.is_dir():
        raise UserError(path, "is a folder, not a CSV file")
    check_text(path)
    try:
        if chunk_rows is None:
            yield pd.read_csv(path, sep=reader.sep, skipinitialspace=True)
        else:
            yield from pd.read_csv(path, sep=reader.sep, skipinitialspace=True, chunksize=chunk_rows)
    except READ_ERRORS as err:
        raise read_error(path, err) from None


def resolve_columns(path: Path, frame: pd.DataFrame, reader: ReaderConfig, sensors: list[str] | None = None,
                    labels_required: bool = False) -> tuple[list[str], ReaderConfig]:
    """Check the needed columns exist; return the sensors (all numeric columns by default) and the
    reader with absent optional label columns switched off (labels are only required to evaluate)."""
    columns = [str(c) for c in frame.columns]
    optional = {c for c in reader.label_columns() if c not in columns} if not labels_required else set()
    reader = reader.model_copy(update={k: None for k in ("label", "changepoint") if getattr(reader, k) in optional})
    wanted = [c for c in (reader.timestamp, *reader.label_columns()) if c]
    if sensors is None and reader.sensors is not None:
        sensors = list(reader.sensors)
    missing = [c for c in [*wanted, *(sensors or [])] if c not in columns]
    if missing:
        quoted = ", ".join(f"'{c}'" for c in missing)
        raise UserError(path, f"missing column{'s' if len(missing) > 1 else ''} {quoted}", f"the file has: {', '.join(columns)}")
    if sensors is None:
        sensors = [c for c in columns if c not in wanted and _has_numbers(frame[c])]
        if not sensors:
            raise UserError(path, "no numeric sensor columns found", "name them with --sensors")
    return sensors, reader


def _has_numbers(column: pd.Series) -> bool:
    """A column is a sensor when it holds numbers (a text column such as an id is not)."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    return bool(pd.to_numeric(column, errors="coerce").notna().any())


def _to_numbers(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    data = frame[column]
    if not pd.api.types.is_numeric_dtype(data) or pd.api.types.is_bool_dtype(data):
        numbers = pd.to_numeric(data, errors="coerce")
        bad = numbers.isna() & data.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise UserError(f"{path}: column '{column}', row {frame.index[i] + 1}", f"'{data.iloc[i]}' is not a number")
        data = numbers
    values = data.to_numpy(dtype=np.float64)
    if np.isinf(values).any():
        i = int(np.argmax(np.isinf(values)))
        raise UserError(f"{path}: column '{column}', row {frame.index[i] + 1}", "infinite value")
    return values


def _to_labels(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    values = _to_numbers(path, frame, column)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        i = int(np.argmax(bad))
        raise UserError(f"{path}: column '{column}', row {frame.index[i] + 1}", f"label '{frame[column].iloc[i]}' is not 0 or 1")
    return values.astype(np.int8)


def _to_timestamps(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    text = frame[column]
    stamps = pd.to_datetime(text, errors="coerce")
    if stamps.isna().any():
        i = int(np.argmax(stamps.isna().to_numpy()))
        raise UserError(f"{path}: column '{column}', row {frame.index[i] + 1}", f"'{text.iloc[i]}' is not a timestamp")
    return stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)


class Cleaner:
    """Stateful per-chunk cleaning, so that streaming a file equals reading it whole."""

    def __init__(self, path: Path, reader: ReaderConfig, sensors: list[str], step_s: float | None = None):
        self.path, self.reader, self.sensors = path, reader, sensors
        self.report = DataReport(step_s=step_s)
        self.last_time: int | None = None
        self.carry: np.ndarray | None = None  # last value of each sensor, for ffill across chunks

    def clean(self, frame: pd.DataFrame) -> Series:
        """Clean consecutive rows; a timestamp earlier than the one before it is refused."""
        path, reader = self.path, self.reader
        rows = frame.index.to_numpy(dtype=np.int64) + 1
        values = np.column_stack([_to_numbers(path, frame, c) for c in self.sensors]) if len(frame) \
            else np.zeros((0, len(self.sensors)))
        labels = _to_labels(path, frame, reader.label) if reader.label else None
        changes = _to_labels(path, frame, reader.changepoint) if reader.changepoint else None
        stamps = _to_timestamps(path, frame, reader.timestamp) if reader.timestamp else None
        self.report.rows_read += len(frame)
        keep = np.ones(len(frame), dtype=bool)
        if stamps is not None and len(stamps):
            previous = np.concatenate([[stamps[0] - 1 if self.last_time is None else self.last_time], stamps[:-1]])
            backwards = stamps < previous
            if backwards.any():
                i = int(np.argmax(backwards))
                raise UserError(f"{path}: row {rows[i]}", "timestamps go backwards here",
                                "sort the file by timestamp first (fit and evaluate sort it for you)")
            duplicate = stamps == previous
            self.report.duplicate_rows += int(duplicate.sum())
            keep &= ~duplicate
        keep &= self._apply_nan_policy(values, rows, keep)
        pick = lambda a: None if a is None else a[keep]  # noqa: E731
        stamps = pick(stamps)
        if stamps is not None and len(stamps):
            self._count_gaps(stamps)
            self.last_time = int(stamps[-1])
        series = Series(path, self.sensors, values[keep], rows[keep], stamps, pick(labels), pick(changes), self.report)
        self.report.rows_kept += len(series)
        return series

    def _apply_nan_policy(self, values: np.ndarray, rows: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Fill NaNs in place (ffill) or mark their rows; return the rows to keep."""
        missing = np.isnan(values) & keep[:, None]
        if not missing.any():
            if keep.any():
                self.carry = values[np.flatnonzero(keep)[-1]].copy()
            return np.ones(len(values), dtype=bool)
        self.report.nan_cells += int(missing.sum())
        policy = self.reader.nan_policy
        if policy == "error":
            i, j = np.argwhere(missing)[0]
            raise UserError(f"{self.path}: column '{self.sensors[j]}', row {rows[i]}", "missing value (NaN)",
                            "set the NaN policy to ffill or drop")
        if policy == "ffill":  # carry each sensor's last value, across chunks; rows with nothing to carry are dropped
            kept = np.flatnonzero(keep)
            start = self.carry if self.carry is not None else np.full(values.shape[1], np.nan)
            filled = pd.DataFrame(np.vstack([start, values[kept]])).ffill().to_numpy()
            values[kept] = filled[1:]
            self.carry = filled[-1]
        out = ~np.isnan(values).any(axis=1)
        self.report.nan_rows_dropped += int((~out & keep).sum())
        return out

    def _count_gaps(self, stamps: np.ndarray) -> None:
        if self.report.step_s is None:
            return
        previous = np.concatenate([[stamps[0] if self.last_time is None else self.last_time], stamps[:-1]])
        steps = (stamps - previous) / 1e9
        gaps = steps > GAP_FACTOR * self.report.step_s
        self.report.gaps += int(gaps.sum())
        if gaps.any():
            self.report.largest_gap_s = max(self.report.largest_gap_s, float(steps.max()))


def _usual_step(stamps: np.ndarray) -> float | None:
    steps = np.diff(stamps)
    steps = steps[steps > 0]
    return float(np.median(steps)) / 1e9 if len(steps) else None


def read_series(path: str | Path, reader: ReaderConfig, sensors: list[str] | None = None,
                labels_required: bool = False) -> Series:
    """Read a whole file: sort it by timestamp if needed (reported), then clean it."""
    path = Path(path)
    frame = next(_frames(path, reader, None))
    if len(frame.columns) == 0:
        raise UserError(path, "the file is empty", "a CSV with a header row and data rows is expected")
    if not len(frame):
        raise UserError(path, "has a header but no data rows")
    sensors, reader = resolve_columns(path, frame, reader, sensors, labels_required)
    step_s, unsorted = None, 0
    if reader.timestamp:
        stamps = _to_timestamps(path, frame, reader.timestamp)
        order = np.argsort(stamps, kind="stable")
        unsorted = int((order != np.arange(len(order))).sum())
        if unsorted:
            frame, stamps = frame.iloc[order], stamps[order]
        step_s = _usual_step(stamps)
    cleaner = Cleaner(path, reader, sensors, step_s)
    series = cleaner.clean(frame)
    cleaner.report.unsorted_rows = unsorted
    return series


def stream_series(path: str | Path, reader: ReaderConfig, sensors: list[str], step_s: float | None,
                  chunk_rows: int) -> tuple[Iterator[Series], DataReport]:
    """Cleaned chunks of a file, in order, in bounded memory; the report fills in as they are read."""
    path = Path(path)
    frames = _frames(path, reader, chunk_rows)
    first = next(frames, None)
    if first is None and path.stat().st_size > 0:
        raise UserError(path, "has a header but no data rows")
    if first is None or len(first.columns) == 0:
        raise UserError(path, "the file is empty", "a CSV with a header row and data rows is expected")
    _, reader = resolve_columns(path, first, reader, sensors)
    cleaner = Cleaner(path, reader, sensors, step_s)

    def chunks() -> Iterator[Series]:
        if not len(first):
            raise UserError(path, "has a header but no data rows")
        yield cleaner.clean(first)
        for frame in frames:
            yield cleaner.clean(frame)

    return chunks(), cleaner.report


def format_stamps(stamps: np.ndarray) -> np.ndarray:
    """int64 ns timestamps → 'YYYY-MM-DD hh:mm:ss' strings."""
    text = np.datetime_as_string(stamps.astype("datetime64[ns]"), unit="s")
    return np.char.replace(text, "T", " ")


def split(series: Series, train_rows: int, window: int, key: str) -> tuple[np.ndarray, Series]:
    """SKAB's per-file split: (training values, test part); the file must hold both a training
    segment and one test window."""
    if series.labels is None:
        raise UserError(key, "has no label column", "evaluation needs labelled files (set the label column)")
    if len(series) < train_rows + window:
        raise UserError(key, f"has {len(series)} rows, fewer than the {train_rows} training rows plus one window of {window}")
    return series.values[:train_rows], series.crop(train_rows)


def _natural(path: Path) -> tuple:
    return (path.parent.as_posix(), int(path.stem) if path.stem.isdigit() else float("inf"), path.stem)


def benchmark_files(raw: Path, groups: tuple[str, ...]) -> list[Path]:
    files = []
    for group in groups:
        folder = raw / group
        found = sorted(folder.glob("*.csv"), key=_natural)
        if not found:
            raise UserError(folder, "no CSV files in this benchmark group", f"check {DOMAIN}.prepare.benchmark in params.yaml")
        files += found
    return files


def _save_series(series: Series, path: Path) -> None:
    arrays = {"values": series.values, "rows": series.rows}
    for name in ("timestamps", "labels", "changepoints"):
        value = getattr(series, name)
        if value is not None:
            arrays[name] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def _load_series(folder: Path, entry: dict) -> Series:
    with np.load(folder / entry["arrays"], allow_pickle=False) as data:
        get = lambda name: data[name] if name in data.files else None  # noqa: E731
        return Series(Path(entry["key"]), list(entry["sensors"]), data["values"], data["rows"], get("timestamps"),
                      get("labels"), get("changepoints"), DataReport(**entry["report"]))


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """The prepare stage: read, check and clean every benchmark file (labels required) and the normal run."""
    entries = []
    jobs = [(path, True) for path in benchmark_files(paths.raw, params.benchmark)]
    if params.normal_file:
        jobs.append((paths.raw / params.normal_file, False))
    with atomic_dir(paths.prepared) as tmp:
        for path, labelled in jobs:
            key = path.relative_to(paths.raw).as_posix()
            series = read_series(path, params.reader, labels_required=labelled)
            arrays = Path(key).with_suffix(".npz").as_posix()
            _save_series(series, tmp / arrays)
            entries.append({"key": key, "labelled": labelled, "arrays": arrays, "sensors": series.sensors,
                            "report": series.report.to_dict(), "anomalous_rows": int(series.labels.sum()) if series.labels is not None else 0})
        write_json(tmp / MANIFEST, {"reader": params.reader.model_dump(mode="json"), "files": entries})
    for entry in entries:
        r = entry["report"]
        print(f"{entry['key']}: {r['rows_kept']} rows, {entry['anomalous_rows']} anomalous, {r['gaps']} gaps "
              f"(largest {r['largest_gap_s']:g} s), {r['duplicate_rows']} duplicates, {r['unsorted_rows']} unsorted, "
              f"{r['nan_cells']} NaN")


def load_prepared(folder: Path) -> tuple[ReaderConfig, dict[str, Series], Series | None]:
    """(reader, labelled benchmark series by key, the normal run or None)."""
    if not (folder / MANIFEST).is_file():
        raise UserError(folder, "no prepared data", f"run `dvc repro prepare@{DOMAIN}` first")
    manifest = read_json(folder / MANIFEST)
    labelled = {e["key"]: _load_series(folder, e) for e in manifest["files"] if e["labelled"]}
    normal = [_load_series(folder, e) for e in manifest["files"] if not e["labelled"]]
    return ReaderConfig.model_validate(manifest["reader"]), labelled, (normal[0] if normal else None)
