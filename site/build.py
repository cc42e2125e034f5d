"""Build reports/site: every page in every language from one set of templates and one strings file."""
from __future__ import annotations

import functools
import math
import shutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import jinja2
import yaml

from latente.shared.io import atomic_dir, write_json
from latente.shared.report import LocalText, Target
from latente.shared.sweep import yaml_value
from latente.site.content import DomainView, data_script, load_domain
from latente.site.params import LANGUAGES, PublishParams
from latente.site.runs import Previous, Revision, git_revision, now, previous_summary
from latente.site.sweeps import plot_data

HERE = Path(__file__).parent
STRINGS_FILE = HERE / "strings.yaml"
SITE = "reports/site"
SUMMARY = "reports/summary.json"  # {domain: Results.flat()} of the aggregate rows; `dvc metrics diff` reads it


@lru_cache(maxsize=1)
def load_strings() -> dict[str, dict[str, str]]:
    """key → {language: text}; every key must have every language."""
    strings = yaml.safe_load(STRINGS_FILE.read_text(encoding="utf-8"))
    for key, texts in strings.items():
        if not isinstance(texts, dict) or set(texts) != set(LANGUAGES) or not all(isinstance(v, str) for v in texts.values()):
            raise ValueError(f"{STRINGS_FILE}: {key}: needs a text for each of {', '.join(LANGUAGES)}")
    return strings


def page_file(page: str, lang: str, extension: str = "html") -> str:
    """`compare.html` in the first language, `compare.pt-BR.html` in the others (and so for a page's own data script)."""
    return f"{page}.{extension}" if lang == LANGUAGES[0] else f"{page}.{lang}.{extension}"


def format_number(value: Any, lang: str) -> str:
    """Four significant digits (never in exponent form), with the language's decimal mark."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) or value == 0:
        text = f"{value:,.0f}"
    else:
        decimals = min(8, max(0, 3 - math.floor(math.log10(abs(value)))))
        text = f"{value:,.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    if lang == "pt-BR":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


@dataclass
class DomainDiff:
    name: str
    status: str  # "compared", "new" (not in the previous run) or "missing" (no report now)
    rows: list[tuple[str, Optional[float], Optional[float]]] = field(default_factory=list)  # changed keys
    unchanged: int = 0


def compare(domains: list[DomainView], current: dict[str, Any], previous: Optional[dict[str, Any]]) -> list[DomainDiff]:
    diffs = []
    for view in domains:
        if view.name not in current:
            diffs.append(DomainDiff(view.name, "missing"))
            continue
        if previous is None or view.name not in previous:
            diffs.append(DomainDiff(view.name, "new"))
            continue
        new, old = current[view.name], previous[view.name]
        diff = DomainDiff(view.name, "compared")
        for key in [*new, *(k for k in old if k not in new)]:
            if new.get(key) == old.get(key):
                diff.unchanged += 1
            else:
                diff.rows.append((key, old.get(key), new.get(key)))
        diffs.append(diff)
    return diffs


class Renderer:
    """Jinja with autoescaping: every value from reports or params is escaped on output."""

    def __init__(self, params: PublishParams, domains: list[DomainView], revision: Revision, built: str):
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.strings = load_strings()
        self.common = {"params": params, "domains": domains, "revision": revision, "built": built,
                       "languages": LANGUAGES, "page_file": page_file, "summary_path": SUMMARY}

    def render(self, template: str, page: str, lang: str, **context: Any) -> str:
        strings = self.strings

        def t(name: str, **values: Any) -> str:
            return strings[name][lang].format(**values)

        def metric_label(name: str) -> str:
            return strings[f"metric.{name}"][lang] if f"metric.{name}" in strings else name

        def num(value: Any) -> str:
            return format_number(value, lang)

        def setting(value: Any) -> str:
            """A params value: a number in the page's language, a string as it is, anything else (a list, a boolean,
            null) as `dvc exp run -S` takes it."""
            if isinstance(value, str):
                return value
            return num(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else yaml_value(value)

        def condition_text(condition: dict[str, Any]) -> str:
            return ", ".join(f"{k} = {num(v)}" for k, v in condition.items()) or t("card.overall")

        def signed(value: Optional[float]) -> str:
            return "–" if value is None else ("+" if value > 0 else "") + num(value)

        def change(old: Optional[float], new: Optional[float]) -> str:
            return "–" if old is None or new is None else signed(new - old)

        def local(text: LocalText) -> str:
            return text.en if lang == "en" else text.pt_BR

        def goal(target: Target) -> str:
            """`PRD (%) ≤ 2,73`, or `accuracy ≥ 1,05 × mfcc + 0,01`: the threshold in the page's language."""
            sign = "≥" if target.better == "higher" else "≤"
            if target.value is not None:
                return f"{metric_label(target.metric)} {sign} {num(target.value)}"
            scaled = target.against if target.scale == 1 else f"{num(target.scale)} × {target.against}"
            offset = f" {'+' if target.offset > 0 else '−'} {num(abs(target.offset))}" if target.offset else ""
            return f"{metric_label(target.metric)} {sign} {scaled}{offset}"

        def language_name(code: str) -> str:
            return strings["lang.name"][code]

        return self.env.get_template(template).render(
            **self.common, **context, page=page, lang=lang, t=t, num=num, setting=setting, metric_label=metric_label,
            condition_text=condition_text, change=change, signed=signed, local=local, goal=goal, language_name=language_name,
            link=lambda name: page_file(name, lang))


