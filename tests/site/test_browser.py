"""Every page of the site in headless Chromium, opened from disk with no network."""
from __future__ import annotations

import csv

from latente.site.build import page_file

OTHER_LANGUAGE = {"en": "pt-BR", "pt-BR": "en"}


def _page_name(file_name: str) -> tuple[str, str]:
    stem = file_name.removesuffix(".html")
    return (stem.removesuffix(".pt-BR"), "pt-BR") if stem.endswith(".pt-BR") else (stem, "en")


def test_every_page_loads_offline_with_no_errors(built_site, open_page, screenshots):
    site = built_site / "reports" / "site"
    pages = sorted(site.glob("*.html"))
    assert len(pages) == 10
    for path in pages:
        page, log = open_page(path.as_uri())
        if page.locator("#latent-explorer").count():
            page.wait_for_selector("#latent-explorer[data-ready=true]")
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
    assert len(list(screenshots.glob("*.png"))) >= 10


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
