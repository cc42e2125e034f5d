"""Site fixtures: report folders from tiny real runs of three domains (and of all five), the built site, headless Chromium.

The reports come from the domains' own stage functions on real data from the mirror (tiny
models, a few seconds each), built once per test session even under pytest-xdist.
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import tiny
import yaml
from filelock import FileLock

from latente.shared.params import validate
from latente.site import PublishParams, build_site
from latente.shared.stage import DomainPaths

LOCAL_SCHEMES = {"file", "data", "blob", "about"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def run_stages(domain: str, root: Path, tiny: dict, overrides: dict) -> None:
    """Run a domain's stages in order on `root`, with tiny params (and test-specific overrides) validated by
    each stage function's own schema, exactly as `run_stage` would."""
    import importlib
    import typing

    stages = importlib.import_module(f"latente.pipelines.{domain}").STAGES
    paths = DomainPaths(domain, root)
    for stage in stages:
        if stage.name not in tiny and stage.name not in overrides:
            continue
        function = stage.function()
        schema = typing.get_type_hints(function)["params"]
        function(schema.model_validate({**tiny.get(stage.name, {}), **overrides.get(stage.name, {})}), paths)


def _ecg(root: Path, mirror: Path) -> None:
    source = {**tiny.ECG["fetch"]["source"], "kind": "local", "location": str(mirror / "ecg")}
    run_stages("ecg", root, tiny.ECG, {"fetch": {"source": source}, "evaluate": {"seconds": 65}})


def _speech(root: Path, mirror: Path) -> None:
    run_stages("speech", root, tiny.SPEECH, {
        "fetch": {"source": {"kind": "local", "location": str(mirror / "speech")}},
        "prepare": {"dataset": {"root": str(DomainPaths("speech", root).raw / "recordings")}},
    })


def _protein(root: Path, mirror: Path) -> None:
    raw = DomainPaths("protein", root).raw
    raw.mkdir(parents=True)
    defaults = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())["protein"]["fetch"]["source"]["files"]
    alignment, dms = (mirror / "protein" / name for name in defaults)
    records = alignment.read_text().split(">")[1:301]  # the focus and 299 more
    (raw / tiny.PROTEIN["prepare"]["alignment"]).write_text("".join(">" + r for r in records))
    shutil.copyfile(dms, raw / dms.name)
    (root / "params.yaml").write_text(yaml.safe_dump({"protein": tiny.PROTEIN}))  # evaluate retrains the depth curve with `train`
    run_stages("protein", root, tiny.PROTEIN, {"evaluate": {"mutations": dms.name}})


def _anomaly(root: Path, mirror: Path) -> None:
    source = {**tiny.ANOMALY["fetch"]["source"], "kind": "local", "location": str(mirror / "anomaly")}
    run_stages("anomaly", root, tiny.ANOMALY, {"fetch": {"source": source}})


def _mri(root: Path, mirror: Path) -> None:
    """The MRI stages on crops of the real volumes (tests/mri/conftest.py's, as its pipeline test runs them)."""
    from tests.mri.conftest import SMALL_PARAMS, run_stages_in_process, write_crops, write_params

    (root / "mri-crops").mkdir(parents=True)
    crops = write_crops(mirror, root / "mri-crops")
    write_params(root, SMALL_PARAMS)
    run_stages_in_process(root, ("fetch", "prepare", "train", "evaluate"), crops)


def _session_folder(tmp_path_factory, name: str, runs, mirror: Path, repo_root: Path) -> Path:
    """reports/ from these tiny runs and the repo's params.yaml in one folder per test session, made once even
    under pytest-xdist (the first worker to take the lock runs them)."""
    basetemp = tmp_path_factory.getbasetemp()
    shared_tmp = basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp  # this session's, for every worker
    root = shared_tmp / name
    with FileLock(str(root) + ".lock"):
        if not (root / "done").is_file():
            shutil.rmtree(root, ignore_errors=True)
            work = root / "work"
            for run in runs:
                run(work, mirror)
            root.mkdir(exist_ok=True)
            shutil.copytree(work / "reports", root / "reports")
            shutil.copyfile(repo_root / "params.yaml", root / "params.yaml")
            shutil.rmtree(work)
            (root / "done").write_text("ok")
    return root


@pytest.fixture(scope="session")
def tiny_reports(tmp_path_factory, mirror, repo_root) -> Path:
    """A folder holding reports/{ecg,speech,protein} from tiny real runs, and the repo's params.yaml.

    mri and anomaly are left out on purpose: the site must skip them with a note.
    """
    return _session_folder(tmp_path_factory, "site-tiny-runs", (_ecg, _speech, _protein), mirror, repo_root)


