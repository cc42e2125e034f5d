"""The site built from tiny real runs: pages, numbers, files, summary metrics and the error cases."""
from __future__ import annotations

import ast
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from latente.shared.errors import UserError
from latente.site.build import HERE, compare, format_number, load_strings, page_file
from latente.site.content import DomainView
from latente.site.markdown import report_html
from latente.site.results import load_results, summarise

PRESENT = ("ecg", "speech", "protein")
MISSING = ("mri", "anomaly")


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append((tag, name, value))
            if name == "id":
                self.ids.add(value)


def metrics_of(root: Path, domain: str):
    return load_results(root / "reports" / domain / "metrics.json", domain)


def test_every_page_in_both_languages_and_missing_domains_skipped(built_site):
    site = built_site / "reports" / "site"
    for page in ("index", "compare", *PRESENT):
        for lang in ("en", "pt-BR"):
            assert (site / page_file(page, lang)).is_file(), page_file(page, lang)
    for domain in MISSING:
        assert not (site / f"{domain}.html").exists()
        card = _section(site / "index.html", f"card-{domain}")
        assert f"reports/{domain}/metrics.json" in card and f"dvc repro evaluate@{domain}" in card
        assert "No report yet" in card
    assert "Ainda sem relatório" in (site / "index.pt-BR.html").read_text()


def _section(page: Path, section_id: str) -> str:
    html = page.read_text()
    start = html.index(f'id="{section_id}"')
    return html[start:html.index("</section>", start)]


def test_cards_show_headline_baseline_and_anchor(built_site, publish_params):
    site = built_site / "reports" / "site"
    for domain in PRESENT:
        config = publish_params.domains[domain]
        h = config.headline
        results = metrics_of(built_site, domain)
        model = results.find(h.method, dict(h.condition))[h.metric]
        baseline = results.find(h.baseline, dict(h.condition))[h.metric]
        for lang in ("en", "pt-BR"):
            card = _section(site / page_file("index", lang), f"card-{domain}")
            assert f'<td class="value">{format_number(model, lang)}</td>' in card
            assert f'<td class="value">{format_number(baseline, lang)}</td>' in card
            assert f'<td class="value">{format_number(config.anchors[0].value, lang)}</td>' in card
            assert config.title.get(lang) in card
        beats = model > baseline if h.better == "higher" else model < baseline
        card = _section(site / "index.html", f"card-{domain}")
        assert ("beats the baseline" if beats else "does not beat the baseline") in card
        assert "no git revision" in card and "Params of the run (params.yaml)" in card  # built outside git and DVC


def test_number_format_per_language():
    assert [format_number(v, "en") for v in (8.5621, 26.4713, 0.7439, 0.75800001, 6069, 1234.56, 0.00123, 30.0, 0, None)] == [
        "8.562", "26.47", "0.7439", "0.758", "6,069", "1,235", "0.00123", "30", "0", "–"]
    assert [format_number(v, "pt-BR") for v in (8.5621, 6069, 1234.56, -0.5)] == ["8,562", "6.069", "1.235", "-0,5"]


def test_summary_holds_the_aggregate_rows_only(built_site):
    summary = json.loads((built_site / "reports" / "summary.json").read_text())
    assert sorted(summary) == sorted(PRESENT)
    ecg = metrics_of(built_site, "ecg")
    assert summary["ecg"]["model"]["operating_point=A"]["prd"] == ecg.find("model", {"operating_point": "A"})["prd"]
    assert summary["ecg"]["original"]["overall"]["rpeak_f1"] == ecg.find("original", {})["rpeak_f1"]
    speech = metrics_of(built_site, "speech")
    assert summary["speech"]["mfcc"]["snr_db=10.0"]["accuracy"] == speech.find("mfcc", {"snr_db": 10.0})["accuracy"]
    text = json.dumps(summary)
    assert "record=" not in text and "speaker=" not in text  # per-item rows are left out
    protein = metrics_of(built_site, "protein")
    assert summary["protein"] == summarise(protein, None)


