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

Calibration (`score --calibrate-rows N`): a detector applied to another file than its training
rows sees another operating point (SKAB's valve files start several degrees apart; the
anomaly-free run at another flow rate), and its standardisation then turns every row into an
outlier. Calibrating redoes the standardisation, the sensor weights and the threshold on the
first N rows of the scored file, as SKAB's per-file protocol does with its training rows, and
keeps the network.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pydantic
import torch

from latente.domains.anomaly import DOMAIN
from latente.domains.anomaly.data import READ_ERRORS, Series, check_text, format_stamps, read_error
from latente.domains.anomaly.params import CalibrationRule, ReaderConfig
from latente.shared.errors import UserError
from latente.shared.io import atomic_path
from latente.shared.models import Autoencoder, AutoencoderConfig, load_model, save_model
from latente.shared.params import first_problem

SCORE_BATCH = 2048  # windows per forward pass, aligned to the window index so chunking never changes a result
COLUMNS = ["row", "timestamp", "score", "flag", "top_sensor", "top_share"]
SHIFT_ROWS = 400
"""Rows at the start of a scored file that the distribution-shift check looks at: the start of a
file is where another operating point shows (a later anomaly stays out of the check), and 400
is the normal segment SKAB's files start with."""
SHIFT_SIGMAS = 5.0
"""A sensor whose median over those rows lies more than this many training standard deviations
from its training mean is reported as shifted. Measured on SKAB's valve1 with the detector fitted
on rows 0:400 of 0.csv (its per-file model): those rows themselves lie within 0.4 σ on every
sensor; the first 400 rows of 1.csv, where that detector flags every row (issue 16), lie 7.6 σ
(Temperature) and 6.9 σ (Thermocouple) away; with the detector fitted on the anomaly-free run,
every valve file lies 39 to 58 σ away on three sensors."""


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


def sensor_weights(values: np.ndarray, rule: CalibrationRule) -> np.ndarray:
    return short_term_weights(values) if rule.sensor_weights == "short_term" else np.ones(values.shape[1])


def threshold(train_residuals: np.ndarray, rule: CalibrationRule) -> float:
    """SKAB's upper control limit: a quantile of the training residuals times a factor."""
    return float(np.quantile(train_residuals, rule.threshold_quantile) * rule.threshold_factor)


def row_scores(residuals: np.ndarray, window: int) -> np.ndarray:
    """The scores of the rows SKAB's rule labels, from the residuals of every window of a stretch of rows:
    row t (W−1 ≤ t ≤ n_windows − W) scores the smallest residual of the windows starting at t−W+1 … t−1."""
    labelled = len(residuals) - 2 * window + 2
    if labelled < 1:
        return np.zeros(0)
    return np.lib.stride_tricks.sliding_window_view(residuals, window - 1)[:labelled].min(axis=1)


def shortest_calibration(window: int) -> int:
    """The fewest rows that hold one row SKAB's rule scores (3W − 2): the least a calibration can use."""
    return 3 * window - 2


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
    rule: CalibrationRule
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

    def calibrated(self, train_values: np.ndarray, rule: CalibrationRule | None = None,
                   far: float | None = None) -> "Detector":
        """The same network with the standardisation, weights and threshold of other rows of normal operation.

        The threshold follows `rule` (the detector's own by default): a quantile of those rows'
        window residuals times a factor. With `far`, it is instead the (1 − far) quantile of
        those rows' scores: a share `far` of them would be flagged.
        """
        rule = rule or self.rule
        level = train_values.std(axis=0)
        other = replace(self, mean=train_values.mean(axis=0), scale=np.where(level > 0, level, 1.0),
                        weights=sensor_weights(train_values, rule), threshold=math.nan, rule=rule, info=dict(self.info))
        residuals = other.residuals(other.window_errors(other.standardize(train_values)))
        if far is None:
            other.threshold = threshold(residuals, rule)
        else:
            scores = row_scores(residuals, self.window)
            if not len(scores):
                raise UserError("--calibrate-rows", f"{len(train_values)} rows hold no row that a window of {self.window} scores",
                                f"calibrate on at least {shortest_calibration(self.window)} rows")
            other.threshold = float(np.quantile(scores, 1.0 - far))
        return other

    def save(self, folder: str | Path, data: dict[str, Any], force: bool = True) -> Path:
        preprocessing = {
            "sensors": self.sensors, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
            "weights": self.weights.tolist(), "window": self.window, "threshold": self.threshold,
            "rule": self.rule.model_dump(mode="json"), "reader": self.reader.model_dump(mode="json"), "step_s": self.step_s,
        }
        return save_model(self.model, folder, domain=DOMAIN, preprocessing=preprocessing, data=data, info=self.info, force=force)


