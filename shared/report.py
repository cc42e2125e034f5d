"""Report helpers: markdown tables, figures, DVC plot data, and the one target check.

Published figures and targets live in `references.<domain>` of params.yaml, never in code:
reports, the site and the README read them from there, and `check_target` decides pass or
miss with its margin for every domain alike.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import pydantic

from latente.shared.errors import UserError
from latente.shared.io import atomic_path, write_text
from latente.shared.params import PARAMS_FILE, StrictParams, load_params, validate
from latente.shared.results import Results


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 3) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plot_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Plot data for `dvc plots show`: one CSV with a header row."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
    return path


def projection(codes: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Two 2-D views of latent codes [n, d] for the explorers: PCA (distances kept globally) and
    t-SNE (neighbourhoods kept, distances between clusters not)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    pca = PCA(2, random_state=seed).fit_transform(codes)
    tsne = TSNE(2, perplexity=30, init="pca", random_state=seed).fit_transform(codes)
    return {"pca": pca, "tsne": tsne}


def figure_backend() -> None:
    """Headless plotting: call before importing pyplot in stage code."""
    import matplotlib

    matplotlib.use("Agg")


class LocalText(StrictParams):
    """A sentence in each language of the site."""

    en: str
    pt_BR: str = pydantic.Field(alias="pt-BR")

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Anchor(StrictParams):
    """A published figure a domain is shown beside, with where it comes from and how it was measured."""

    label: str
    citation: str
    protocol: str                         # how it was measured: what makes it comparable with our run, or not
    values: dict[str, float | None] = {}  # metric name (CONVENTIONS.md) → published value; None: no figure on this data
    note: LocalText | None = None


class Target(StrictParams):
    """A pass/miss goal on one row of a domain's results.

    The row is `method`'s `metric` under `condition`; the threshold is `value`, or
    `scale` × (the `against` method's same metric) + `offset`, read under the same condition
    unless `against_condition` names another (e.g. the original signal's overall row).
    """

    name: str
    metric: str
    better: Literal["higher", "lower"]
    method: str = "model"
    condition: dict[str, Any] = {}
    value: float | None = None
    against: str | None = None
    against_condition: dict[str, Any] | None = None
    scale: float = 1.0
    offset: float = 0.0
    source: str                           # who set the target (an issue, a paper)

    @pydantic.model_validator(mode="after")
    def _one_threshold(self) -> "Target":
        if (self.value is None) == (self.against is None):
            raise ValueError("give exactly one of value (a fixed threshold) or against (a method to compare with)")
        if self.against is None and self.against_condition is not None:
            raise ValueError("against_condition needs against")
        return self

    def describe(self) -> str:
        sign = "≥" if self.better == "higher" else "≤"
        if self.value is not None:
            return f"{self.metric} {sign} {self.value:g}"
        against = self.against if self.against_condition is None else \
            f"{self.against} ({', '.join(f'{k} {v}' for k, v in self.against_condition.items()) or 'overall'})"
        scaled = f"{self.scale:g} × {against}" if self.scale != 1 else against
        offset = f" {'+' if self.offset > 0 else '−'} {abs(self.offset):g}" if self.offset else ""
        return f"{self.metric} {sign} {scaled}{offset}"


class References(StrictParams):
    """`references.<domain>` of params.yaml: the one source of published figures and targets."""

    anchors: tuple[Anchor, ...] = ()
    targets: tuple[Target, ...] = ()


def load_references(domain: str, file: str | Path = PARAMS_FILE) -> References:
    data = load_params(file)
    section = (data.get("references") or {}).get(domain)
    if section is None:
        raise UserError(f"{file}: references.{domain}", "section is missing")
    return validate(References, section, f"references.{domain}", file)


@dataclass(frozen=True)
class TargetCheck:
    """The outcome of one target: `margin` > 0 is room to spare, < 0 how far it misses (in the metric's unit)."""

    target: Target
    measured: float | None
    threshold: float | None

    @property
    def margin(self) -> float | None:
        if self.measured is None or self.threshold is None:
            return None
        gap = self.measured - self.threshold
        return gap if self.target.better == "higher" else -gap

    @property
    def passed(self) -> bool:
        return self.margin is not None and self.margin >= 0

    @property
    def verdict(self) -> str:
        return "met" if self.passed else ("not measured" if self.margin is None else "missed")


def check_target(results: Results, target: Target) -> TargetCheck:
    """Measure one target against a domain's results; a missing row or NaN is a miss, never a pass."""

    def metric(method: str, condition: dict[str, Any]) -> float | None:
        try:
            value = results.find(method, **condition).get(target.metric)
        except KeyError:
            return None
        return None if value is None or not math.isfinite(value) else float(value)

    measured = metric(target.method, target.condition)
    if target.value is not None:
        threshold = target.value
    else:
        other = metric(target.against, target.condition if target.against_condition is None else target.against_condition)
        threshold = None if other is None else target.scale * other + target.offset
    return TargetCheck(target, measured, threshold)


def condition_text(condition: dict[str, Any]) -> str:
    """A results row's condition as tables print it: "noise 0.05, volume x", or "overall" when empty."""
    return ", ".join(f"{k} {v}" for k, v in condition.items()) or "overall"


def target_table(checks: Sequence[TargetCheck], digits: int = 3) -> str:
    """Markdown table of target checks: what was asked, what was measured, the margin and the verdict."""
    return markdown_table(
        ["target", "condition", "goal", "measured", "threshold", "margin", "verdict", "set by"],
        [(c.target.name, condition_text(c.target.condition),
          c.target.describe(), c.measured, c.threshold, c.margin, c.verdict, c.target.source) for c in checks],
        digits,
    )