def test_local_links_and_images_resolve_and_nothing_loads_from_the_network(built_site):
    site = built_site / "reports" / "site"
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 10
    for page in pages:
        parser = Links()
        parser.feed(page.read_text())
        for tag, attribute, url in parser.links:
            parts = urlsplit(url)
            if parts.scheme:
                assert tag == "a" and parts.scheme in ("http", "https", "mailto"), (page.name, url)
                continue
            if not parts.path:
                assert parts.fragment in parser.ids, (page.name, url)
                continue
            assert (site / unquote(parts.path)).is_file(), (page.name, url)
        html = page.read_text()
        assert "cdn." not in html and "<script src=\"http" not in html and "<link rel=\"stylesheet\" href=\"http" not in html


def test_domain_page_renders_report_tables_figures_and_literature(built_site, publish_params):
    site = built_site / "reports" / "site"
    html = (site / "ecg.html").read_text()
    assert "<h2>ECG compression on MIT-BIH</h2>" in html  # the report's h1, demoted under the page's h1
    assert '<img src="ecg/figures/rate_distortion.png"' in html
    assert (site / "ecg/figures/rate_distortion.png").read_bytes() == (built_site / "reports/ecg/figures/rate_distortion.png").read_bytes()
    assert '<a href="ecg/plots/rate_distortion.csv" download>' in html
    for anchor in publish_params.domains["ecg"].anchors:
        assert anchor.citation.replace("'", "&#39;") in html
    # every aggregate row of metrics.json is in a table: the PRD of operating point A, per record in <details>
    ecg = metrics_of(built_site, "ecg")
    row = ecg.find("model", {"operating_point": "A", "record": "100"})
    details = html[html.index("Rows per item (record)"):]
    assert f'<td class="metric">{format_number(row["prdn"], "en")}</td>' in details
    speech = (site / "speech.html").read_text()
    assert 'href="speech/figures/audio/' in speech  # the report's audio links point into the site


def test_explorer_data_is_the_domains_projection(built_site):
    site = built_site / "reports" / "site"
    for domain, file in (("speech", "projection.csv"), ("protein", "latent.csv")):
        rows = list(csv.DictReader((built_site / "reports" / domain / "plots" / file).open()))
        script = (site / domain / "explorer-data.js").read_text()
        data = json.loads(script.removeprefix("window.LATENTE_EXPLORER = ").rstrip().rstrip(";"))
        assert len(data["label"]) == len(rows) > 20
        if domain == "speech":
            assert data["projections"]["t-SNE"][0] == [float(r["tsne_1"]) for r in rows]
            assert data["group"] == [r["speaker"] for r in rows] and data["details"]["file"] == [r["file"] for r in rows]
            audio = [u for u in data["media"]["reconstruction (Griffin-Lim)"] if u]
            clips = list((built_site / "reports/speech/figures/audio").glob("*_original.wav"))
            assert len(audio) == len(clips) == 2
            assert all((site / unquote(u)).is_file() for u in audio)
        else:
            assert data["text"] == [r["sequence"] for r in rows] and data["label"][0] == rows[0]["id"]
            assert data["projections"]["PCA"][1] == [float(r["pc2"]) for r in rows]


@pytest.mark.parametrize("damage, fragments", [
    (lambda d: d["results"][0]["metrics"].update(prd="8.5"), ["reports/ecg/metrics.json: results[0].metrics.prd: must be a number or null, not '8.5'"]),
    (lambda d: d.pop("results"), ["reports/ecg/metrics.json: results", "missing"]),
    (lambda d: d.update(domain="mri"), ["reports/ecg/metrics.json: domain", "expected 'ecg'"]),
])
def test_malformed_metrics_is_one_line_error_and_writes_nothing(copy_reports, edit_metrics, tmp_path, monkeypatch, capsys, damage, fragments):
    from latente.pipelines.publish import main

    root = copy_reports(tmp_path / "repo", ("ecg",))
    edit_metrics(root / "reports/ecg/metrics.json", damage)
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and all(f in err for f in fragments), err
    assert not (root / "reports/site").exists() and not (root / "reports/summary.json").exists()