def _copy_assets(out: Path, with_plotly: bool) -> None:
    assets = out / "assets"
    shutil.copytree(HERE / "assets", assets)
    if with_plotly:
        import plotly

        shutil.copyfile(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", assets / "plotly.min.js")


def build_site(params: PublishParams, root: Path = Path(".")) -> list[DomainView]:
    """Build `root/reports/site` from `root/reports/<domain>/` and write `root/reports/summary.json`.

    A domain without metrics.json is skipped with a note on the site; the previous committed
    run's summary is read through DVC at HEAD (none outside a DVC repository).
    """
    site, summary = root / SITE, root / SUMMARY
    revision = git_revision(root)
    previous: Previous = previous_summary(root, SUMMARY)
    with atomic_dir(site) as out:
        domains = [load_domain(name, config, root / "reports", root, out) for name, config in params.domains.items()]
        current = {d.name: d.results.flat(skip_condition=d.config.items) for d in domains if d.results is not None}
        diffs = compare(domains, current, previous.summary)
        _copy_assets(out, with_plotly=any(d.explorer or d.sweeps_plotted for d in domains))
        for view in domains:
            if view.explorer:
                (out / view.name / "explorer-data.js").write_text(data_script("LATENTE_EXPLORER", view.explorer.data), encoding="utf-8")
            if view.interpolation:  # one file for both languages: the pages write the steps' positions
                (out / view.name / "interpolation-data.js").write_text(
                    data_script("LATENTE_INTERPOLATION", view.interpolation.data), encoding="utf-8")
        renderer = Renderer(params, domains, revision, now())
        for lang in LANGUAGES:
            pages = [("index.html", "index", {}), ("compare.html", "compare", {"diffs": diffs, "previous": previous})]
            pages += [("domain.html", view.name, {"view": view}) for view in domains if view.results is not None]
            for view in (v for v in domains if v.sweeps):
                plot_script = page_file(f"{view.name}/sweeps-data", lang, "js")  # per language: its tick labels are numbers
                if view.sweeps_plotted:
                    data = plot_data(view.sweeps, functools.partial(format_number, lang=lang))
                    (out / plot_script).write_text(data_script("LATENTE_SWEEPS", data), encoding="utf-8")
                pages.append(("sweeps.html", f"sweeps-{view.name}", {"view": view, "plot_script": plot_script}))
            for template, page, context in pages:
                (out / page_file(page, lang)).write_text(renderer.render(template, page, lang, **context), encoding="utf-8")
    write_json(summary, current)
    skipped = [d.name for d in domains if d.results is None]
    print(f"site: {site / 'index.html'} ({len(current)} domains"
          + (f"; skipped, no metrics.json: {', '.join(skipped)}" if skipped else "") + f"); summary: {summary}", file=sys.stderr)
    return domains
