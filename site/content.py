"""One domain's report folder turned into what its pages show: tables, headline, targets, report, explorer, interpolation, sweeps."""
from __future__ import annotations

import csv
import json
import math
import shutil
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Optional
from urllib.parse import quote

from latente.shared.errors import UserError
from latente.shared.params import PARAMS_FILE
from latente.shared.report import Anchor, TargetCheck, check_target, load_references
from latente.shared.results import Results
from latente.site.markdown import report_html
from latente.site.params import DomainSite, Explorer, Interpolation, Series
from latente.site.runs import file_date, flat_params, recorded_params
from latente.site.sweeps import SweepView, load_sweeps

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".flac"}
DATA_SUFFIXES = {".csv", ".tsv", ".json"}


class SiteFiles:
    """Copies report files into the site, once each, under `<domain>/<path in the report folder>`."""

    def __init__(self, site: Path, domain: str, folder: Path):
        self.site, self.domain, self.folder = site, domain, folder.resolve()

    def url(self, relative: str) -> Optional[str]:
        """The site URL of `reports/<domain>/<relative>` (copied now), or None when it is not a file there."""
        try:
            source = (self.folder / relative).resolve()
            if not source.is_relative_to(self.folder) or not source.is_file():
                return None
        except (OSError, ValueError):  # e.g. a NUL byte in a link of report.md
            return None
        inside = source.relative_to(self.folder).as_posix()
        dest = self.site / self.domain / inside
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        return quote(f"{self.domain}/{inside}")

    def listing(self, sub: str, suffixes: set[str]) -> list[str]:
        """Relative paths of the files under `sub/` with these suffixes (hidden files skipped)."""
        base = self.folder / sub
        if not base.is_dir():
            return []
        return sorted(p.relative_to(self.folder).as_posix() for p in base.rglob("*")
                      if p.is_file() and p.suffix.lower() in suffixes
                      and not any(part.startswith(".") for part in p.relative_to(self.folder).parts))


@dataclass
class Table:
    columns: list[tuple[str, str]]  # (kind, name): kind "method", "condition" or "metric"
    rows: list[list[Any]]


@dataclass
class Headline:
    metric: str
    condition: dict[str, Any]
    better: str
    model: Optional[float]
    baseline_name: str
    baseline: Optional[float]
    anchor: Optional[Anchor]  # the first published figure of the headline metric

    @property
    def anchor_value(self) -> Optional[float]:
        return None if self.anchor is None else self.anchor.values.get(self.metric)

    def _beats(self, value: Optional[float], other: Optional[float]) -> Optional[bool]:
        if value is None or other is None:
            return None
        return value > other if self.better == "higher" else value < other

    @property
    def beats_baseline(self) -> Optional[bool]:
        return self._beats(self.model, self.baseline)

    @property
    def meets_anchor(self) -> Optional[bool]:
        if self.anchor_value is None or self.model is None:
            return None
        return self.model >= self.anchor_value if self.better == "higher" else self.model <= self.anchor_value


@dataclass
class ExplorerData:
    file: str
    config: Explorer
    data: dict[str, Any]  # columnar, written to <domain>/explorer-data.js
    points: int


@dataclass
class InterpolationData:
    file: str
    config: Interpolation
    ends: tuple[str, ...]  # the two items' names
    positions: list[float]  # of the steps, ascending: the page writes them in its language
    data: dict[str, Any]  # the steps in that order, written to <domain>/interpolation-data.js
    images: set[str]  # report files the steps show, so that the page's gallery leaves them out


