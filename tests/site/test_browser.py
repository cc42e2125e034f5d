"""Every page of the site in headless Chromium, opened from disk with no network."""
from __future__ import annotations

import csv
import functools
import json
import shutil

import pytest
import yaml

from latente.site.build import build_site, page_file

OTHER_LANGUAGE = {"en": "pt-BR", "pt-BR": "en"}


def _page_name(file_name: str) -> tuple[str, str]:
    stem = file_name.removesuffix(".html")
    return (stem.removesuffix(".pt-BR"), "pt-BR") if stem.endswith(".pt-BR") else (stem, "en")


def test_every_page_loads_offline_with_no_errors(built_site, open_page, screenshots):
    site = built_site / "reports" / "site"
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 12  # index, compare, ecg, speech, protein and speech's sweeps page (the one domain with sweeps), in two languages
    for path in pages:
        page, log = open_page(path.as_uri())
        if page.locator("#latent-explorer").count():
            page.wait_for_selector("#latent-explorer[data-ready=true]")
        if page.locator(".sweep-plot").count():
            page.wait_for_selector(".sweep-plot[data-ready=true]")
        if page.locator("#latent-interpolation").count():
            page.wait_for_selector("#latent-interpolation[data-ready=true]")
        broken = page.evaluate("() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        assert broken == [], (path.name, broken)
        name, lang = _page_name(path.name)
        assert page.get_attribute("html", "lang") == lang
        switch = page.locator("a.switch-language")
        assert switch.count() == 1 and switch.get_attribute("href") == page_file(name, OTHER_LANGUAGE[lang]), path.name
        assert all(url.startswith("file://") for url in log.requests), log.requests
        page.screenshot(path=str(screenshots / f"{path.stem}.png"))
        log.assert_clean()
        page.close()
    assert len(list(screenshots.glob("*.png"))) >= 12


def test_language_switch_changes_the_visible_text(built_site, open_page):
    site = built_site / "reports" / "site"
    page, log = open_page((site / "ecg.html").as_uri())
    english = page.inner_text("body")
    assert page.inner_text("h2 >> nth=0") == "Headline result" and "Overview" in page.inner_text("nav.pages")
    page.click("a.switch-language")
    page.wait_for_url("**/ecg.pt-BR.html")
    assert page.inner_text("h2 >> nth=0") == "Resultado principal" and "Visão geral" in page.inner_text("nav.pages")
    assert page.inner_text("h1") == "Compressão de ECG"
    portuguese = page.inner_text("body")
    assert portuguese != english and "Comparação com a literatura" in portuguese and "Comparison with the literature" not in portuguese
    page.click("a.switch-language")
    page.wait_for_url("**/ecg.html")
    assert page.inner_text("h1") == "ECG compression"
    log.assert_clean()


def test_latent_explorer_has_its_points_and_shows_them(built_site, open_page, point_at, isolated_point):
    site = built_site / "reports" / "site"
    rows = list(csv.DictReader((built_site / "reports/speech/plots/projection.csv").open()))
    page, log = open_page((site / "speech.html").as_uri())
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    assert page.locator("#latent-explorer .scatterlayer .point").count() == len(rows)
    assert page.locator('.modebar-btn[data-title="Share chart..."]').count() == 0  # would upload to Plotly's cloud
    with_audio = isolated_point(page, page.evaluate(
        "() => window.LATENTE_EXPLORER.media['reconstruction (Griffin-Lim)'].flatMap((url, index) => url ? [index] : [])"))
    point_at(page, with_audio, click=True)
    page.wait_for_selector(f'.explorer-panel[data-point="{with_audio}"]')
    assert page.inner_text('.explorer-panel [data-field="label"]') == rows[with_audio]["label"]
    assert page.inner_text('.explorer-panel [data-detail="file"]') == rows[with_audio]["file"]
    stem = rows[with_audio]["file"].removesuffix(".wav")
    audio = page.locator(".explorer-media audio")
    assert audio.count() == 2 and audio.first.get_attribute("src") == f"speech/figures/audio/{stem}_reconstruction_griffinlim.wav"
    # clicked: the panel keeps the point while the mouse moves on
    page.mouse.move(5, 5)
    assert page.get_attribute(".explorer-panel", "data-point") == str(with_audio)
    page.select_option(".explorer-projection", "PCA")
    page.wait_for_function("() => document.querySelectorAll('#latent-explorer .scatterlayer .point').length > 0")
    first_pca = page.evaluate("() => document.querySelector('.explorer-plot').data.flatMap(t => t.x).sort((a, b) => a - b)[0]")
    assert first_pca == min(float(r["pca_1"]) for r in rows)
    log.assert_clean()

    sequences = list(csv.DictReader((built_site / "reports/protein/plots/latent.csv").open()))
    page, log = open_page((site / "protein.pt-BR.html").as_uri())
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    assert page.locator("#latent-explorer .scatterlayer .point").count() == len(sequences)
    point_at(page, 0)
    page.wait_for_selector('.explorer-panel[data-point]')
    shown = int(page.get_attribute(".explorer-panel", "data-point"))
    assert page.inner_text('.explorer-panel [data-field="text"]') == sequences[shown]["sequence"]
    assert page.inner_text('.explorer-panel [data-field="label"]') == sequences[shown]["id"]
    assert "Passe o mouse sobre um ponto" in page.inner_text(".explorer-panel")
    log.assert_clean()


SERIES_CHART = """() => {
    const gd = document.querySelector('.explorer-panel [data-series="profile"] .explorer-series-chart');
    return {hidden: gd.hidden, names: gd.data.map(t => t.name), x: gd.data.map(t => t.x), y: gd.data.map(t => t.y),
            titles: [gd.layout.xaxis.title.text, gd.layout.yaxis.title.text],
            nodes: document.querySelectorAll('.explorer-panel [data-field="series"] *').length};
}"""


def test_explorer_series_draws_the_rows_numbers_with_the_pages_axis_titles(built_site, open_page, point_at, isolated_point):
    site = built_site / "reports" / "site"
    rows = list(csv.DictReader((built_site / "reports/protein/plots/latent.csv").open()))  # with conftest's PROTEIN_SERIES

    def expected(index: int) -> dict:
        row = rows[index]
        y = [[float(v) for v in row[column].split()] for column in ("original", "decoded")]
        x = [float(row["x_start"]) + k * float(row["x_step"]) for k in range(len(y[0]))]
        return {"names": ["original", "decoded"], "x": [x, x], "y": y}

    def chart_after(page, index: int) -> dict:
        page.wait_for_selector(f'.explorer-panel[data-point="{index}"]')
        page.wait_for_function("() => document.querySelectorAll('[data-series=\"profile\"] .scatterlayer .trace').length === 2")
        return page.evaluate(SERIES_CHART)

    with_numbers = [i for i, row in enumerate(rows) if row["original"]]
    page, log = open_page((site / "protein.html").as_uri())
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    first = isolated_point(page, with_numbers)
    point_at(page, first, click=True)
    chart = chart_after(page, first)
    assert {k: chart[k] for k in ("names", "x", "y")} == expected(first) and not chart["hidden"]
    assert chart["titles"] == ["position", "score"]
    assert page.inner_text('[data-series="profile"] figcaption') == "profile"
    assert page.locator('[data-series="profile"] .modebar-btn').count() == 0
    log.assert_clean()

    page.click("a.switch-language")
    page.wait_for_url("**/protein.pt-BR.html")
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    point_at(page, first)
    chart = chart_after(page, first)
    assert chart["titles"] == ["posição", "escore"] and chart["y"] == expected(first)["y"]
    second = isolated_point(page, [i for i in with_numbers if i != first])
    point_at(page, second)
    redrawn = chart_after(page, second)
    assert {k: redrawn[k] for k in ("names", "x", "y")} == expected(second)
    assert redrawn["nodes"] == chart["nodes"]  # the same chart redrawn, not another one
    empty = isolated_point(page, [i for i, row in enumerate(rows) if not row["original"]])
    point_at(page, empty)
    page.wait_for_selector(f'.explorer-panel[data-point="{empty}"]')
    assert page.evaluate(SERIES_CHART)["hidden"]
    assert page.inner_text('[data-series="profile"] .explorer-series-none') == "Sem valores para este ponto."
    log.assert_clean()


PLOT_TRACES = """() => document.querySelector('#latent-explorer .explorer-plot').data.map(t => (
    {x: t.x, points: t.customdata, color: t.marker.color ?? null, scale: t.marker.showscale ?? false}))"""
BAR_CHART = """() => {
    const gd = document.querySelector('.explorer-panel [data-series="error shares"] .explorer-series-chart');
    return {types: gd.data.map(t => t.type), names: gd.data.map(t => t.name), x: gd.data.map(t => t.x), y: gd.data.map(t => t.y),
            axis: gd._fullLayout.xaxis.type, barmode: gd._fullLayout.barmode, y_title: gd.layout.yaxis.title.text,
            modebar: gd.querySelectorAll('.modebar-btn').length};
}"""


def test_explorer_colours_by_the_group_or_a_scale_and_draws_bar_series(built_site, open_page, point_at, isolated_point):
    site = built_site / "reports" / "site"
    rows = list(csv.DictReader((built_site / "reports/speech/plots/projection.csv").open()))  # with conftest's SPEECH_SCALES and SPEECH_BARS
    speakers = {row["speaker"] for row in rows}

    def by_group(projection: str) -> None:
        traces = page.evaluate(PLOT_TRACES)
        assert len(traces) == len(speakers) == 3 and not any(t["scale"] or t["color"] for t in traces)
        assert sorted(i for t in traces for i in t["points"]) == list(range(len(rows)))
        assert all(t["x"] == [float(rows[i][f"{projection}_1"]) for i in t["points"]] for t in traces)
        assert page.locator("#latent-explorer .explorer-plot .colorbar").count() == 0 and page.locator("#latent-explorer .explorer-plot .legend").count() == 1

    def by_score(projection: str) -> None:
        page.wait_for_selector("#latent-explorer .explorer-plot .colorbar")
        [trace] = page.evaluate(PLOT_TRACES)
        assert trace["scale"] and trace["color"] == [float(row["score"]) for row in rows]
        assert trace["points"] == list(range(len(rows))) and trace["x"] == [float(row[f"{projection}_1"]) for row in rows]
        assert page.text_content("#latent-explorer .explorer-plot .colorbar .cbtitle") == "score"
        assert page.locator("#latent-explorer .explorer-plot .legend").count() == 0

    page, log = open_page((site / "speech.html").as_uri())
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    assert page.locator(".explorer-colour option").all_inner_texts() == ["speaker", "score"]
    by_group("tsne")
    page.select_option(".explorer-colour", label="score")
    by_score("tsne")
    page.select_option(".explorer-projection", "PCA")
    by_score("pca")  # the colouring outlives the change of projection

    with_bars = isolated_point(page, [i for i, row in enumerate(rows) if row["model"]])
    point_at(page, with_bars, click=True)
    page.wait_for_selector(f'.explorer-panel[data-point="{with_bars}"]')
    page.wait_for_function("() => document.querySelectorAll('[data-series=\"error shares\"] .barlayer .trace').length === 2")
    sensors = ["Accelerometer1RMS", "Volume Flow RateRMS", "Pressure"]
    assert page.evaluate(BAR_CHART) == {
        "types": ["bar", "bar"], "names": ["model", "pca"], "x": [sensors, sensors],
        "y": [[float(v) for v in rows[with_bars][column].split()] for column in ("model", "pca")],
        "axis": "category", "barmode": "group", "y_title": "share", "modebar": 0}

    page.select_option(".explorer-colour", label="speaker")
    by_group("pca")  # and the projection outlives the change of colouring
    page.select_option(".explorer-projection", "t-SNE")
    by_group("tsne")
    log.assert_clean()

    page, log = open_page((site / "speech.pt-BR.html").as_uri())
    page.wait_for_selector("#latent-explorer[data-ready=true]")
    assert page.locator("label:has(.explorer-colour)").inner_text().startswith("Colorir por")
    log.assert_clean()


MOVE_SLIDER = """(step) => {
    const slider = document.querySelector('#latent-interpolation input[type="range"]');
    slider.value = String(step);
    slider.dispatchEvent(new Event('input', {bubbles: true}));
}"""
SHOWN_FILES = """() => {
    const root = document.getElementById('latent-interpolation');
    const image = root.querySelector('img'), audio = root.querySelector('audio');
    return {image: image.getAttribute('src'), image_shown: !image.parentNode.hidden && image.complete && image.naturalWidth > 0,
            audio: audio.getAttribute('src'), audio_shown: !audio.parentNode.hidden,
            no_media: !root.querySelector('.interpolation-no-media').hidden};
}"""
AUDIO_SECONDS = """() => new Promise((resolve, reject) => {
    const audio = document.querySelector('#latent-interpolation audio');
    audio.onloadedmetadata = () => resolve(audio.duration);
    audio.onerror = () => reject(new Error('audio: ' + audio.error.code));
    audio.preload = 'metadata';  // the page's preload "none" loaded nothing yet
})"""


def test_interpolation_slider_shows_each_steps_decoding(built_site, open_page):
    # built_site's interpolations (conftest's write_interpolations): speech's five steps at t = 0, 0.25, 0.5, 0.75, 1,
    # the fourth without files; protein's three at t = 0, 0.5, 1
    site = built_site / "reports" / "site"
    folder = "speech/figures/interpolation"
    page, log = open_page((site / "speech.html").as_uri())
    page.wait_for_selector("#latent-interpolation[data-ready=true]")
    assert page.inner_text(".interpolation-ends") == "From 3_theo_0.wav to 8_theo_0.wav"
    assert page.inner_text("label[for=interpolation-slider]") == "Position (t)"
    assert page.inner_text(".interpolation-position") == "0" and page.inner_text('[data-detail="predicted"]') == "3"
    page.wait_for_function("() => document.querySelector('#latent-interpolation img').complete")
    assert page.evaluate(SHOWN_FILES) == {"image": f"{folder}/step_00.png", "image_shown": True,
                                          "audio": f"{folder}/step_00.wav", "audio_shown": True, "no_media": False}
    page.evaluate(MOVE_SLIDER, 2)
    assert page.inner_text(".interpolation-position") == "0.5" and page.inner_text('[data-detail="predicted"]') == "5"
    assert page.get_attribute("#interpolation-slider", "aria-valuetext") == "0.5"
    page.wait_for_function("() => document.querySelector('#latent-interpolation img').complete")
    assert page.evaluate(SHOWN_FILES) == {"image": f"{folder}/step_02.png", "image_shown": True,
                                          "audio": f"{folder}/step_02.wav", "audio_shown": True, "no_media": False}
    assert page.evaluate(AUDIO_SECONDS) == 0.25  # the step's real clip: 2000 samples at 8 kHz
    page.wait_for_function("() => document.querySelector('#latent-interpolation audio').networkState === HTMLMediaElement.NETWORK_IDLE")
    page.evaluate(MOVE_SLIDER, 3)
    assert page.inner_text(".interpolation-position") == "0.75"
    assert page.evaluate(SHOWN_FILES) == {"image": None, "image_shown": False, "audio": None, "audio_shown": False, "no_media": True}
    assert page.inner_text(".interpolation-no-media") == "No audio or image for this step."
    assert all(url.startswith("file://") for url in log.requests), log.requests
    log.assert_clean()

    page.click("a.switch-language")
    page.wait_for_url("**/speech.pt-BR.html")
    page.wait_for_selector("#latent-interpolation[data-ready=true]")
    assert page.inner_text("#interpolation h2") == "Interpolação no espaço latente"
    assert page.inner_text(".interpolation-ends") == "De 3_theo_0.wav até 8_theo_0.wav"
    page.evaluate(MOVE_SLIDER, 2)
    assert page.inner_text(".interpolation-position") == "0,5"
    assert page.get_attribute("#interpolation-slider", "aria-valuetext") == "0,5"
    assert page.evaluate(SHOWN_FILES)["audio"] == f"{folder}/step_02.wav"
    log.assert_clean()

    page, log = open_page((site / "protein.pt-BR.html").as_uri())
    page.wait_for_selector("#latent-interpolation[data-ready=true]")
    assert page.inner_text(".interpolation-ends") == "De BLAT_ECOLX/24-286 até Q9L5C7_9BACT/1-263"
    assert page.locator("#latent-interpolation img, #latent-interpolation audio, .interpolation-no-media").count() == 0
    assert page.inner_text('#latent-interpolation [data-field="text"]') == "HPETLVKVKDAEDQLG--ARVGYIELDL"
    page.evaluate(MOVE_SLIDER, 1)
    assert page.inner_text(".interpolation-position") == "0,5"
    assert page.inner_text('#latent-interpolation [data-field="text"]') == "HPETLVKVKDAEDKLG--ARVGYVELDL"
    details = page.locator("#latent-interpolation [data-detail]")
    assert details.all_inner_texts() == ["0.9286", "0.7857"]  # as the CSV writes them
    assert [details.nth(i).get_attribute("data-detail") for i in range(2)] == ["identity_start", "identity_end"]
    page.evaluate(MOVE_SLIDER, 2)
    assert page.inner_text(".interpolation-position") == "1"
    assert page.inner_text('#latent-interpolation [data-field="text"]') == "HPEALIKVKDAEDKLGGSARLGYVELDL"
    log.assert_clean()


def test_sweeps_plot_has_a_line_per_finished_trial_and_the_page_switches_language(built_site, open_page, screenshots):
    # built_site's speech-latent: trials valued 0.625, failed, 0.75; latent_dim 16, 64, 64 (choices 16, 32, 64)
    site = built_site / "reports" / "site"
    page, log = open_page((site / "speech.html").as_uri())
    page.click('nav.toc a[href="sweeps-speech.html"]')
    page.wait_for_url("**/sweeps-speech.html")
    page.wait_for_selector(".sweep-plot[data-ready=true]")
    assert page.locator(".sweep-plot").count() == 1  # speech-weight has not run: no plot
    dimensions = page.evaluate("() => document.querySelector('.sweep-plot').data[0].dimensions.map(d => Array.from(d.values))")
    assert len(dimensions) == 3 and all(len(values) == 2 for values in dimensions)  # two keys and the objective; the failed trial drew no line
    assert dimensions[0] == [0, 2] and dimensions[-1] == [0.625, 0.75]
    ticks = page.locator(".sweep-plot .tick text").all_text_contents()
    assert {"16", "32", "64", "0.0001", "0.01"} <= set(ticks)
    assert page.locator(".sweep-plot .axis-title").all_text_contents() == [
        "speech.train.model.latent_dim", "speech.train.trainer.lr", "model/accuracy"]
    assert "python -m latente.shared.sweep speech-weight" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "sweeps-speech-plot.png"), full_page=True)
    page.click("a.switch-language")
    page.wait_for_url("**/sweeps-speech.pt-BR.html")
    page.wait_for_selector(".sweep-plot[data-ready=true]")
    main = page.inner_text("main")
    assert "Todas as tentativas" in main and "Every trial" not in main and "buscas de hiperparâmetros" in page.inner_text("h1")
    assert {"0,0001", "0,01"} <= set(page.locator(".sweep-plot .tick text").all_text_contents())
    log.assert_clean()


