"""The site built from tiny real runs: pages, numbers, files, summary metrics and the error cases."""
from __future__ import annotations

import csv
import json
import re
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

from latente.shared.errors import UserError
from latente.shared.report import check_target, load_references
from latente.shared.results import Results
from latente.site import build_site
from latente.site.build import HERE, compare, format_number, load_strings, page_file
from latente.shared.params import validate
from latente.site.content import DomainView, SiteFiles, data_script, read_explorer, read_interpolation
from latente.site.markdown import report_html
from latente.site.params import Explorer, Interpolation
from latente.site.runs import git_revision

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


def metrics_of(root: Path, domain: str) -> Results:
    return Results.read(root / "reports" / domain / "metrics.json", domain)


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


def _table_rows(fragment: str, table_class: str) -> list[list[str]]:
    """The body rows of the fragment's table of this class, as the cells' text."""
    start = fragment.index(f'<table class="metrics {table_class}">')
    body = fragment[fragment.index("<tbody>", start):fragment.index("</tbody>", start)]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_cards_show_headline_baseline_and_anchor(built_site, publish_params):
    site = built_site / "reports" / "site"
    for domain in PRESENT:
        config = publish_params.domains[domain]
        h = config.headline
        results = metrics_of(built_site, domain)
        model = results.find(h.method, **h.condition)[h.metric]
        baseline = results.find(h.baseline, **h.condition)[h.metric]
        anchor = next(a for a in load_references(domain, built_site / "params.yaml").anchors if h.metric in a.values)
        for lang in ("en", "pt-BR"):
            card = _section(site / page_file("index", lang), f"card-{domain}")
            assert f'<td class="value">{format_number(model, lang)}</td>' in card
            assert f'<td class="value">{format_number(baseline, lang)}</td>' in card
            assert f"{anchor.label}</th>\n    <td class=\"value\">{format_number(anchor.values[h.metric], lang)}</td>" in card
            assert (config.title.en if lang == "en" else config.title.pt_BR) in card
        beats = model > baseline if h.better == "higher" else model < baseline
        card = _section(site / "index.html", f"card-{domain}")
        assert ("beats the baseline" if beats else "does not beat the baseline") in card
        assert "no git revision" in card and "Params of the run (params.yaml)" in card  # built outside git and DVC


def test_number_format_per_language():
    # hand-formatted: four significant digits (integers whole), trailing zeros dropped, thousands grouped;
    # pt-BR swaps the decimal mark and the group separator
    assert [format_number(v, "en") for v in (8.5621, 26.4713, 0.7439, 0.75800001, 6069, 1234.56, 0.00123, 30.0, 0, None)] == [
        "8.562", "26.47", "0.7439", "0.758", "6,069", "1,235", "0.00123", "30", "0", "–"]
    assert [format_number(v, "pt-BR") for v in (8.5621, 6069, 1234.56, -0.5)] == ["8,562", "6.069", "1.235", "-0,5"]


def test_summary_holds_the_aggregate_rows_only(built_site):
    summary = json.loads((built_site / "reports" / "summary.json").read_text())
    assert sorted(summary) == sorted(PRESENT)
    ecg = metrics_of(built_site, "ecg")
    assert summary["ecg"]["model/prd/operating_point=A"] == ecg.find("model", operating_point="A")["prd"]
    assert summary["ecg"]["original/rpeak_f1"] == ecg.find("original")["rpeak_f1"]
    speech = metrics_of(built_site, "speech")
    assert summary["speech"]["mfcc/accuracy/snr_db=10.0"] == speech.find("mfcc", snr_db=10.0)["accuracy"]
    text = json.dumps(summary)
    assert "record=" not in text and "speaker=" not in text  # per-item rows are left out
    protein = metrics_of(built_site, "protein")
    assert summary["protein"] == protein.flat()
    for domain in PRESENT:  # each evaluate stage wrote the same flat keys beside its metrics.json, per-item rows too
        flat = json.loads((built_site / "reports" / domain / "summary.json").read_text())
        assert flat == metrics_of(built_site, domain).flat()
        assert {k: v for k, v in flat.items() if k in summary[domain]} == summary[domain]