@dataclass
class DomainView:
    name: str
    config: DomainSite
    path: str  # reports/<domain>, as shown
    results: Optional[Results] = None
    date: str = ""
    params: list[tuple[str, Any]] = field(default_factory=list)
    params_source: str = ""
    headline: Optional[Headline] = None
    anchors: tuple[Anchor, ...] = ()  # references.<domain>.anchors of params.yaml
    targets: list[TargetCheck] = field(default_factory=list)  # references.<domain>.targets, checked on metrics.json
    tables: list[Table] = field(default_factory=list)
    item_tables: list[Table] = field(default_factory=list)
    report: Optional[str] = None
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative path, url)
    downloads: list[tuple[str, str]] = field(default_factory=list)  # (relative path, url)
    explorer: Optional[ExplorerData] = None
    explorer_missing: Optional[str] = None
    interpolation: Optional[InterpolationData] = None
    interpolation_missing: Optional[str] = None
    sweeps: list[SweepView] = field(default_factory=list)  # sweeps of params.yaml whose target is a stage of this domain

    @property
    def present(self) -> bool:
        return self.results is not None

    @property
    def sweeps_plotted(self) -> bool:
        """Whether the sweeps page draws a plot (a sweep has a finished trial), and so loads Plotly."""
        return any(sweep.complete for sweep in self.sweeps)

    @property
    def targets_met(self) -> int:
        return sum(check.passed for check in self.targets)


def metric_tables(results: Results, items: Optional[str]) -> tuple[list[Table], list[Table]]:
    """Rows grouped by their set of metric names: aggregate tables, then per-item tables."""
    groups: dict[tuple[bool, tuple[str, ...]], list] = {}
    for row in results.rows:
        per_item = items is not None and items in row["condition"]
        groups.setdefault((per_item, tuple(row["metrics"])), []).append(row)
    aggregate, per_item_tables = [], []
    for (per_item, metrics), rows in groups.items():
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row["condition"] if k not in keys]
        columns = [("method", "method")] + [("condition", k) for k in keys] + [("metric", m) for m in metrics]
        body = [[row["method"]] + [row["condition"].get(k) for k in keys] + [row["metrics"][m] for m in metrics] for row in rows]
        (per_item_tables if per_item else aggregate).append(Table(columns, body))
    return aggregate, per_item_tables


def _metric(results: Results, method: str, condition: dict[str, Any], metric: str) -> Optional[float]:
    try:
        return results.find(method, **condition).get(metric)
    except KeyError:
        return None


def headline(results: Results, config: DomainSite, anchors: tuple[Anchor, ...]) -> Headline:
    h = config.headline
    condition = dict(h.condition)
    return Headline(h.metric, condition, h.better, _metric(results, h.method, condition, h.metric), h.baseline,
                    _metric(results, h.baseline, condition, h.metric), next((a for a in anchors if h.metric in a.values), None))


class _RowFormatter(string.Formatter):
    """`{column}` or `{column:stem}` (the value without its extension) in media path templates."""

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "stem":
            return PurePath(str(value)).stem
        return super().format_field(value, format_spec)


