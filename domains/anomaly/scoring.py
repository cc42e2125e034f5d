"""From window residuals to point labels (SKAB's rule), streamed in chunks, with per-sensor shares.

SKAB's Conv-AE notebook labels point t anomalous when the residuals of the windows starting
at t−W+1 … t−1 (the W−1 windows before the one starting at t) all exceed the UCL, for
t in [W−1, n_windows − W]. Our row score is the smallest of those residuals, so a row is
flagged exactly when its score exceeds the threshold. Rows outside that range (the first
W−1, the last 2W−2) have no score, as in SKAB.

A row's per-sensor shares are each sensor's part of the weighted error summed over the
same windows; an alarm (a run of flagged rows) sums them over its rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from latente.domains.anomaly.data import Series
from latente.domains.anomaly.detector import SCORE_BATCH, Detector


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


def skab_point_labels(residuals: np.ndarray, ucl: float, window: int) -> np.ndarray:
    """SKAB's rule, written as in the notebook (a loop); the reference for `point_scores`."""
    n_windows = len(residuals)
    labels = np.zeros(n_windows + window - 1, dtype=bool)
    above = residuals > ucl
    for t in range(window - 1, n_windows - window + 1):
        labels[t] = above[t - window + 1: t].all()
    return labels


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
