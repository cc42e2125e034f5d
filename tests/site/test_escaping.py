"""Hostile names in every user-provided place come out as text, in the HTML and in the browser."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import yaml

from latente.shared.params import validate
from latente.site import PublishParams, build_site

HOSTILE = """<script>alert("x")</script><img src=x onerror=alert(1)>"'&amp;"""
HOSTILE_FILE = "<img src=x onerror=alert(2)>.png"
HOSTILE_SCALE = f"score {HOSTILE}"


HOSTILE_KEY = f"ecg.evaluate.{HOSTILE}"  # a searched key: the plot's axis label
HOSTILE_SWEEP = {"target": "evaluate@ecg", "objective": {"file": "reports/ecg/summary.json", "metric": "model/prd", "direction": "minimize"},
                 "space": {"ecg.evaluate.lead": {"choice": [HOSTILE, "MLII"]}, HOSTILE_KEY: {"low": 1, "high": 2}}, "trials": 1, "minutes": 1}


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory, tiny_reports, repo_root, trials_json):
    """The tiny reports with a hostile string in data names, rows, report text, file names, params, references, CSVs,
    series, a scale's name, bar labels, a sweep's key and choice and its trial's experiment name and value, and the
    interpolation's start, text, a detail's name and value and an image's file name."""
    root = tmp_path_factory.mktemp("hostile")
    for domain in ("ecg", "speech"):
        shutil.copytree(tiny_reports / "reports" / domain, root / "reports" / domain)
    ecg = root / "reports" / "ecg"
    metrics = json.loads((ecg / "metrics.json").read_text())
    metrics["data"].update(source=HOSTILE, items=[HOSTILE])
    metrics["results"].append({"method": HOSTILE, "condition": {HOSTILE: HOSTILE}, "metrics": {HOSTILE: 1.5}})
    (ecg / "metrics.json").write_text(json.dumps(metrics))
    (ecg / "report.md").write_text((ecg / "report.md").read_text() + f"\n## {HOSTILE}\n\n[click](javascript:alert(3)) {HOSTILE}\n")
    shutil.copyfile(ecg / "figures" / "rate_distortion.png", ecg / "figures" / HOSTILE_FILE)
    (ecg / "plots" / 'a"b<c>.csv').write_text("x,y\n1,2\n")
    projection = root / "reports" / "speech" / "plots" / "projection.csv"
    rows = list(csv.DictReader(projection.open()))
    far = max(float(r["tsne_1"]) for r in rows) + 50  # alone, so that the mouse finds it
    rows[0].update(label=HOSTILE, speaker=HOSTILE, file=HOSTILE, tsne_1=far, tsne_2=far,
                   **{HOSTILE: "1 2 3", "decoded": "3 2 1", "sensors": f"{HOSTILE} | Volume Flow RateRMS | c"})
    for index, row in enumerate(rows):
        row[HOSTILE_SCALE] = index
    with projection.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    speech = root / "reports" / "speech"
    shutil.copyfile(ecg / "figures" / "rate_distortion.png", speech / "figures" / HOSTILE_FILE)
    with (speech / "plots" / "interpolation.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["t", "start", "end", "audio", "image", "sequence", HOSTILE])
        writer.writeheader()
        writer.writerows({"t": t, "start": HOSTILE, "end": "8_theo_0.wav", "audio": "", "image": f"figures/{HOSTILE_FILE}",
                          "sequence": HOSTILE, HOSTILE: HOSTILE} for t in (0, 1))
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["ecg"]["evaluate"]["lead"] = HOSTILE
    params["publish"]["domains"]["ecg"]["title"]["en"] = HOSTILE
    params["publish"]["domains"]["speech"]["explorer"].update(scales=[HOSTILE_SCALE], series={
        HOSTILE: {"columns": [HOSTILE, "decoded"], "x_title": {"en": HOSTILE, "pt-BR": HOSTILE}},
        "shares": {"kind": "bar", "columns": ["decoded"], "x_labels": "sensors"}})
    params["publish"]["domains"]["speech"]["interpolation"].update(text="sequence", details=[HOSTILE])
    params["references"]["ecg"]["anchors"][0]["label"] = HOSTILE
    params["references"]["ecg"]["targets"] = [{"name": HOSTILE, "metric": "prd", "better": "lower", "condition": {"operating_point": "A"},
                                              "value": 1.0, "source": HOSTILE}]
    params["ecg"]["evaluate"][HOSTILE] = 1.5
    params["sweeps"] = {"lead": HOSTILE_SWEEP}
    trials_json(root, "lead", HOSTILE_SWEEP, [{"experiment": HOSTILE, "params": {"ecg.evaluate.lead": HOSTILE, HOSTILE_KEY: 1.25},
                                               "state": "COMPLETE", "value": 9.5}], best=0)
    (root / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))  # the sweep's keys in the given order
    build_site(validate(PublishParams, params["publish"], "publish"), root)
    return root / "reports" / "site"


