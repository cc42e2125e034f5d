"""The prepare stage's output: cleaned series as .npz (no pickle) plus a manifest with data reports."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from latente.domains.anomaly.data import DataReport, Series, read_series
from latente.domains.anomaly.params import PrepareParams, ReaderConfig
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json

MANIFEST = "manifest.json"


def _natural(path: Path) -> tuple:
    return (path.parent.as_posix(), int(path.stem) if path.stem.isdigit() else float("inf"), path.stem)


def benchmark_files(raw: Path, groups: tuple[str, ...]) -> list[Path]:
    files = []
    for group in groups:
        folder = raw / group
        found = sorted(folder.glob("*.csv"), key=_natural)
        if not found:
            raise UserError(folder, "no CSV files in this benchmark group", "check prepare.benchmark in params.yaml")
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


def prepare(raw: Path, out: Path, params: PrepareParams) -> dict:
    """Read, check and clean every benchmark file (labels required) and the normal run."""
    entries = []
    jobs = [(path, True) for path in benchmark_files(raw, params.benchmark)]
    if params.normal_file:
        jobs.append((raw / params.normal_file, False))
    with atomic_dir(out) as tmp:
        for path, labelled in jobs:
            key = path.relative_to(raw).as_posix()
            series = read_series(path, params.reader, labels_required=labelled)
            arrays = Path(key).with_suffix(".npz").as_posix()
            _save_series(series, tmp / arrays)
            entries.append({"key": key, "labelled": labelled, "arrays": arrays, "sensors": series.sensors,
                            "report": series.report.to_dict(), "anomalous_rows": int(series.labels.sum()) if series.labels is not None else 0})
        manifest = {"reader": params.reader.model_dump(mode="json"), "files": entries}
        write_json(tmp / MANIFEST, manifest)
    return manifest


def load_prepared(folder: Path) -> tuple[ReaderConfig, dict[str, Series], Series | None]:
    """(reader, labelled benchmark series by key, the normal run or None)."""
    if not (folder / MANIFEST).is_file():
        raise UserError(folder, "no prepared data", "run `dvc repro prepare@anomaly` first")
    manifest = read_json(folder / MANIFEST)
    labelled = {e["key"]: _load_series(folder, e) for e in manifest["files"] if e["labelled"]}
    normal = [_load_series(folder, e) for e in manifest["files"] if not e["labelled"]]
    return ReaderConfig.model_validate(manifest["reader"]), labelled, (normal[0] if normal else None)