def test_local_links_and_images_resolve_and_nothing_loads_from_the_network(built_site):
    site = built_site / "reports" / "site"
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 12  # index, compare, ecg, speech, protein and speech's sweeps page (the one domain with sweeps), in two languages
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


def test_domain_page_renders_report_tables_figures_and_literature(built_site):
    site = built_site / "reports" / "site"
    html = (site / "ecg.html").read_text()
    assert "<h2>ECG compression on MIT-BIH</h2>" in html  # the report's h1, demoted under the page's h1
    assert '<img src="ecg/figures/rate_distortion.png"' in html
    assert (site / "ecg/figures/rate_distortion.png").read_bytes() == (built_site / "reports/ecg/figures/rate_distortion.png").read_bytes()
    assert '<a href="ecg/plots/rate_distortion.csv" download>' in html
    literature = _section(site / "ecg.html", "literature")
    for anchor in load_references("ecg", built_site / "params.yaml").anchors:
        assert anchor.citation.replace("'", "&#39;") in literature and anchor.protocol.replace("'", "&#39;") in literature
        assert f'<td class="value">{format_number(anchor.values["prd"], "en")}</td>' in literature
    # every aggregate row of metrics.json is in a table: the PRD of operating point A, per record in <details>
    ecg = metrics_of(built_site, "ecg")
    row = ecg.find("model", operating_point="A", record="100")
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


def _script_data(path: Path, variable: str):
    return json.loads(path.read_text().removeprefix(f"window.{variable} = ").rstrip().rstrip(";"))


def test_interpolation_data_is_the_csvs_steps_and_its_files_are_copied(built_site):
    # built_site's interpolations (conftest's write_interpolations): speech's fourth step has no files
    site = built_site / "reports" / "site"
    speech = _script_data(site / "speech" / "interpolation-data.js", "LATENTE_INTERPOLATION")
    folder = "speech/figures/interpolation"
    assert speech == {"steps": [
        {"audio": f"{folder}/step_00.wav", "image": f"{folder}/step_00.png", "text": None, "details": {"predicted": "3"}},
        {"audio": f"{folder}/step_01.wav", "image": f"{folder}/step_01.png", "text": None, "details": {"predicted": "3"}},
        {"audio": f"{folder}/step_02.wav", "image": f"{folder}/step_02.png", "text": None, "details": {"predicted": "5"}},
        {"audio": None, "image": None, "text": None, "details": {"predicted": "8"}},
        {"audio": f"{folder}/step_04.wav", "image": f"{folder}/step_04.png", "text": None, "details": {"predicted": "8"}},
    ]}
    for step in speech["steps"]:
        for url in filter(None, (step["audio"], step["image"])):
            assert (site / url).read_bytes() == (built_site / "reports" / url).read_bytes()
    protein = _script_data(site / "protein" / "interpolation-data.js", "LATENTE_INTERPOLATION")
    assert protein == {"steps": [
        {"audio": None, "image": None, "text": "HPETLVKVKDAEDQLG--ARVGYIELDL", "details": {"identity_start": "1.0", "identity_end": "0.7143"}},
        {"audio": None, "image": None, "text": "HPETLVKVKDAEDKLG--ARVGYVELDL", "details": {"identity_start": "0.9286", "identity_end": "0.7857"}},
        {"audio": None, "image": None, "text": "HPEALIKVKDAEDKLGGSARLGYVELDL", "details": {"identity_start": "0.7143", "identity_end": "1.0"}},
    ]}
    for lang, positions, ends in (("en", ["0", "0.25", "0.5", "0.75", "1"], "From 3_theo_0.wav to 8_theo_0.wav"),
                                  ("pt-BR", ["0", "0,25", "0,5", "0,75", "1"], "De 3_theo_0.wav até 8_theo_0.wav")):
        page = site / page_file("speech", lang)
        section = _section(page, "interpolation")
        assert re.findall(r'<option value="(\d+)" label="([^"]*)">', section) == [(str(k), p) for k, p in enumerate(positions)]
        assert '<input type="range" id="interpolation-slider" min="0" max="4" step="1" value="0"' in section and ends in section
        assert 'href="#interpolation"' in page.read_text() and '<script src="speech/interpolation-data.js">' in page.read_text()
        assert "figures/interpolation/" not in page.read_text()  # the slider shows them: the gallery does not repeat them
    assert "From BLAT_ECOLX/24-286 to Q9L5C7_9BACT/1-263" in _section(site / "protein.html", "interpolation")