def test_hostile_strings_are_escaped_in_the_html(hostile_site):
    for page in hostile_site.glob("*.html"):
        html = page.read_text()
        assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html, page.name
    index = (hostile_site / "index.html").read_text()
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&#34;&#39;&amp;amp;"
    assert index.count(escaped) >= 4  # domain title, anchor label, data source, data item
    ecg = (hostile_site / "ecg.html").read_text()
    assert ecg.count(escaped) >= 8  # + the metrics row (method, condition key and value, metric), the params value, the target's name and source
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in ecg.split('id="report"')[1]  # markdown's own escaping
    assert 'src="ecg/figures/%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E.png"' in ecg
    assert (hostile_site / "ecg" / "figures" / HOSTILE_FILE).is_file()
    assert 'href="ecg/plots/a%22b%3Cc%3E.csv"' in ecg
    assert f'<option value="score {escaped}">score {escaped}</option>' in (hostile_site / "speech.html").read_text()
    script = (hostile_site / "speech" / "explorer-data.js").read_text()
    assert "<" not in script and ">" not in script and "\\u003cscript\\u003e" in script
    speech = (hostile_site / "speech.html").read_text()
    interpolation = speech[speech.index('id="interpolation"'):speech.index('id="report"')]
    assert interpolation.count(escaped) == 3  # the start, the detail's name and its data-detail
    script = (hostile_site / "speech" / "interpolation-data.js").read_text()
    assert "<" not in script and ">" not in script and "\\u003cscript\\u003e" in script
    sweeps = (hostile_site / "sweeps-ecg.html").read_text()
    assert sweeps.count(escaped) >= 10  # the choice; the key in the space, trials and best tables; the trial's experiment and value;
    # the best's experiment (twice) and value; the default
    script = (hostile_site / "ecg" / "sweeps-data.js").read_text()
    assert "<" not in script and ">" not in script and "\\u003cscript\\u003e" in script


def test_hostile_strings_show_as_text_in_the_browser(hostile_site, open_page, point_at):
    for name in ("index.html", "ecg.html"):
        page, log = open_page((hostile_site / name).as_uri())
        assert HOSTILE in page.inner_text("main")
        assert page.locator('img[src="x"]').count() == 0
        log.assert_clean()
    page, log = open_page((hostile_site / "speech.html").as_uri())
    point_at(page, 0)
    page.wait_for_selector('.explorer-panel[data-point="0"]')
    assert page.inner_text('.explorer-panel [data-field="label"]') == HOSTILE
    assert page.inner_text('.explorer-panel [data-detail="file"]') == HOSTILE
    assert HOSTILE in page.text_content(".hoverlayer")  # Plotly's own hover label, as text
    page.wait_for_selector('.explorer-series-chart .legend')
    series = page.locator('.explorer-panel [data-field="series"]')
    assert page.inner_text(".explorer-series figcaption") == HOSTILE
    assert HOSTILE in series.locator(".legend").text_content() and HOSTILE in series.locator(".xtitle").text_content()
    assert page.locator('[data-series="shares"] .xtick').all_text_contents() == [HOSTILE, "Volume Flow RateRMS", "c"]
    assert page.locator(".explorer-colour option").all_inner_texts() == ["speaker", HOSTILE_SCALE]
    page.wait_for_selector("#latent-interpolation[data-ready=true]")
    assert page.inner_text(".interpolation-ends") == f"From {HOSTILE} to 8_theo_0.wav"
    assert page.inner_text('#latent-interpolation [data-field="text"]') == HOSTILE
    assert page.inner_text("#latent-interpolation dt") == HOSTILE and page.inner_text("#latent-interpolation dd") == HOSTILE
    assert page.get_attribute("#latent-interpolation img", "src") == "speech/figures/%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E.png"
    page.select_option(".explorer-colour", index=1)
    page.wait_for_selector(".explorer-plot .colorbar")
    assert page.text_content(".explorer-plot .colorbar .cbtitle") == HOSTILE_SCALE
    assert page.locator('img[src="x"]').count() == 0
    log.assert_clean()
    page, log = open_page((hostile_site / "sweeps-ecg.html").as_uri())
    page.wait_for_selector(".sweep-plot[data-ready=true]")
    assert page.locator("table.trials tbody td").all_inner_texts()[:3] == [HOSTILE, HOSTILE, "1.25"]  # experiment, lead, the hostile key
    assert HOSTILE in page.locator(".sweep-plot .tick text").all_text_contents()  # the choice's tick, drawn by Plotly as text
    assert page.locator(".sweep-plot .axis-title").all_text_contents() == ["ecg.evaluate.lead", HOSTILE_KEY, "model/prd"]
    assert page.locator('img[src="x"]').count() == 0
    log.assert_clean()