def _template_fields(template: str, where: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError as err:
        raise UserError(where, f"not a path template ({err})") from None


def read_explorer(files: SiteFiles, config: Explorer, where: str) -> Optional[ExplorerData]:
    """The projection CSV as columns; None when the file is not there."""
    path = files.folder / config.file
    if not path.is_file():
        return None
    header, rows = _read_csv(path)
    media_fields = {name: _template_fields(t, f"{where}.media.{name}") for name, t in config.media.items()}
    needed = [c for pair in config.projections.values() for c in pair] + [config.label] + config.details
    needed += [c for c in (config.group, config.text) if c] + [f for fs in media_fields.values() for f in fs]
    needed += [c for s in config.series.values() for c in (*s.columns, s.x_start, s.x_step, s.x_labels) if c] + config.scales
    _require_columns(path, header, needed, where)
    coords: dict[str, list[list[float]]] = {}
    for name, (x, y) in config.projections.items():
        pair: list[list[float]] = [[], []]
        for line, row in enumerate(rows, start=2):
            for axis, column in enumerate((x, y)):
                pair[axis].append(_finite(row[column], path, line, column))
        coords[name] = pair
    formatter = _RowFormatter()
    media: dict[str, list[Optional[str]]] = {}
    for name, template in config.media.items():
        try:
            media[name] = [files.url(formatter.vformat(template, (), row)) for row in rows]
        except (ValueError, IndexError) as err:
            raise UserError(f"{where}.media.{name}", f"cannot be formatted ({err})") from None
    data = {
        "projections": coords,
        "label": [row[config.label] for row in rows],
        "group": [row[config.group] for row in rows] if config.group else None,
        "details": {column: [row[column] for row in rows] for column in config.details},
        "text": [row[config.text] for row in rows] if config.text else None,
        "media": media,
        "media_kinds": {name: _media_kind(template) for name, template in config.media.items()},
        "series": {name: _read_series(rows, series, path, name) for name, series in config.series.items()},
        "scales": {column: [_finite(row[column], path, line, column) for line, row in enumerate(rows, start=2)]
                   for column in config.scales},
    }
    return ExplorerData(config.file, config, data, len(rows))


def read_interpolation(files: SiteFiles, config: Interpolation, where: str) -> Optional[InterpolationData]:
    """The interpolation CSV as steps in order of position; None when the file is not there.

    The page names the two items once, so every row must name the same two.
    """
    path = files.folder / config.file
    if not path.is_file():
        return None
    header, rows = _read_csv(path)
    shown = [c for c in (config.audio, config.image, config.text) if c]
    _require_columns(path, header, [config.position, *config.ends, *shown, *config.details], where)
    if not rows:
        raise UserError(path, "has no rows (one a step of the path)")
    ends = tuple(rows[0][column] for column in config.ends)
    for line, row in enumerate(rows, start=2):
        for column, name in zip(config.ends, ends):
            if row[column] != name:
                raise UserError(f"{path}: line {line}, column {column}",
                                f"{row[column]!r}, but line 2 has {name!r} (one path, between the same two items)")
    ordered = sorted(((_finite(row[config.position], path, line, config.position), row) for line, row in enumerate(rows, start=2)),
                     key=lambda step: step[0])
    steps = [{"audio": files.url(row[config.audio]) if config.audio else None,
              "image": files.url(row[config.image]) if config.image else None,
              "text": row[config.text] if config.text else None,
              "details": {column: row[column] for column in config.details}} for _, row in ordered]
    images = {row[config.image] for row in rows} if config.image else set()
    return InterpolationData(config.file, config, ends, [position for position, _ in ordered], {"steps": steps}, images)


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A report CSV's header and rows (a short row's missing cells are empty, as a path or a text cell may be)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle, restval="")
            return list(reader.fieldnames or []), list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(path, f"not a readable UTF-8 CSV file ({err})") from None


def _require_columns(path: Path, header: list[str], needed: list[str], where: str) -> None:
    for column in needed:
        if column not in header:
            raise UserError(path, f"has no column {column!r} (columns: {', '.join(header)})",
                            f"set the column names in params.yaml {where}")


def _finite(text: Optional[str], path: Path, line: int, column: str) -> float:
    """A number of the CSV; text, NaN and infinities are a UserError (the page's JSON has no NaN)."""
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{path}: line {line}, column {column}", f"{text!r} is not a finite number")
    return value