@pytest.fixture(scope="session")
def tiny_reports_of_five(tmp_path_factory, mirror, repo_root, tiny_reports) -> Path:
    """A folder holding reports/ of all five domains: tiny_reports' three, and anomaly and mri from their own tiny runs."""
    more = _session_folder(tmp_path_factory, "site-tiny-runs-more", (_anomaly, _mri), mirror, repo_root)
    root = tmp_path_factory.mktemp("site-five")
    shutil.copytree(tiny_reports / "reports", root / "reports")
    for domain in ("anomaly", "mri"):
        shutil.copytree(more / "reports" / domain, root / "reports" / domain)
    return root


@pytest.fixture(scope="session")
def publish_params(repo_root) -> PublishParams:
    """The repository's own publish section (so the tests also validate it)."""
    section = yaml.safe_load((repo_root / "params.yaml").read_text())["publish"]
    return validate(PublishParams, section, "publish")


PROTEIN_SERIES = {"profile": {"columns": ["original", "decoded"], "x_start": "x_start", "x_step": "x_step",
                              "x_title": {"en": "position", "pt-BR": "posição"}, "y_title": {"en": "score", "pt-BR": "escore"}}}
SPEECH_SCALES = ["score"]
SPEECH_BARS = {"error shares": {"kind": "bar", "columns": ["model", "pca"], "x_labels": "sensors",
                                "y_title": {"en": "share", "pt-BR": "fração"}}}


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def update_rows(path: Path, update) -> None:
    """Rewrite a CSV with update(index, row) applied to each row (new keys become new columns)."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        update(index, row)
    write_csv(path, rows)


def add_protein_series(latent: Path) -> None:
    """PROTEIN_SERIES's columns in protein's explorer CSV: three numbers a line, every third row without any."""

    def update(index: int, row: dict) -> None:
        numbers = index % 3 != 2
        row.update(original=f"{index} {index + 0.5} -1.25" if numbers else "", decoded=f"{index + 0.25} {index} -1" if numbers else "",
                   x_start=f"{-index / 4}" if numbers else "", x_step="0.125" if numbers else "")

    update_rows(latent, update)


def add_speech_colourings(projection: Path) -> None:
    """SPEECH_SCALES's and SPEECH_BARS's columns in speech's explorer CSV: a score of index / 8 − 3, and
    three bars a column over sensors (one label with spaces), every third row without any."""

    def update(index: int, row: dict) -> None:
        bars = index % 3 != 2
        row.update(score=f"{index / 8 - 3}", model=f"{index / 100} 0.5 0.25" if bars else "", pca=f"0.125 {index / 200} 0.75" if bars else "",
                   sensors="Accelerometer1RMS | Volume Flow RateRMS | Pressure" if bars else "")

    update_rows(projection, update)


SPEECH_INTERPOLATION = [  # as speech's evaluate stage writes it; the fourth step's files are missing
    {"step": str(k), "t": t, "start": "3_theo_0.wav", "end": "8_theo_0.wav", "predicted": predicted,
     "audio": f"figures/interpolation/step_{k:02d}.wav", "image": f"figures/interpolation/step_{k:02d}.png"}
    for k, (t, predicted) in enumerate((("0.0", "3"), ("0.25", "3"), ("0.5", "5"), ("0.75", "8"), ("1.0", "8")))
]
PROTEIN_INTERPOLATION = [  # a text interpolation (protein's evaluate stage writes none yet): decoded sequences
    {"step": "0", "t": "0.0", "start": "BLAT_ECOLX/24-286", "end": "Q9L5C7_9BACT/1-263",
     "sequence": "HPETLVKVKDAEDQLG--ARVGYIELDL", "identity_start": "1.0", "identity_end": "0.7143"},
    {"step": "1", "t": "0.5", "start": "BLAT_ECOLX/24-286", "end": "Q9L5C7_9BACT/1-263",
     "sequence": "HPETLVKVKDAEDKLG--ARVGYVELDL", "identity_start": "0.9286", "identity_end": "0.7857"},
    {"step": "2", "t": "1.0", "start": "BLAT_ECOLX/24-286", "end": "Q9L5C7_9BACT/1-263",
     "sequence": "HPEALIKVKDAEDKLGGSARLGYVELDL", "identity_start": "0.7143", "identity_end": "1.0"},
]


def write_interpolations(reports: Path) -> None:
    """SPEECH_INTERPOLATION and PROTEIN_INTERPOLATION in reports/<domain>/plots/interpolation.csv, with each speech
    step's files (a real 0.25 s WAV clip and a small PNG spectrogram, different at each step) but the fourth's,
    in place of those the tiny speech run wrote."""
    import numpy as np
    import soundfile
    from matplotlib.image import imsave

    shutil.rmtree(reports / "speech" / "figures" / "interpolation", ignore_errors=True)
    for k, row in enumerate(SPEECH_INTERPOLATION):
        if k == 3:
            continue
        audio, image = (reports / "speech" / row[column] for column in ("audio", "image"))
        audio.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(audio, 0.5 * np.sin(2 * np.pi * (300 + 100 * k) * np.arange(2000) / 8000), 8000)
        imsave(image, np.add.outer(np.arange(20), k * np.arange(30)), cmap="magma")
    write_csv(reports / "speech" / "plots" / "interpolation.csv", SPEECH_INTERPOLATION)
    write_csv(reports / "protein" / "plots" / "interpolation.csv", PROTEIN_INTERPOLATION)


@pytest.fixture(scope="session")
def interpolations():
    """interpolations(reports): write SPEECH_INTERPOLATION and PROTEIN_INTERPOLATION, and the speech steps' files."""
    return write_interpolations