def test_not_json_and_missing_explorer_column_name_the_file(copy_reports, tmp_path, publish_params):
    from latente.site import build_site

    root = copy_reports(tmp_path / "a", ("ecg",))
    (root / "reports/ecg/metrics.json").write_text("{not json")
    with pytest.raises(UserError, match=r"reports/ecg/metrics.json: not valid JSON"):
        build_site(publish_params, root)
    root = copy_reports(tmp_path / "b", ("protein",))
    latent = root / "reports/protein/plots/latent.csv"
    latent.write_text(latent.read_text().replace("sequence", "seq", 1))
    with pytest.raises(UserError, match=r"latent.csv: has no column 'sequence'.*publish.domains.protein.explorer"):
        build_site(publish_params, root)
    assert not (root / "reports/site").exists()


def test_bad_params_name_the_key(tmp_path, monkeypatch, capsys, copy_reports):
    from latente.pipelines.publish import main

    root = copy_reports(tmp_path / "repo", ())
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("better: lower, baseline: wavelet", "better: smaller, baseline: wavelet"))
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit):
        main([])
    assert "error: params.yaml: publish.domains.ecg.headline.better:" in capsys.readouterr().err


def test_report_links_are_rewritten_or_dropped():
    known = {"figures/a.png": "d/figures/a.png", "figures/a b.wav": "d/figures/a%20b.wav"}
    text = ("# Title\n\n![fig](figures/a.png) ![gone](figures/missing.png) [clip](figures/a%20b.wav) "
            "[up](../../etc/passwd) [js](javascript:alert(1)) [web](https://example.org/x) [here](#title)\n\n"
            "<script>alert(1)</script>\n")
    html, used = report_html(text, known.get)
    assert "<h2>Title</h2>" in html
    assert '<img src="d/figures/a.png" alt="fig"' in html and "[gone]" in html and "missing.png" not in html
    assert '<a href="d/figures/a%20b.wav">clip</a>' in html
    assert "<a>up</a>" in html and "passwd" not in html
    assert "javascript:" not in html.replace("[js](javascript:alert(1))", "")
    assert '<a href="https://example.org/x">web</a>' in html and '<a href="#title">here</a>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert used == {"figures/a.png", "figures/a b.wav"}


def test_compare_reports_changed_new_and_missing_domains(publish_params):
    views = [DomainView(n, publish_params.domains[n], f"reports/{n}") for n in ("ecg", "speech", "mri")]
    current = {"ecg": {"model": {"overall": {"prd": 8.0, "cr": 30.0}}}, "speech": {"model": {"overall": {"accuracy": 0.7}}}}
    previous = {"ecg": {"model": {"overall": {"prd": 9.0, "cr": 30.0, "qs": 3.3}}}}
    ecg, speech, mri = compare(views, current, previous)
    assert (ecg.status, ecg.rows, ecg.unchanged) == ("compared", [("model.overall.prd", 9.0, 8.0), ("model.overall.qs", 3.3, None)], 1)
    assert speech.status == "new" and mri.status == "missing"
    assert [d.status for d in compare(views, current, None)] == ["new", "new", "missing"]


def test_strings_file_covers_every_key_the_templates_use():
    strings = load_strings()
    texts = [template.read_text() for template in (HERE / "templates").glob("*.html")]
    called = {key for text in texts for key in re.findall(r"""\bt\('([a-z_.]+[a-z])'""", text)}
    quoted = {key for text in texts for key in re.findall(r"""'([a-z]+\.[a-z_]+)'""", text)}
    quoted |= {f"card.better_{b}" for b in ("higher", "lower")} | {"lang.name", "card.overall"}  # used in build.py
    assert called - set(strings) == set()
    assert {k for k in strings if not k.startswith("metric.")} - quoted == set()  # no dead strings


def test_site_package_does_not_import_domains():
    for path in (HERE).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith("latente.domains") or n.startswith("latente.pipelines") for n in names), path