PREPROCESSING_KEYS = ("sensors", "mean", "scale", "weights", "window", "threshold", "rule", "reader", "step_s")
REFIT = "refit it with `latente anomaly fit`"


def _number(value: Any) -> float | None:
    """A JSON number as a float (None for anything else: text, true/false, null)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def load_detector(folder: str | Path) -> Detector:
    """Read a detector folder, checking every preprocessing key of its config.json.

    A damaged or hand-edited config.json must not score silently wrong (a NaN threshold flags
    nothing, since every comparison with NaN is false) nor fail deep inside numpy (a negative
    window): each key is checked here and a bad one is one error line naming it.
    """
    loaded = load_model(folder, domain=DOMAIN)
    config = Path(folder) / "config.json"
    p = loaded.preprocessing

    def bad(key: str, problem: str, fix: str = REFIT) -> UserError:
        return UserError(f"{config}: preprocessing.{key}", problem, fix)

    if not isinstance(p, dict):
        raise UserError(config, "preprocessing is not an object: not an anomaly detector", REFIT)
    missing = [k for k in PREPROCESSING_KEYS if k not in p]
    if missing:
        raise UserError(config, f"not an anomaly detector of this latente version (no preprocessing.{', '.join(missing)})", REFIT)
    unknown = [k for k in p if k not in PREPROCESSING_KEYS]
    if unknown:
        raise bad(unknown[0], "unknown key (misspelt?)", f"the keys are {', '.join(PREPROCESSING_KEYS)}")
    sensors = p["sensors"]
    if not isinstance(sensors, list) or not sensors or not all(isinstance(s, str) and s for s in sensors):
        raise bad("sensors", "is not a list of column names")
    if len(set(sensors)) < len(sensors):
        raise bad("sensors", "names a column twice")
    if len(sensors) != loaded.model.config.in_channels:
        raise bad("sensors", f"names {len(sensors)} columns, but the network takes {loaded.model.config.in_channels}")
    window = p["window"]
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise bad("window", f"{window!r} is not a window length (a whole number of at least 2 rows)")
    if (window,) != tuple(loaded.model.config.input_size or ()):
        raise bad("window", f"{window} differs from the network's input length "
                            f"{', '.join(map(str, loaded.model.config.input_size or ())) or 'none'}")
    vectors = {}
    for key in ("mean", "scale", "weights"):
        numbers = [_number(v) for v in p[key]] if isinstance(p[key], list) else None
        if numbers is None or len(numbers) != len(sensors) or any(v is None or not math.isfinite(v) for v in numbers):
            raise bad(key, f"is not a list of {len(sensors)} finite numbers (one per sensor)")
        vectors[key] = np.asarray(numbers, dtype=np.float64)
    if (vectors["scale"] <= 0).any():
        raise bad("scale", "holds a scale that is not above 0")
    if (vectors["weights"] < 0).any():
        raise bad("weights", "holds a negative weight")
    limit = _number(p["threshold"])
    if limit is None or not math.isfinite(limit) or limit < 0:
        raise bad("threshold", f"{p['threshold']!r} is not a threshold (a finite number of at least 0)")
    step_s = p["step_s"]
    if step_s is not None and not ((_number(step_s) or 0) > 0 and math.isfinite(step_s)):
        raise bad("step_s", f"{step_s!r} is not a time step in seconds (a number above 0, or null)")
    try:
        rule = CalibrationRule.model_validate(p["rule"])
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        raise bad(".".join(["rule", *map(str, loc)]), problem) from None
    try:
        reader = ReaderConfig.model_validate(p["reader"])
    except pydantic.ValidationError as err:
        loc, problem = first_problem(err)
        raise bad(".".join(["reader", *map(str, loc)]), f"invalid reader settings ({problem})") from None
    return Detector(model=loaded.model, sensors=list(sensors), mean=vectors["mean"], scale=vectors["scale"],
                    weights=vectors["weights"], window=window, threshold=limit, rule=rule, reader=reader,
                    step_s=None if step_s is None else float(step_s), info=loaded.info)


@dataclass
class WindowCodes:
    """The explorer's windows of one series: one row each (rows, time, label, score, error shares, the
    top sensor's window against its reconstruction) and its code."""

    rows: list[dict]
    codes: np.ndarray  # [windows, code size]