def test_interpolation_steps_follow_their_position_and_missing_files_are_none(tmp_path):
    report = tmp_path / "report"
    (report / "plots").mkdir(parents=True)
    (report / "clips").mkdir()
    (report / "clips" / "b.wav").write_bytes(b"RIFF")
    (report / "plots" / "interpolation.csv").write_text(
        "t,start,end,audio,note\n1,a,b,clips/b.wav,last\n0.5,a,b,clips/ab.wav,middle\n0,a,b,,first\n")
    config = validate(Interpolation, {"audio": "audio", "text": "note"}, "publish.domains.d.interpolation")
    interpolation = read_interpolation(SiteFiles(tmp_path / "site", "d", report), config, "publish.domains.d.interpolation")
    assert interpolation.ends == ("a", "b") and interpolation.positions == [0.0, 0.5, 1.0]
    assert [(step["audio"], step["text"]) for step in interpolation.data["steps"]] == [(None, "first"), (None, "middle"), ("d/clips/b.wav", "last")]
    assert (tmp_path / "site" / "d" / "clips" / "b.wav").read_bytes() == b"RIFF"


@pytest.mark.parametrize("damage, message", [
    (lambda rows: [row.pop("image") for row in rows],
     "reports/speech/plots/interpolation.csv: has no column 'image' (columns: step, t, start, end, predicted, audio) — "
     "set the column names in params.yaml publish.domains.speech.interpolation"),
    (lambda rows: rows[1].update(t="nan"), "reports/speech/plots/interpolation.csv: line 3, column t: 'nan' is not a finite number"),
    (lambda rows: rows[2].update(end="9_theo_0.wav"),
     "reports/speech/plots/interpolation.csv: line 4, column end: '9_theo_0.wav', but line 2 has '8_theo_0.wav'"),
])
def test_bad_interpolation_csv_is_one_line_error_naming_file_and_column(copy_reports, interpolations, tmp_path, monkeypatch, capsys,
                                                                       damage, message):
    from latente.pipelines.publish import main

    root = copy_reports(tmp_path / "repo", ("speech",))
    interpolations(root / "reports")
    path = root / "reports/speech/plots/interpolation.csv"
    rows = list(csv.DictReader(path.open()))
    damage(rows)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.chdir(root)
    with pytest.raises(SystemExit) as exit_:
        main([])
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and "\n" not in err and err.startswith("error: ") and message in err, err
    assert not (root / "reports/site").exists()


def test_missing_interpolation_csv_shows_a_note_and_no_slider(copy_reports, tmp_path, publish_params):
    root = copy_reports(tmp_path / "repo", ("speech",))
    (root / "reports/speech/plots/interpolation.csv").unlink(missing_ok=True)  # the tiny speech run writes one
    build_site(publish_params, root)
    site = root / "reports" / "site"
    for lang, note in (("en", "No interpolation yet: not found"), ("pt-BR", "Ainda sem interpolação: não encontrado")):
        page = (site / page_file("speech", lang)).read_text()
        section = _section(site / page_file("speech", lang), "interpolation")
        assert f"{note} <code>reports/speech/plots/interpolation.csv</code>" in section
        assert 'type="range"' not in section and "interpolation.js" not in page
    assert not (site / "speech" / "interpolation-data.js").exists()


def test_interpolation_shows_audio_image_or_text():
    with pytest.raises(UserError, match="params.yaml: publish.domains.d.interpolation: needs at least one of audio, image or text"):
        validate(Interpolation, {"details": ["identity_start"]}, "publish.domains.d.interpolation")


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