@pytest.fixture(scope="session")
def site_params(repo_root) -> PublishParams:
    """The repository's publish section with PROTEIN_SERIES in protein's explorer, PROTEIN_INTERPOLATION's text
    interpolation, and SPEECH_SCALES and SPEECH_BARS in speech's (built_site's CSVs have their columns)."""
    section = yaml.safe_load((repo_root / "params.yaml").read_text())["publish"]
    section["domains"]["protein"]["explorer"]["series"] = PROTEIN_SERIES
    section["domains"]["protein"]["interpolation"] = {"text": "sequence", "details": ["identity_start", "identity_end"]}
    section["domains"]["speech"]["explorer"].update(scales=SPEECH_SCALES, series=SPEECH_BARS)
    return validate(PublishParams, section, "publish")


SPEECH_OBJECTIVE = {"file": "reports/speech/summary.json", "metric": "model/accuracy", "direction": "maximize"}
SITE_SWEEPS = {  # speech's two sweeps (the first searched, the second not yet); ecg and protein have none
    "speech-latent": {"target": "evaluate@speech", "objective": SPEECH_OBJECTIVE, "trials": 3, "minutes": 5,
                      "space": {"speech.train.model.latent_dim": {"choice": [16, 32, 64]},
                                "speech.train.trainer.lr": {"low": 0.0001, "high": 0.01, "log": True}},
                      "fixed": {"speech.train.trainer.epochs": 4, "speech.train.test_speakers": ["lucas"]},
                      "drop": ["speech.evaluate.interpolation"]},
    "speech-weight": {"target": "evaluate@speech", "objective": SPEECH_OBJECTIVE, "trials": 4, "minutes": 5,
                      "space": {"speech.train.supervision.digit_weight": {"low": 0, "high": 300}}},
}
# speech-latent-0 ran these defaults, as a search's first trial does
SWEEP_DEFAULTS = {"speech.train.model.latent_dim": 16, "speech.train.trainer.lr": 0.0005, "speech.train.supervision.digit_weight": 100.0}
SWEEP_TRIALS = [  # speech-latent's: two finished, one failed between them; the last is the best
    {"experiment": "speech-latent-0", "params": {"speech.train.model.latent_dim": 16, "speech.train.trainer.lr": 0.0005},
     "state": "COMPLETE", "value": 0.625},
    {"experiment": "speech-latent-1", "params": {"speech.train.model.latent_dim": 64, "speech.train.trainer.lr": 0.003},
     "state": "FAIL", "value": None},
    {"experiment": "speech-latent-2", "params": {"speech.train.model.latent_dim": 64, "speech.train.trainer.lr": 0.0012},
     "state": "COMPLETE", "value": 0.75},
]


def set_sweeps(params_file: Path, sweeps: dict, defaults: dict) -> None:
    """Replace the sweeps section of a params.yaml, and set the searched keys' values (dotted keys) there."""
    params = yaml.safe_load(params_file.read_text())
    params["sweeps"] = sweeps
    for key, value in defaults.items():
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    params_file.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False))  # the sweeps in the given order


def write_trials(root: Path, name: str, spec: dict, trials: list[dict], best: int | None) -> Path:
    """sweeps/<name>.json, the record `latente.shared.sweep` writes; `best` indexes `trials`."""
    top = None if best is None else {key: trials[best][key] for key in ("experiment", "params", "value")}
    path = root / "sweeps" / f"{name}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"target": spec["target"], "objective": spec["objective"], "fixed": spec.get("fixed", {}),
                                "drop": spec.get("drop", []), "trials": trials, "best": top}))
    return path


@pytest.fixture(scope="session")
def sweeps_in_params():
    """sweeps_in_params(params_file, sweeps, defaults): params.yaml with this sweeps section and these values of its keys."""
    return set_sweeps


