"""The `publish:` section of params.yaml: everything the site knows about the domains.

The site builder is domain-free; the headline metric, baseline and the column mappings of the
latent explorer and the latent interpolation of each domain are data, given here. Published
anchors and targets are not: they are `references.<domain>` of params.yaml
(`latente.shared.report.References`), the one source that reports and the site share.
"""
from __future__ import annotations

from typing import Literal, Optional

import pydantic

from latente.shared.params import StrictParams
from latente.shared.report import LocalText

LANGUAGES = ("en", "pt-BR")
Scalar = str | int | float | bool
DomainName = pydantic.constr(pattern=r"^[a-z][a-z0-9_]*$")


class Headline(StrictParams):
    """The one number a domain card shows: `method` against `baseline` on `metric` under `condition`."""

    metric: str
    condition: dict[str, Scalar] = {}
    better: Literal["higher", "lower"]
    method: str = "model"
    baseline: str


class Series(StrictParams):
    """A small chart of a row's numbers in the explorer's panel: one line, or one set of bars, per column.

    Each cell of `columns` holds space-separated numbers, as many in each non-empty cell of a row
    (a row whose cells are all empty has no chart). A line series draws the k-th at
    x = x_start + k·x_step, read per row from the columns `x_start` and `x_step` (0 and 1 when not
    named), so that rows sampled differently (e.g. beats around their R peak) share the axes in their
    own unit. A bar series has no such axis: the k-th number is a bar labelled by the k-th label of
    the row's `x_labels` cell (labels separated by " | "), since what the bars stand for (e.g. a
    window's sensors) may differ from row to row.
    """

    columns: list[str]
    kind: Literal["line", "bar"] = "line"
    x_start: Optional[str] = None
    x_step: Optional[str] = None
    x_labels: Optional[str] = None
    x_title: Optional[LocalText] = None
    y_title: Optional[LocalText] = None

    @pydantic.field_validator("columns")
    @classmethod
    def _some_distinct(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one column: [column, ...]")
        if len(set(value)) < len(value):
            raise ValueError("names a column twice")
        return value

    @pydantic.model_validator(mode="after")
    def _x_of_its_kind(self) -> "Series":
        if self.kind == "bar":
            if self.x_labels is None:
                raise ValueError("a bar series needs x_labels: the column of each row's bar labels")
            if self.x_start is not None or self.x_step is not None:
                raise ValueError("a bar series has no x_start or x_step (its bars are placed by x_labels): remove them")
        elif self.x_labels is not None:
            raise ValueError("x_labels is only used by kind 'bar', not by kind 'line': remove it")
        return self


class Explorer(StrictParams):
    """Which CSV under reports/<domain>/ holds a 2-D projection of the codes, and its columns.

    The defaults are the plain contract `plots/latent_projection.csv` with columns x, y,
    label, group, detail. `media` maps a caption to a path template relative to the report
    folder, formatted with the row's columns (`{file}`; `{file:stem}` drops the extension);
    rows whose file does not exist simply have no media. `text` names a column shown in a
    monospace block (e.g. a sequence). `series` maps a caption to a small line or bar chart of
    numbers stored in the row (e.g. a beat's waveform, original and decoded). `scales` names
    columns of numbers the points can also be coloured by, on a continuous colour scale, beside
    the discrete `group` (e.g. a window's anomaly score beside its label).
    """

    file: str = "plots/latent_projection.csv"
    projections: dict[str, tuple[str, str]] = {"2-D": ("x", "y")}
    label: str = "label"
    group: Optional[str] = "group"
    details: list[str] = ["detail"]
    text: Optional[str] = None
    media: dict[str, str] = {}
    series: dict[str, Series] = {}
    scales: list[str] = []

    @pydantic.field_validator("projections")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("needs at least one projection: {name: [x_column, y_column]}")
        return value

    @pydantic.field_validator("scales")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) < len(value):
            raise ValueError("names a column twice")
        return value


class Interpolation(StrictParams):
    """Which CSV under reports/<domain>/ holds the decodings along a path between two items' codes, and its columns.

    The defaults are the plain contract `plots/interpolation.csv`: a row per step, its position
    `t` (0 at the first item, 1 at the second) and the two items' names in `start` and `end`.
    What a step shows is named here, as the explorer's columns are: `audio` and `image` name
    columns of paths relative to the report folder (a step whose file does not exist has none),
    `text` a column shown in a monospace block (e.g. a sequence), `details` more columns shown
    as they are.
    """

    file: str = "plots/interpolation.csv"
    position: str = "t"
    ends: tuple[str, str] = ("start", "end")
    audio: Optional[str] = None
    image: Optional[str] = None
    text: Optional[str] = None
    details: list[str] = []

    @pydantic.model_validator(mode="after")
    def _shows_something(self) -> "Interpolation":
        if self.audio is None and self.image is None and self.text is None:
            raise ValueError("needs at least one of audio, image or text: the column of what each step shows")
        return self


class DomainSite(StrictParams):
    title: LocalText
    task: LocalText
    items: Optional[str] = None  # the condition key of per-item rows (record, file, speaker, ...)
    headline: Headline
    explorer: Optional[Explorer] = None
    interpolation: Optional[Interpolation] = None


RESERVED_PAGES = {"index", "compare", "assets"}


class PublishParams(StrictParams):
    title: LocalText
    domains: dict[DomainName, DomainSite]  # type: ignore[valid-type]

    @pydantic.field_validator("domains")
    @classmethod
    def _not_reserved(cls, value: dict) -> dict:
        clash = RESERVED_PAGES & set(value)
        if clash:
            raise ValueError(f"{', '.join(sorted(clash))}: the name of a site page, not usable as a domain")
        return value