def test_every_domain_shows_its_explorer_and_its_committed_sweep(tiny_reports_of_five, publish_params, repo_root, tmp_path, open_page):
    # All five domains' tiny reports with the repository's publish section, params.yaml's sweeps and the committed
    # records (sweeps/*.json): each domain page's explorer draws one point per row of its CSV; each Sweeps page, in
    # both languages, draws one line per finished trial with the record's values, lists every trial, and marks once
    # the trial that ran params.yaml's values, whose value also stands beside the best's. Nothing leaves the disk.
    root = tmp_path / "root"
    shutil.copytree(tiny_reports_of_five / "reports", root / "reports")
    shutil.copyfile(repo_root / "params.yaml", root / "params.yaml")
    shutil.copytree(repo_root / "sweeps", root / "sweeps")
    build_site(publish_params, root)
    site = root / "reports" / "site"
    assert sorted(publish_params.domains) == ["anomaly", "ecg", "mri", "protein", "speech"]
    for domain, config in publish_params.domains.items():
        rows = list(csv.DictReader((root / "reports" / domain / config.explorer.file).open()))
        page, log = open_page((site / f"{domain}.html").as_uri())
        page.wait_for_selector("#latent-explorer[data-ready=true]")
        assert rows and page.locator("#latent-explorer .scatterlayer .point").count() == len(rows), domain
        assert all(url.startswith("file://") for url in log.requests), log.requests
        log.assert_clean()
        page.close()

    params = yaml.safe_load((root / "params.yaml").read_text())
    by_domain = {spec["target"].split("@")[1]: (name, spec) for name, spec in params["sweeps"].items()}
    assert sorted(by_domain) == sorted(publish_params.domains)
    for domain, (name, spec) in by_domain.items():
        record = json.loads((root / "sweeps" / f"{name}.json").read_text())
        finished = [trial for trial in record["trials"] if trial["state"] == "COMPLETE"]
        shipped = {key: functools.reduce(lambda node, part: node[part], key.split("."), params) for key in spec["space"]}
        defaults = [trial["experiment"] for trial in finished if trial["params"] == shipped]
        assert len(finished) >= 8 and len(defaults) == 1, name
        for lang, mark in (("en", "the defaults"), ("pt-BR", "valores padrão")):
            page, log = open_page((site / page_file(f"sweeps-{domain}", lang)).as_uri())
            page.wait_for_selector(".sweep-plot[data-ready=true]")
            objective = page.evaluate("() => Array.from(document.querySelector('.sweep-plot').data[0].dimensions.at(-1).values)")
            assert objective == pytest.approx([trial["value"] for trial in finished]), name
            assert page.locator("table.trials tbody tr").count() == len(record["trials"])
            marked = page.locator("table.trials tbody td", has_text=f"({mark})")
            assert marked.count() == 1 and marked.inner_text() == f"{defaults[0]} ({mark})", (name, lang)
            assert f"({defaults[0]})" in page.inner_text("table.best-default tr.objective")
            assert f"dvc exp apply {record['best']['experiment']}" in page.inner_text("main")
            assert all(url.startswith("file://") for url in log.requests), log.requests
            log.assert_clean()
            page.close()