def _numbers(values: np.ndarray) -> str:
    return " ".join(f"{v:.4f}" for v in values)


@torch.no_grad()
def window_codes(detector: Detector, series: Series) -> WindowCodes:
    """Every window of a labelled series through the detector: the code its encoder gives it, its
    residual over the threshold (the score whose minima the alarm rule takes), and each sensor's
    share of that residual (its weighted error over the weighted sum).

    A window's label says whether none, some or all of its rows are labelled anomalous.
    """
    z = detector.standardize(series.values)
    slices = np.ascontiguousarray(windows(z, detector.window))
    out = detector.model(torch.from_numpy(slices))
    weighted = detector.window_errors(z).astype(np.float64) * detector.weights
    residual = weighted.sum(axis=1)
    shares = weighted / np.where(residual > 0, residual, 1.0)[:, None]
    stamps = format_stamps(series.timestamps) if series.timestamps is not None else None
    rows = []
    for j in range(len(slices)):
        last = j + detector.window - 1
        anomalous = int(series.labels[j : last + 1].sum()) if series.labels is not None else 0
        top = int(shares[j].argmax())
        rows.append({
            "window": f"rows {series.rows[j]}–{series.rows[last]}", "first_row": int(series.rows[j]), "last_row": int(series.rows[last]),
            "time": "" if stamps is None else str(stamps[last]),
            "label": "normal" if anomalous == 0 else "anomalous" if anomalous == detector.window else "partly anomalous",
            "anomalous_rows": anomalous, "score": round(float(residual[j] / detector.threshold), 5),
            "top_sensor": detector.sensors[top], "sensors": " | ".join(detector.sensors), "error_share": _numbers(shares[j]),
            "top_sensor_window": _numbers(slices[j, top]), "top_sensor_reconstruction": _numbers(out.recon[j, top].numpy()),
        })
    return WindowCodes(rows, out.z.reshape(len(slices), -1).numpy().astype(np.float64))


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

    def tail(self, start: int) -> "ScoredRows":
        """The rows from index `start` on."""
        return ScoredRows(self.rows[start:], None if self.timestamps is None else self.timestamps[start:],
                          self.score[start:], self.flag[start:], self.contributions[start:])

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


def first_rows(chunks: Iterator[Series], n: int, n_sensors: int) -> tuple[np.ndarray, Iterator[Series]]:
    """The values of the first `n` rows of a stream of chunks (fewer if it is shorter), and the
    whole stream again: the chunks read to get them are held and given back first."""
    held, count = [], 0
    for chunk in chunks:
        held.append(chunk)
        count += len(chunk)
        if count >= n:
            break
    values = np.concatenate([c.values for c in held])[:n] if held else np.zeros((0, n_sensors))
    return values, itertools.chain(held, chunks)


def distribution_shift(detector: Detector, values: np.ndarray) -> list[str]:
    """The sensors whose median over `values` lies more than SHIFT_SIGMAS training standard
    deviations from the training mean, most shifted first: 'Temperature −7.6 σ (median 71.3; fitted 79.0 ± 1.01)'.

    The median, so that a short anomaly among those rows does not move it.
    """
    if not len(values):
        return []
    median = np.median(values, axis=0)
    z = (median - detector.mean) / detector.scale
    shifted = [i for i in np.argsort(-np.abs(z)) if abs(z[i]) > SHIFT_SIGMAS]
    return [f"{detector.sensors[i]} {f'{z[i]:+.1f}'.replace('-', '−')} σ "
            f"(median {median[i]:.4g}; fitted {detector.mean[i]:.4g} ± {detector.scale[i]:.3g})" for i in shifted]


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
    check_text(csv)
    try:
        header = pd.read_csv(csv, sep=detector.reader.sep, nrows=0, skipinitialspace=True)
    except READ_ERRORS as err:
        raise read_error(csv, err) from None
    missing = [s for s in detector.sensors if s not in header.columns]
    if missing:
        hint = (f"the file reads as one column with separator {detector.reader.sep!r}: give its separator with --sep"
                if len(header.columns) == 1 else f"the model's sensors are {', '.join(detector.sensors)}")
        raise UserError(csv, f"lacks column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
                             f"that the model {model} was trained on", hint)


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