SERIES_EXPLORER = {
    "file": "plots/beats.csv", "projections": {"2-D": ["x", "y"]}, "group": None, "details": [], "scales": ["score"],
    "series": {"waveform": {"columns": ["original", "decoded"], "x_start": "x_start", "x_step": "x_step",
                            "x_title": {"en": "seconds", "pt-BR": "segundos"}},
               "decoded only": {"columns": ["decoded"]},
               "shares": {"kind": "bar", "columns": ["original", "decoded"], "x_labels": "sensors"}},
}
SERIES_ROWS = [  # a: three numbers a line; b: no series; c: exponent notation; d: spaces around, decoded empty
    {"x": "0", "y": "0", "label": "a", "original": "1 2.5 -3", "decoded": "0.5 2 -3", "x_start": "-0.25", "x_step": "0.125",
     "sensors": " Accelerometer1RMS | Volume Flow RateRMS|Pressure ", "score": "0"},
    {"x": "1", "y": "1", "label": "b", "original": "", "decoded": "", "x_start": "", "x_step": "", "sensors": "", "score": "-1.5"},
    {"x": "2", "y": "2", "label": "c", "original": "4e-1 7", "decoded": "1 1", "x_start": "2", "x_step": "0.5",
     "sensors": "p|q", "score": "2e3"},
    {"x": "3", "y": "3", "label": "d", "original": " 8 ", "decoded": "", "x_start": "0", "x_step": "1",
     "sensors": "Temperature", "score": " 4 "},
]


def _read_series_csv(folder: Path, rows: list[dict[str, str]]):
    beats = folder / "report" / "plots" / "beats.csv"
    beats.parent.mkdir(parents=True)
    with beats.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    config = validate(Explorer, SERIES_EXPLORER, "publish.domains.d.explorer")
    return read_explorer(SiteFiles(folder / "site", "d", folder / "report"), config, "publish.domains.d.explorer")


def test_explorer_series_cells_are_lists_of_numbers_or_none(tmp_path):
    explorer = _read_series_csv(tmp_path, SERIES_ROWS)
    series = explorer.data["series"]
    assert {name: series[name] for name in ("waveform", "decoded only")} == {
        "waveform": {
            "kind": "line", "columns": ["original", "decoded"], "x_start": [-0.25, None, 2.0, 0.0], "x_step": [0.125, None, 0.5, 1.0],
            "x_labels": None,
            "values": {"original": [[1.0, 2.5, -3.0], None, [0.4, 7.0], [8.0]], "decoded": [[0.5, 2.0, -3.0], None, [1.0, 1.0], None]},
        },
        "decoded only": {"kind": "line", "columns": ["decoded"], "x_start": None, "x_step": None, "x_labels": None,
                         "values": {"decoded": [[0.5, 2.0, -3.0], None, [1.0, 1.0], None]}},
    }
    assert '"original":[[1.0,2.5,-3.0],null,[0.4,7.0],[8.0]]' in data_script("LATENTE_EXPLORER", explorer.data)  # compact, as given


def test_explorer_scales_and_bar_labels_are_read_per_row(tmp_path):
    explorer = _read_series_csv(tmp_path, SERIES_ROWS)
    assert explorer.data["scales"] == {"score": [0.0, -1.5, 2000.0, 4.0]}
    assert explorer.data["series"]["shares"] == {
        "kind": "bar", "columns": ["original", "decoded"], "x_start": None, "x_step": None,
        "x_labels": [["Accelerometer1RMS", "Volume Flow RateRMS", "Pressure"], None, ["p", "q"], ["Temperature"]],
        "values": {"original": [[1.0, 2.5, -3.0], None, [0.4, 7.0], [8.0]], "decoded": [[0.5, 2.0, -3.0], None, [1.0, 1.0], None]},
    }


@pytest.mark.parametrize("damage, message", [
    (lambda rows: rows[0].update(original="1 nan 2"), "beats.csv: line 2, column original: 'nan' is not a finite number"),
    (lambda rows: rows[2].update(decoded="1 x 2"), "beats.csv: line 4, column decoded: 'x' is not a finite number"),
    (lambda rows: rows[0].update(decoded="0.5 2"),
     "beats.csv: line 2, column decoded: 2 numbers, but column 'original' of series 'waveform' has 3"),
    (lambda rows: rows[3].update(x_step="inf"), "beats.csv: line 5, column x_step: 'inf' is not a finite number"),
    (lambda rows: [row.pop("x_start") for row in rows], "beats.csv: has no column 'x_start'"),
    (lambda rows: rows[1].update(score="high"), "beats.csv: line 3, column score: 'high' is not a finite number"),
    (lambda rows: [row.pop("score") for row in rows], "beats.csv: has no column 'score'"),
    (lambda rows: rows[0].update(sensors="Pressure | Temperature"),
     "beats.csv: line 2, column sensors: 2 labels, but series 'shares' has 3 numbers in this row"),
    (lambda rows: rows[2].update(sensors=" "), "beats.csv: line 4, column sensors: 0 labels, but series 'shares' has 2 numbers in this row"),
])
def test_bad_explorer_cell_names_file_line_and_column(tmp_path, damage, message):
    rows = [dict(row) for row in SERIES_ROWS]
    damage(rows)
    with pytest.raises(UserError) as error:
        _read_series_csv(tmp_path, rows)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("columns, problem", [([], "needs at least one column"), (["a", "a"], "names a column twice")])