@pytest.fixture(scope="session")
def trials_json():
    """trials_json(root, name, spec, trials, best) → the path of the record written for sweep `name`."""
    return write_trials


@pytest.fixture(scope="session")
def built_site(tiny_reports, site_params, tmp_path_factory) -> Path:
    """reports/site built from the tiny runs, outside any git or DVC repository; protein's explorer has a line series,
    speech's a scale and a bar series; both have their interpolation (write_interpolations); params.yaml has SITE_SWEEPS
    (at SWEEP_DEFAULTS), and speech-latent SWEEP_TRIALS."""
    root = tmp_path_factory.mktemp("site-root")
    shutil.copytree(tiny_reports / "reports", root / "reports")
    shutil.copyfile(tiny_reports / "params.yaml", root / "params.yaml")
    add_protein_series(root / "reports" / "protein" / "plots" / "latent.csv")
    add_speech_colourings(root / "reports" / "speech" / "plots" / "projection.csv")
    write_interpolations(root / "reports")
    set_sweeps(root / "params.yaml", SITE_SWEEPS, SWEEP_DEFAULTS)
    write_trials(root, "speech-latent", SITE_SWEEPS["speech-latent"], SWEEP_TRIALS, best=2)
    build_site(site_params, root)
    return root


@pytest.fixture
def copy_reports(tiny_reports):
    """copy_reports(dest, domains) → dest holding those domains' tiny reports and params.yaml."""

    def copy(dest: Path, domains=("ecg", "speech", "protein")) -> Path:
        dest.mkdir(parents=True)
        for domain in domains:
            shutil.copytree(tiny_reports / "reports" / domain, dest / "reports" / domain)
        shutil.copyfile(tiny_reports / "params.yaml", dest / "params.yaml")
        return dest

    return copy


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def edit_metrics():
    """edit_metrics(path, change): apply change(data) to a JSON file in place."""
    return edit_json


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.scheme in ("http", "https", "ws") and parts.hostname in LOCAL_HOSTS)


class PageLog:
    """What a page did: console errors, uncaught exceptions, dialogs, requests that left the machine."""

    def __init__(self, page, offsite: list[str]):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.offsite = offsite  # shared by the pages of one browser context
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: self.requests.append(r.url))

    def assert_clean(self) -> None:
        assert not self.errors, self.errors
        assert not self.dialogs, self.dialogs
        assert not self.offsite, self.offsite


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser):
    """open_page(url) → (page, log); requests off the machine are recorded and aborted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    offsite: list[str] = []

    context.on("request", lambda r: None if is_local(r.url) else offsite.append(r.url))
    context.route("**/*", lambda route: route.continue_() if is_local(route.request.url) else route.abort())

    def open_(url: str):
        page = context.new_page()
        log = PageLog(page, offsite)
        page.goto(url, wait_until="load")
        return page, log

    yield open_
    context.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where the browser tests leave a screenshot of every page they open."""
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture(scope="session")
def subprocess_env(repo_root):
    import sys

    return {**os.environ, "OMP_NUM_THREADS": "1", "DVC_NO_ANALYTICS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


POINT_CENTRE = """(index) => {
    const gd = document.querySelector('#latent-explorer .explorer-plot');
    for (let curve = 0; curve < gd.data.length; curve++) {
        const point = gd.data[curve].customdata.indexOf(index);
        if (point < 0) continue;
        const trace = gd.querySelectorAll('.scatterlayer .trace')[curve];
        const box = trace.querySelectorAll('.point')[point].getBoundingClientRect();
        return [box.x + box.width / 2, box.y + box.height / 2];
    }
    return null;
}"""


@pytest.fixture
def isolated_point():
    """isolated_point(page, candidates): the candidate whose marker lies farthest from every other marker,
    so that the real mouse lands on it and not on a neighbour drawn on top of it."""

    def pick(page, candidates: list[int]) -> int:
        count = page.evaluate("() => window.LATENTE_EXPLORER.label.length")
        centres = [page.evaluate(POINT_CENTRE, index) for index in range(count)]
        return max(candidates, key=lambda i: min(math.dist(centres[i], c) for j, c in enumerate(centres) if j != i))

    return pick


@pytest.fixture
def point_at():
    """point_at(page, index, click=False): move the real mouse onto explorer point `index` (and click)."""

    def move(page, index: int, click: bool = False) -> None:
        page.wait_for_selector("#latent-explorer[data-ready=true]")
        page.locator("#latent-explorer .explorer-plot").scroll_into_view_if_needed()
        x, y = page.evaluate(POINT_CENTRE, index)
        page.mouse.move(x, y)
        if click:
            page.mouse.click(x, y)

    return move
