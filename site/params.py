"""The `publish:` section of params.yaml: everything the site knows about the domains.

The site builder is domain-free; the headline metric, baseline and the latent-explorer column
mapping of each domain are data, given here. Published anchors and targets are not: they are
`references.<domain>` of params.yaml (`latente.shared.report.References`), the one source that
reports and the site share.
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


class Explorer(StrictParams):
    """Which CSV under reports/<domain>/ holds a 2-D projection of the codes, and its columns.

    The defaults are the plain contract `plots/latent_projection.csv` with columns x, y,
    label, group, detail. `media` maps a caption to a path template relative to the report
    folder, formatted with the row's columns (`{file}`; `{file:stem}` drops the extension);
    rows whose file does not exist simply have no media. `text` names a column shown in a
    monospace block (e.g. a sequence).
    """

    file: str = "plots/latent_projection.csv"
    projections: dict[str, tuple[str, str]] = {"2-D": ("x", "y")}
    label: str = "label"
    group: Optional[str] = "group"
    details: list[str] = ["detail"]
    text: Optional[str] = None
    media: dict[str, str] = {}

    @pydantic.field_validator("projections")
    @classmethod
    def _some(cls, value: dict) -> dict:
        if not value:
            raise ValueError("needs at least one projection: {name: [x_column, y_column]}")
        return value


class DomainSite(StrictParams):
    title: LocalText
    task: LocalText
    items: Optional[str] = None  # the condition key of per-item rows (record, file, speaker, ...)
    headline: Headline
    explorer: Optional[Explorer] = None


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