def test_explorer_series_columns_are_some_and_distinct(columns, problem):
    with pytest.raises(UserError, match=f"params.yaml: publish.domains.d.explorer.series.waveform.columns: {problem}"):
        validate(Explorer, {"series": {"waveform": {"columns": columns}}}, "publish.domains.d.explorer")


@pytest.mark.parametrize("series, problem", [
    ({"kind": "bar"}, "a bar series needs x_labels"),
    ({"kind": "bar", "x_labels": "sensors", "x_start": "x_start"}, "a bar series has no x_start or x_step"),
    ({"x_labels": "sensors"}, "x_labels is only used by kind 'bar', not by kind 'line'"),
])
def test_explorer_series_x_fits_its_kind(series, problem):
    with pytest.raises(UserError) as error:
        validate(Explorer, {"series": {"shares": {"columns": ["a"], **series}}}, "publish.domains.d.explorer")
    assert f"params.yaml: publish.domains.d.explorer.series.shares: {problem}" in str(error.value) and "\n" not in str(error.value)


def test_explorer_scales_are_distinct():
    with pytest.raises(UserError, match="params.yaml: publish.domains.d.explorer.scales: names a column twice"):
        validate(Explorer, {"scales": ["score", "score"]}, "publish.domains.d.explorer")


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
    current = {"ecg": {"model/prd": 8.0, "model/cr": 30.0}, "speech": {"model/accuracy": 0.7}}
    previous = {"ecg": {"model/prd": 9.0, "model/cr": 30.0, "model/qs": 3.3}}
    ecg, speech, mri = compare(views, current, previous)
    assert (ecg.status, ecg.rows, ecg.unchanged) == ("compared", [("model/prd", 9.0, 8.0), ("model/qs", 3.3, None)], 1)
    assert speech.status == "new" and mri.status == "missing"
    assert [d.status for d in compare(views, current, None)] == ["new", "new", "missing"]


def test_strings_file_covers_every_key_the_templates_use():
    strings = load_strings()
    texts = [template.read_text() for template in (HERE / "templates").glob("*.html")]
    called = {key for text in texts for key in re.findall(r"""\bt\('([a-z_.]+[a-z])'""", text)}
    quoted = {key for text in texts for key in re.findall(r"""'([a-z]+\.[a-z_]+)'""", text)}
    quoted |= {f"card.better_{b}" for b in ("higher", "lower")} | {"lang.name", "card.overall"}  # used in build.py
    quoted |= {f"targets.{verdict}" for verdict in ("met", "missed", "not_measured")}  # TargetCheck.verdict
    assert called - set(strings) == set()
    assert {k for k in strings if not k.startswith("metric.")} - quoted == set()  # no dead strings