def _read_series(rows: list[dict[str, str]], series: Series, path: Path, name: str) -> dict[str, Any]:
    """One series of every row: per column, the cell's numbers (None for an empty cell), and the x columns.

    The columns of a row are drawn against one x axis, so their non-empty cells must have one length;
    a row's x_start, x_step and x_labels cells are read only where the row has numbers to place, and
    a bar series needs one label per number.
    """
    values: dict[str, list[Optional[list[float]]]] = {column: [] for column in series.columns}
    x_columns = {key: column for key, column in (("x_start", series.x_start), ("x_step", series.x_step)) if column}
    x: dict[str, list[Optional[float]]] = {key: [] for key in x_columns}
    x_labels: Optional[list[Optional[list[str]]]] = [] if series.x_labels else None
    for line, row in enumerate(rows, start=2):
        first: Optional[tuple[str, int]] = None  # the row's first non-empty cell: column, length
        for column in series.columns:
            tokens = (row[column] or "").split()
            cell = [_finite(token, path, line, column) for token in tokens] if tokens else None
            if cell is not None and first is None:
                first = (column, len(cell))
            elif cell is not None and len(cell) != first[1]:
                raise UserError(f"{path}: line {line}, column {column}",
                                f"{len(cell)} numbers, but column {first[0]!r} of series {name!r} has {first[1]}")
            values[column].append(cell)
        for key, column in x_columns.items():
            x[key].append(None if first is None else _finite(row[column], path, line, column))
        if x_labels is not None:
            x_labels.append(None if first is None else _labels(row[series.x_labels], first[1], path, line, series.x_labels, name))
    return {"kind": series.kind, "columns": series.columns, "x_start": x.get("x_start"), "x_step": x.get("x_step"),
            "x_labels": x_labels, "values": values}


def _labels(text: Optional[str], count: int, path: Path, line: int, column: str, name: str) -> list[str]:
    """A cell of bar labels separated by "|", trimmed (labels may hold spaces); one per number of the row."""
    labels = [label.strip() for label in text.split("|")] if text and text.strip() else []
    if len(labels) != count:
        raise UserError(f"{path}: line {line}, column {column}",
                        f"{len(labels)} labels, but series {name!r} has {count} numbers in this row")
    return labels


def _media_kind(template: str) -> str:
    suffix = PurePath(template).suffix.lower()
    return "audio" if suffix in AUDIO_SUFFIXES else "image"


def data_script(variable: str, data: Any) -> str:
    """A page's data as a script setting `window.<variable>` (pages opened from disk cannot fetch JSON files);
    escaped so that no string in it can close the script or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return f"window.{variable} = {text};\n"


def load_domain(name: str, config: DomainSite, reports: Path, root: Path, site: Path) -> DomainView:
    """Everything one domain contributes; a domain without metrics.json is returned empty (skipped)."""
    folder = reports / name
    view = DomainView(name, config, f"reports/{name}")
    metrics = folder / "metrics.json"
    if not metrics.is_file():
        return view
    view.results = Results.read(metrics, name)
    view.date = file_date(metrics)
    params, view.params_source = recorded_params(root, name)
    view.params = flat_params(params)
    references = load_references(name, root / PARAMS_FILE)
    view.anchors = references.anchors
    view.targets = [check_target(view.results, target) for target in references.targets]
    view.headline = headline(view.results, config, view.anchors)
    view.sweeps = load_sweeps(root, name)
    view.tables, view.item_tables = metric_tables(view.results, config.items)
    files = SiteFiles(site, name, folder)
    used: set[str] = set()
    report = folder / "report.md"
    if report.is_file():
        view.report, used = report_html(report.read_text(encoding="utf-8"), files.url)
    if config.interpolation is not None:
        view.interpolation = read_interpolation(files, config.interpolation, f"publish.domains.{name}.interpolation")
        if view.interpolation is None:
            view.interpolation_missing = f"reports/{name}/{config.interpolation.file}"
        else:
            used |= view.interpolation.images
    view.figures = [(rel, files.url(rel)) for rel in files.listing("figures", IMAGE_SUFFIXES) if rel not in used]
    view.downloads = [(rel, files.url(rel)) for rel in ["metrics.json", *files.listing("plots", DATA_SUFFIXES)]]
    if config.explorer is not None:
        view.explorer = read_explorer(files, config.explorer, f"publish.domains.{name}.explorer")
        if view.explorer is None:
            view.explorer_missing = f"reports/{name}/{config.explorer.file}"
    return view
