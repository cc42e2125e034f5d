"""Writing per-row scores and explaining alarms (the `score` command's outputs)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from latente.domains.anomaly.data import Series
from latente.domains.anomaly.detector import Detector
from latente.domains.anomaly.scoring import Alarm, AlarmTracker, ScoredRows, score_chunks
from latente.shared.errors import UserError
from latente.shared.io import atomic_path

COLUMNS = ["row", "timestamp", "score", "flag", "top_sensor", "top_share"]


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


def format_stamps(stamps: np.ndarray) -> np.ndarray:
    text = np.datetime_as_string(stamps.astype("datetime64[ns]"), unit="s")
    return np.char.replace(text, "T", " ")


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
