"""The detector: an autoencoder over sensor windows, its standardisation and threshold, and how it
scores rows (SKAB's window-to-point rule, streamed in chunks) and explains its alarms.

Window residual (SKAB): r_j = Σ_s w_s · mean_t |x̂ − x| over the window starting at row j.
SKAB uses w_s = 1. Our default weights each sensor by the short-term share of its training
variance, w_s = min(1, σ(Δx_s) / (√2 σ(x_s))): about 1 for a noisy sensor, near 0 for a slow
one such as a temperature, whose 400 training rows sample too little of its drift for a
z-score to mean much. The weights come from the training rows alone.

Point labels: SKAB's Conv-AE notebook labels point t anomalous when the residuals of the
windows starting at t−W+1 … t−1 (the W−1 windows before the one starting at t) all exceed
the UCL, for t in [W−1, n_windows − W]. Our row score is the smallest of those residuals, so
a row is flagged exactly when its score exceeds the threshold. Rows outside that range (the
first W−1, the last 2W−2) have no score, as in SKAB. A row's per-sensor shares are each
sensor's part of the weighted error summed over the same windows; an alarm (a run of flagged
rows) sums them over its rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pydantic
import torch

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.data import Series, format_stamps
from latente.domains.anomaly.params import DetectorConfig, ReaderConfig
from latente.shared.errors import UserError
from latente.shared.io import atomic_path
from latente.shared.models import Autoencoder, AutoencoderConfig, load_model, save_model

SCORE_BATCH = 2048  # windows per forward pass, aligned to the window index so chunking never changes a result
COLUMNS = ["row", "timestamp", "score", "flag", "top_sensor", "top_share"]


def model_config(model: AutoencoderConfig, sensors: int, window: int) -> AutoencoderConfig:
    """The params' autoencoder with the fields the data decides: 1-D, one channel per sensor, one window long."""
    return AutoencoderConfig.model_validate(
        {**model.model_dump(), "spatial_dims": 1, "in_channels": sensors, "input_size": (window,)})


def windows(z: np.ndarray, window: int) -> np.ndarray:
    """[n, sensors] → [n − window + 1, sensors, window], one window per start row."""
    return np.lib.stride_tricks.sliding_window_view(z, window, axis=0)


