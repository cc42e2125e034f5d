"""The README's results table, rewritten by `dvc repro publish` from the reports and `references:`.

The README is what most readers see first, so its numbers must be the last run's, never copied by
hand: the block between the two markers is replaced on every publish (the rest of the README is
left byte for byte), and a README without the markers is an error rather than a silent skip.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from latente.shared.errors import UserError
from latente.shared.io import write_text
from latente.shared.report import condition_text, fmt, markdown_table
from latente.site.content import DomainView

BEGIN = "<!-- results: written by `dvc repro publish` from reports/ and params.yaml; edits here are overwritten -->"
END = "<!-- /results -->"


def _value(value: Optional[float]) -> str:
    return fmt(value, 3) if value is not None else "–"


def _targets(view: DomainView) -> str:
    if not view.targets:
        return "–"
    missed = [f"{c.target.name} ({c.verdict}" + (f", margin {c.margin:+.3g})" if c.margin is not None else ")")
              for c in view.targets if not c.passed]
    text = f"{view.targets_met} of {len(view.targets)}"
    return f"{text}; missed: {'; '.join(missed)}" if missed else text


def results_block(views: list[DomainView], revision: str) -> str:
    """The markdown between the markers: one row per domain that has results."""
    rows = []
    for view in views:
        if view.headline is None:
            continue
        h = view.headline
        anchor = f"{h.anchor.label}: {_value(h.anchor_value)}" if h.anchor is not None else "–"
        rows.append((view.config.title.en, f"{h.metric} ({condition_text(h.condition)}, {h.better} is better)",
                     _value(h.model), f"{h.baseline_name} {_value(h.baseline)}", anchor, _targets(view)))
    table = markdown_table(["domain", "headline metric", "model", "baseline", "published anchor", "targets met"], rows)
    return (f"{BEGIN}\n\nFrom the reports of revision `{revision}` (`dvc repro`, then `dvc repro publish`); every target with "
            f"its margin is in `reports/<domain>/report.md` and on the site.\n\n{table}\n{END}")


def update_readme(path: Path, views: list[DomainView], revision: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise UserError(path, "has no results block to update", f"put the lines {BEGIN!r} and {END!r} where the table goes")
    write_text(path, text[:start] + results_block(views, revision) + text[end + len(END):])