def test_targets_are_checked_on_metrics_json_with_verdict_and_margin(copy_reports, tmp_path, publish_params):
    root = copy_reports(tmp_path / "repo", ("ecg",))
    ecg = metrics_of(root, "ecg")
    measured = ecg.find("model", operating_point="A")["prd"]
    wavelet = ecg.find("wavelet", operating_point="A")["prd"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["references"]["ecg"]["targets"] = [  # one met by 0.5, one missed by 0.25 (lower PRD is better)
        {"name": "fixed", "metric": "prd", "better": "lower", "condition": {"operating_point": "A"}, "value": measured + 0.5,
         "source": "test"},
        {"name": "vs wavelet", "metric": "prd", "better": "lower", "condition": {"operating_point": "A"}, "against": "wavelet",
         "offset": measured - wavelet - 0.25, "source": "test"},
    ]
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    build_site(publish_params, root)
    checks = [check_target(ecg, t) for t in load_references("ecg", root / "params.yaml").targets]
    assert [c.verdict for c in checks] == ["met", "missed"]
    for lang, met, missed in (("en", "met", "missed"), ("pt-BR", "atingida", "não atingida")):
        targets = _section(root / "reports/site" / page_file("ecg", lang), "targets")
        rows = targets[targets.index("<tbody>"):].split("</tr>")
        assert f"<td class=\"metric\">+{format_number(0.5, lang)}</td>" in rows[0] and f">{met}</span>" in rows[0]
        assert f"<td class=\"metric\">{format_number(-0.25, lang)}</td>" in rows[1] and f">{missed}</span>" in rows[1]
        assert f"{format_number(measured, lang)}</td>" in rows[0]
        card = _section(root / "reports/site" / page_file("index", lang), "card-ecg")
        assert {"en": "1 of 2 targets met", "pt-BR": "1 de 2 metas atingidas"}[lang] in card


def test_publish_ignores_the_dvc_lock_that_its_own_run_writes(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True,
                       env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                            "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})

    (tmp_path / "params.yaml").write_text("a: 1\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    assert git_revision(tmp_path).dirty is False
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # what `dvc repro` writes before publish runs
    assert git_revision(tmp_path).dirty is False
    (tmp_path / "params.yaml").write_text("a: 2\n")  # `dvc exp run -S a=2`: a run of other params
    assert git_revision(tmp_path).dirty is True


def test_sweeps_page_shows_each_sweep_its_trials_and_the_best_against_the_defaults(built_site):
    # built_site's SITE_SWEEPS: speech-latent with three trials (the middle one failed, the last the best), speech-weight not run
    site = built_site / "reports" / "site"
    for lang, log, fixed, defaults in (("en", "log-uniform", "Fixed in every trial", "the defaults"),
                                       ("pt-BR", "log-uniforme", "Fixos em todas as tentativas", "valores padrão")):
        page = site / page_file("sweeps-speech", lang)
        searched = _section(page, "sweep-1")
        assert "<code>speech-latent</code>" in searched and "<code>evaluate@speech</code>" in searched
        assert "<code>model/accuracy</code> (" + {"en": "maximized", "pt-BR": "maximizado"}[lang] in searched
        assert _table_rows(searched, "space") == [["speech.train.model.latent_dim", "16, 32, 64"],
                                                  ["speech.train.trainer.lr", {"en": "from 0.0001 to 0.01", "pt-BR": "de 0,0001 a 0,01"}[lang] + f", {log}"]]
        assert fixed in searched
        dropped = {"en": "removed from the params of every trial", "pt-BR": "removida dos parâmetros de todas as tentativas"}[lang]
        assert _table_rows(searched, "fixed") == [["speech.train.trainer.epochs", "4"], ["speech.train.test_speakers", "[lucas]"],
                                                  ["speech.evaluate.interpolation", dropped]]
        point = {"en": ".", "pt-BR": ","}[lang]
        assert _table_rows(searched, "trials") == [
            [f"speech-latent-0 ({defaults})", "16", f"0{point}0005", "COMPLETE", f"0{point}625"],
            ["speech-latent-1", "64", f"0{point}003", "FAIL", "–"],
            ["speech-latent-2", "64", f"0{point}0012", "COMPLETE", f"0{point}75"],
        ]
        # the best trial's values and objective beside the defaults set in built_site's params.yaml (16 and 0.0005), which
        # speech-latent-0 ran
        assert _table_rows(searched, "best-default") == [["speech.train.model.latent_dim", "64", "16"],
                                                         ["speech.train.trainer.lr", f"0{point}0012", f"0{point}0005"],
                                                         ["model/accuracy", f"0{point}75", f"0{point}625 (speech-latent-0)"]]
        assert "<code>dvc exp apply speech-latent-2</code>" in searched and 'class="sweep-plot" data-sweep="0"' in searched
        waiting = _section(page, "sweep-2")
        assert "<code>python -m latente.shared.sweep speech-weight</code>" in waiting
        assert "<code>sweeps/speech-weight.json</code>" in waiting
        assert "sweep-plot" not in waiting and "<table class=\"metrics trials\">" not in waiting and "best-default" not in waiting
        assert f'href="{page_file("sweeps-speech", lang)}"' in (site / page_file("speech", lang)).read_text()
        for domain in ("ecg", "protein"):  # no sweep: no page, no link
            assert not (site / page_file(f"sweeps-{domain}", lang)).exists()
            assert "sweeps-" not in (site / page_file(domain, lang)).read_text()


def test_sweeps_plot_data_has_a_line_per_finished_trial(built_site):
    site = built_site / "reports" / "site"
    for lang, separators, ticks in (("en", ".,", ["0.0001", "0.001", "0.01"]), ("pt-BR", ",.", ["0,0001", "0,001", "0,01"])):
        script = (site / "speech" / page_file("sweeps-data", lang, "js")).read_text()
        data = json.loads(script.removeprefix("window.LATENTE_SWEEPS = ").rstrip().rstrip(";"))
        assert data["separators"] == separators and data["plots"][1] is None  # speech-weight has no trials yet
        latent, lr, objective = data["plots"][0]["dimensions"]
        assert latent == {"label": "speech.train.model.latent_dim", "values": [0, 2], "range": [0, 2], "tickvals": [0, 1, 2],
                          "ticktext": ["16", "32", "64"]}  # 16 and 64 by their index among the choices
        assert lr["values"] == pytest.approx([-3.30103, -2.920819]) and lr["range"] == [-4, -2] and lr["ticktext"] == ticks  # log10
        assert objective == {"label": "model/accuracy", "values": [0.625, 0.75]} and data["plots"][0]["minimize"] is False


ACCURACY = {"file": "reports/speech/summary.json", "metric": "model/accuracy", "direction": "maximize"}


def test_a_search_that_did_not_run_the_defaults_says_so_beside_the_best(copy_reports, tmp_path, publish_params, sweeps_in_params,
                                                                         trials_json):
    root = copy_reports(tmp_path / "repo", ("speech",))
    spec = {"target": "evaluate@speech", "objective": ACCURACY, "trials": 2, "minutes": 1,
            "space": {"speech.train.model.latent_dim": {"choice": [16, 32]}}}
    sweeps_in_params(root / "params.yaml", {"latent": spec}, {"speech.train.model.latent_dim": 64})  # outside the space
    trials_json(root, "latent", spec, [{"experiment": "latent-0", "params": {"speech.train.model.latent_dim": 32},
                                        "state": "COMPLETE", "value": 0.5}], best=0)
    build_site(publish_params, root)
    searched = _section(root / "reports/site" / page_file("sweeps-speech", "en"), "sweep-1")
    assert _table_rows(searched, "best-default") == [["speech.train.model.latent_dim", "32", "64"],
                                                     ["model/accuracy", "0.5", "not among the finished trials"]]
    assert _table_rows(searched, "trials") == [["latent-0", "32", "COMPLETE", "0.5"]]


@pytest.mark.parametrize("text, message", [
    ("{not json", "latent.json: not valid JSON"),
    (json.dumps({"target": "evaluate@speech", "objective": ACCURACY, "fixed": {}, "drop": [], "best": None}), "latent.json: trials: required key is missing"),
])
def test_malformed_trials_json_is_one_line_error_naming_the_file(copy_reports, tmp_path, publish_params, sweeps_in_params, text, message):
    root = copy_reports(tmp_path / "repo", ("speech",))
    spec = {"target": "evaluate@speech", "objective": ACCURACY, "trials": 2, "minutes": 1,
            "space": {"speech.train.model.latent_dim": {"choice": [16, 32]}}}
    sweeps_in_params(root / "params.yaml", {"latent": spec}, {})
    trials = root / "sweeps/latent.json"
    trials.parent.mkdir()
    trials.write_text(text)
    with pytest.raises(UserError) as error:
        build_site(publish_params, root)
    line = str(error.value)
    assert line.startswith(f"error: {trials}") and message in line and "\n" not in line, line
    assert not (root / "reports/site").exists()