def short_term_weights(values: np.ndarray) -> np.ndarray:
    """min(1, σ(Δx) / (√2 σ(x))) per sensor; 1 for a constant sensor."""
    level = values.std(axis=0)
    step = np.diff(values, axis=0).std(axis=0) if len(values) > 1 else np.zeros_like(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = step / (math.sqrt(2.0) * level)
    return np.where(level > 0, np.minimum(1.0, ratio), 1.0)


def sensor_weights(values: np.ndarray, config: DetectorConfig) -> np.ndarray:
    return short_term_weights(values) if config.sensor_weights == "short_term" else np.ones(values.shape[1])


def threshold(train_residuals: np.ndarray, config: DetectorConfig) -> float:
    """SKAB's upper control limit: a quantile of the training residuals times a factor."""
    return float(np.quantile(train_residuals, config.threshold_quantile) * config.threshold_factor)


@dataclass
class Detector:
    """A fitted detector; everything needed to score new rows of the same sensors."""

    model: Autoencoder
    sensors: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    window: int
    threshold: float
    reader: ReaderConfig
    step_s: float | None
    info: dict[str, Any]

    def standardize(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.scale).astype(np.float32)

    @torch.no_grad()
    def window_errors(self, z: np.ndarray, first_window: int = 0) -> np.ndarray:
        """Per-sensor mean |x̂ − x| of every window of standardised rows `z` → [windows, sensors].

        `first_window` is the global index of the first window, so that forward passes cover
        the same windows however the rows arrive.
        """
        wins = windows(z, self.window)
        out = np.empty((len(wins), len(self.sensors)), dtype=np.float32)
        start = 0
        while start < len(wins):
            stop = min(len(wins), start + SCORE_BATCH - (first_window + start) % SCORE_BATCH)
            x = torch.from_numpy(np.ascontiguousarray(wins[start:stop]))
            out[start:stop] = (self.model(x).recon - x).abs().mean(dim=2).numpy()
            start = stop
        return out

    def residuals(self, errors: np.ndarray) -> np.ndarray:
        return errors.astype(np.float64) @ self.weights

    @torch.no_grad()
    def code_shape(self) -> tuple[int, ...]:
        """Shape of one window's code (channels × steps, or units of a flat code)."""
        return tuple(self.model(torch.zeros(1, len(self.sensors), self.window)).z.shape[1:])

    def recalibrated(self, train_values: np.ndarray, weights: np.ndarray, config: DetectorConfig) -> "Detector":
        """The same network with other sensor weights and the threshold recomputed for them."""
        other = replace(self, weights=weights)
        return replace(other, threshold=threshold(other.residuals(other.window_errors(other.standardize(train_values))), config))

    def calibrated(self, train_values: np.ndarray, config: DetectorConfig) -> "Detector":
        """The same network with the standardisation, weights and threshold of other training rows."""
        level = train_values.std(axis=0)
        other = replace(self, mean=train_values.mean(axis=0), scale=np.where(level > 0, level, 1.0),
                        weights=sensor_weights(train_values, config), threshold=math.nan, info=dict(self.info))
        other.threshold = threshold(other.residuals(other.window_errors(other.standardize(train_values))), config)
        return other

    def save(self, folder: str | Path, data: dict[str, Any], force: bool = True) -> Path:
        preprocessing = {
            "sensors": self.sensors, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "weights": self.weights.tolist(), "window": self.window, "threshold": self.threshold,
            "reader": self.reader.model_dump(mode="json"), "step_s": self.step_s,
        }
        return save_model(self.model, folder, domain=DOMAIN, preprocessing=preprocessing, data=data, info=self.info, force=force)


def load_detector(folder: str | Path) -> Detector:
    loaded = load_model(folder, domain=DOMAIN)
    p = loaded.preprocessing
    try:
        return Detector(
            model=loaded.model, sensors=list(p["sensors"]), mean=np.asarray(p["mean"], dtype=np.float64),
            scale=np.asarray(p["scale"], dtype=np.float64), weights=np.asarray(p["weights"], dtype=np.float64),
            window=int(p["window"]), threshold=float(p["threshold"]), reader=ReaderConfig.model_validate(p["reader"]),
            step_s=p["step_s"], info=loaded.info,
        )
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        raise UserError(Path(folder) / "config.json", f"invalid reader settings ({'.'.join(map(str, first['loc']))}: "
                                                      f"{first['msg']})") from None
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(Path(folder) / "config.json", f"not an anomaly detector (missing or bad {err})") from None


# --- scoring: window residuals → point labels, streamed -------------------------------------------------------------

@dataclass
class ScoredRows:
    """Per-row outputs for consecutive rows (NaN score where SKAB's rule gives no label)."""

    rows: np.ndarray  # 1-based data row numbers in the file
    timestamps: np.ndarray | None  # int64 ns
    score: np.ndarray  # float64
    flag: np.ndarray  # bool
    contributions: np.ndarray  # float64 [n, sensors]: weighted error over the checked windows

    def __len__(self) -> int:
        return len(self.score)

    @staticmethod
    def concat(parts: list["ScoredRows"]) -> "ScoredRows":
        stamps = None if not parts or parts[0].timestamps is None else np.concatenate([p.timestamps for p in parts])
        return ScoredRows(np.concatenate([p.rows for p in parts]), stamps, np.concatenate([p.score for p in parts]),
                          np.concatenate([p.flag for p in parts]), np.concatenate([p.contributions for p in parts]))


class StreamScorer:
    """Feed cleaned chunks in order; get scored rows back as soon as they are final.

    Row t needs the windows up to the one starting at t−1, and is known to be labelled once
    the window starting at t+W−1 exists; rows are held back until then (or the end).
    """

    def __init__(self, detector: Detector):
        self.d = detector
        self.window = detector.window
        c = len(detector.sensors)
        self.z = np.zeros((0, c), dtype=np.float32)  # standardised rows not yet in a computed window
        self.z_start = 0  # row index of self.z[0]
        self.errors = np.zeros((0, c), dtype=np.float32)  # per-sensor window errors still needed
        self.errors_start = 0  # window index of self.errors[0]
        self.pending_rows = np.zeros(0, dtype=np.int64)
        self.pending_stamps: np.ndarray | None = None
        self.next_row = 0  # row index of the first pending row
        self.n_rows = 0
        self.window_count = 0
        self.has_stamps: bool | None = None

    def feed(self, chunk: Series) -> ScoredRows:
        if self.has_stamps is None:
            self.has_stamps = chunk.timestamps is not None
            self.pending_stamps = np.zeros(0, dtype=np.int64) if self.has_stamps else None
        self.z = np.concatenate([self.z, self.d.standardize(chunk.values)])
        self.pending_rows = np.concatenate([self.pending_rows, chunk.rows])
        if self.has_stamps:
            self.pending_stamps = np.concatenate([self.pending_stamps, chunk.timestamps])
        self.n_rows += len(chunk)
        self._compute_windows(final=False)
        return self._emit(last_row=self.window_count - self.window)

    def finish(self) -> ScoredRows:
        self._compute_windows(final=True)
        return self._emit(last_row=self.n_rows - 1)

    def _compute_windows(self, final: bool) -> None:
        """Compute whole batches of windows (and, at the end, the last partial batch)."""
        w = self.window
        available = self.z_start + len(self.z) - w + 1  # windows that fit in the rows seen so far
        stop = available if final else (available // SCORE_BATCH) * SCORE_BATCH
        if stop <= self.window_count:
            return
        rows = self.z[self.window_count - self.z_start: stop - self.z_start + w - 1]
        new = self.d.window_errors(rows, first_window=self.window_count)
        self.errors = np.concatenate([self.errors, new])
        self.window_count = stop
        self.z = self.z[stop - self.z_start:]
        self.z_start = stop

    def _emit(self, last_row: int) -> ScoredRows:
        """Score pending rows up to `last_row` (row indices), then drop what is no longer needed."""
        w, first = self.window, self.next_row
        count = max(0, last_row - first + 1)
        c = len(self.d.sensors)
        score = np.full(count, np.nan)
        contributions = np.zeros((count, c))
        t = np.arange(first, first + count)
        labelled = (t >= w - 1) & (t <= self.window_count - w)
        if labelled.any():
            t_lab = t[labelled]
            lo = t_lab[0] - w + 1 - self.errors_start  # first checked window of the first labelled row
            span = self.errors[lo: lo + len(t_lab) + w - 2].astype(np.float64)
            weighted = span * self.d.weights
            residuals = self.d.residuals(span)
            score[labelled] = np.lib.stride_tricks.sliding_window_view(residuals, w - 1).min(axis=1)
            contributions[labelled] = np.lib.stride_tricks.sliding_window_view(weighted, w - 1, axis=0).sum(axis=2)
        flag = np.zeros(count, dtype=bool)
        flag[labelled] = score[labelled] > self.d.threshold
        out = ScoredRows(self.pending_rows[:count], None if self.pending_stamps is None else self.pending_stamps[:count],
                         score, flag, contributions)
        self.pending_rows = self.pending_rows[count:]
        if self.pending_stamps is not None:
            self.pending_stamps = self.pending_stamps[count:]
        self.next_row = first + count
        keep_from = max(0, self.next_row - w + 1)  # first window any pending row still checks
        if keep_from > self.errors_start:
            self.errors = self.errors[keep_from - self.errors_start:]
            self.errors_start = keep_from
        return out


def score_chunks(detector: Detector, chunks: Iterator[Series]) -> Iterator[ScoredRows]:
    scorer = StreamScorer(detector)
    for chunk in chunks:
        part = scorer.feed(chunk)
        if len(part):
            yield part
    yield scorer.finish()


def score_series(detector: Detector, series: Series) -> ScoredRows:
    """Whole-series scoring: the streaming scorer fed one chunk."""
    return ScoredRows.concat(list(score_chunks(detector, iter([series]))))


# --- alarms and their explanation -----------------------------------------------------------------------------------

@dataclass
class Alarm:
    """A run of flagged rows and each sensor's share of its reconstruction error."""

    first: int  # index into the scored rows
    last: int
    rows: tuple[int, int]  # file row numbers
    peak_score: float
    contributions: np.ndarray
    timestamps: tuple[int, int] | None = None
    shares: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        total = self.contributions.sum()
        self.shares = self.contributions / total if total > 0 else np.full(len(self.contributions), np.nan)

    @property
    def length(self) -> int:
        return self.last - self.first + 1


class AlarmTracker:
    """Collect alarms from consecutive scored chunks (an alarm may span chunks)."""

    def __init__(self, n_sensors: int):
        self.alarms: list[Alarm] = []
        self.open: Alarm | None = None
        self.offset = 0
        self.n_sensors = n_sensors

    def update(self, part: ScoredRows) -> None:
        edges = np.diff(np.concatenate([[0], part.flag.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        if self.open is not None and not (len(starts) and starts[0] == 0):
            self._close()
        for s, e in zip(starts, ends):
            stamp = lambda i: None if part.timestamps is None else int(part.timestamps[i])  # noqa: E731
            run = Alarm(self.offset + s, self.offset + e, (int(part.rows[s]), int(part.rows[e])),
                        float(part.score[s: e + 1].max()), part.contributions[s: e + 1].sum(axis=0),
                        None if part.timestamps is None else (stamp(s), stamp(e)))
            if s == 0 and self.open is not None:
                o = self.open
                run = Alarm(o.first, run.last, (o.rows[0], run.rows[1]), max(o.peak_score, run.peak_score),
                            o.contributions + run.contributions, None if o.timestamps is None else (o.timestamps[0], run.timestamps[1]))
            self.open = run
            if e < len(part) - 1:
                self._close()
        self.offset += len(part)

    def finish(self) -> list[Alarm]:
        if self.open is not None:
            self._close()
        return self.alarms

    def _close(self) -> None:
        self.alarms.append(self.open)
        self.open = None


def find_alarms(scored: ScoredRows, n_sensors: int) -> list[Alarm]:
    tracker = AlarmTracker(n_sensors)
    tracker.update(scored)
    return tracker.finish()


# --- the `score` command's outputs: per-row CSV and alarm descriptions ----------------------------------------------

def check_model_columns(csv: Path, detector: Detector, model: Path) -> None:
    """A model needs the very sensor columns it was trained on."""
    try:
        header = pd.read_csv(csv, sep=detector.reader.sep, nrows=0, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise UserError(csv, "the file is empty", "a CSV with a header row and data rows is expected") from None
    except (FileNotFoundError, IsADirectoryError):
        raise UserError(csv, "file not found") from None
    missing = [s for s in detector.sensors if s not in header.columns]
    if missing:
        raise UserError(csv, f"lacks column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
                             f"that the model {model} was trained on",
                        f"the model's sensors are {', '.join(detector.sensors)}")


def top_sensor(scored: ScoredRows, sensors: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Name and share of the sensor with the largest part of each row's error ('' where unscored)."""
    total = scored.contributions.sum(axis=1)
    best = scored.contributions.argmax(axis=1)
    scored_rows = ~np.isnan(scored.score) & (total > 0)
    names = np.where(scored_rows, np.asarray(sensors, dtype=object)[best], "")
    share = np.full(len(scored), np.nan)
    share[scored_rows] = scored.contributions[scored_rows, best[scored_rows]] / total[scored_rows]
    return names, share


def rows_frame(scored: ScoredRows, sensors: list[str]) -> pd.DataFrame:
    names, share = top_sensor(scored, sensors)
    return pd.DataFrame({
        "row": scored.rows,
        "timestamp": format_stamps(scored.timestamps) if scored.timestamps is not None else "",
        "score": scored.score, "flag": scored.flag.astype(np.int8), "top_sensor": names, "top_share": share,
    }, columns=COLUMNS)


@dataclass
class ScoreSummary:
    sensors: list[str]
    rows: int = 0
    scored: int = 0
    flagged: int = 0
    alarms: list[Alarm] = field(default_factory=list)

    def describe(self, alarm: Alarm, top: int = 8) -> str:
        when = ""
        if alarm.timestamps is not None:
            first, last = format_stamps(np.asarray(alarm.timestamps, dtype=np.int64))
            when = f" ({first} → {last})"
        order = np.argsort(-np.nan_to_num(alarm.shares))[:top]
        shares = ", ".join(f"{self.sensors[i]} {100 * alarm.shares[i]:.0f} %" for i in order)
        return (f"rows {alarm.rows[0]}–{alarm.rows[1]}{when}, {alarm.length} rows, peak score {alarm.peak_score:.3g}; "
                f"error shares: {shares}")


def write_scores(out: Path, csv: Path, detector: Detector, chunks: Iterator[Series], force: bool) -> ScoreSummary:
    """Score chunk by chunk, appending to a temporary CSV that replaces `out` only when complete."""
    summary = ScoreSummary(detector.sensors)
    tracker = AlarmTracker(len(detector.sensors))
    with atomic_path(out, force) as tmp, tmp.open("w", newline="") as fh:
        fh.write(",".join(COLUMNS) + "\n")
        for part in score_chunks(detector, chunks):
            rows_frame(part, detector.sensors).to_csv(fh, header=False, index=False, float_format="%.6g")
            tracker.update(part)
            summary.rows += len(part)
            summary.scored += int((~np.isnan(part.score)).sum())
            summary.flagged += int(part.flag.sum())
        if summary.rows < detector.window:
            raise UserError(csv, f"has {summary.rows} usable rows, fewer than one window of {detector.window}")
    summary.alarms = tracker.finish()
    return summary
