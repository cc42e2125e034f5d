"""A small real run of every stage (tests/tiny.py: 3 speakers, 8 takes per digit, tiny models), then the CLI on its model."""
from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
from tiny import SPEECH

from conftest import assert_user_error
from latente.domains.speech import DOMAIN
from latente.domains.speech.data import load_audio, read_prepared
from latente.domains.speech.model import SpeechModel
from latente.domains.speech.report import pct
from latente.domains.speech.params import DatasetParams, EvaluateParams, FeatureParams, FetchParams, PrepareParams, TrainParams
from latente.domains.speech.sources import fsdd_files, manifest_sha256
from latente.pipelines.speech import STAGES
from latente.shared.report import check_target, load_references
from latente.shared.errors import UserError
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

pytestmark = pytest.mark.slow  # the whole fetch → evaluate chain (about half a minute on one core)

SPEAKERS = tuple(SPEECH["fetch"]["speakers"])
TAKES = SPEECH["fetch"]["takes"]
CODE_DIMS = SPEECH["train"]["model"]["latent_dim"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    stage = {s.name: s.function() for s in STAGES}
    paths = DomainPaths(DOMAIN, tmp_path_factory.mktemp("repo"))
    stage["fetch"](FetchParams.model_validate({**SPEECH["fetch"], "source": {"kind": "local", "location": str(mirror / DOMAIN)}}), paths)
    stage["prepare"](PrepareParams(dataset=DatasetParams(root=str(paths.raw / "recordings"))), paths)
    stage["train"](TrainParams.model_validate(SPEECH["train"]), paths)
    stage["evaluate"](EvaluateParams.model_validate(SPEECH["evaluate"]), paths)
    return paths


def test_fetch_verifies_and_records_the_source(run):
    note = json.loads((run.raw / "SOURCE.json").read_text())
    assert note["files"] == 10 * TAKES * len(SPEAKERS)
    assert note["manifest_sha256"] == manifest_sha256(run.raw, fsdd_files(SPEAKERS, TAKES))


def test_models_per_fold(run):
    main = SpeechModel.load(run.model)
    assert [f["held_out"] for f in main.info["folds"]] == [["theo"], ["jackson"], ["nicolas"]]
    for entry in main.info["folds"][1:]:
        fold = SpeechModel.load(run.model / entry["folder"])
        assert fold.info["held_out"] == entry["held_out"] and fold.code_dims == CODE_DIMS
        assert fold.info["fit"]["epochs_run"] == SPEECH["train"]["trainer"]["epochs"] and fold.info["fit"]["cpu_seconds"] > 0
    assert main.normaliser.std > 0 and main.classifier.classes == [str(d) for d in range(10)]
    assert (run.training_log / "metrics.json").is_file()


def test_metrics_are_per_speaker_with_means(run):
    metrics = json.loads(run.metrics.read_text())
    assert metrics["domain"] == DOMAIN and metrics["data"]["items"] == sorted(SPEAKERS)
    rows = {(r["method"], json.dumps(r["condition"], sort_keys=True)): r["metrics"] for r in metrics["results"]}
    for method, dims in (("model", CODE_DIMS), ("mfcc", 78)):  # MFCC: 6 × 13 (test_features)
        overall = rows[(method, "{}")]
        assert overall["dims"] == dims and overall["seconds"] > 0
        for condition in ({}, {"snr_db": 10.0}):
            per = [rows[(method, json.dumps({**condition, "speaker": s}, sort_keys=True))] for s in SPEAKERS]
            mean = rows[(method, json.dumps(condition, sort_keys=True))]
            assert mean["accuracy"] == pytest.approx(np.mean([p["accuracy"] for p in per]))
            assert all(0.0 <= p["accuracy"] <= 1.0 and 0.0 <= p["macro_f1"] <= 1.0 for p in per)
    # the MFCC baseline is deterministic and well above chance (0.1 for 10 digits) even on this small subset:
    # 0.558 measured with this tiny run (pytest tests/speech/test_pipeline_cli.py)
    assert rows[("mfcc", "{}")]["accuracy"] > 0.3


def test_report_figures_audio_and_plot_data(run):
    text = run.report.read_text()
    for needle in ("## Targets", "## Accuracy", "figures/confusion.png", "figures/projection.png", "figures/spectrograms.png", "figures/audio/"):
        assert needle in text
    for name in ("confusion.png", "projection.png", "spectrograms.png", "accuracy_vs_snr.png"):
        assert (run.figures / name).stat().st_size > 5000
    wavs = sorted((run.figures / "audio").glob("*.wav"))
    assert len(wavs) == SPEECH["evaluate"]["examples"] * 5  # per example: original, its Griffin-Lim, the reconstruction's, noisy, its reconstruction's
    info = sf.info(wavs[0])
    features = FeatureParams()
    assert info.samplerate == features.sample_rate and info.frames == features.samples
    with (run.plots / "projection.csv").open() as fh:
        points = list(csv.DictReader(fh))
    assert len(points) == 10 * TAKES * len(SPEAKERS)
    assert {"file", "label", "speaker", "held_out", "pca_1", "pca_2", "tsne_1", "tsne_2"} <= set(points[0])
    assert {p["speaker"] for p in points if p["held_out"] == "True"} == {"theo"}


def test_interpolation_decodes_the_straight_path_between_the_two_clips(run):
    """Evenly spaced steps from one clip's code to the other's, each with its own audio and image; the ends read as
    the digits the main model's classifier gives the two clips themselves."""
    path = SPEECH["evaluate"]["interpolation"]
    with (run.plots / "interpolation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["t"]) for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert {(r["start"], r["end"]) for r in rows} == {(path["start"], path["end"])}
    for row in rows:
        assert sf.info(run.reports / row["audio"]).frames == FeatureParams().samples
        assert (run.reports / row["image"]).stat().st_size > 1000
    main = SpeechModel.load(run.model)
    corpus = read_prepared(run.prepared).corpus
    clips = [corpus.recordings[corpus.names.index(path[end])] for end in ("start", "end")]
    assert [rows[0]["predicted"], rows[-1]["predicted"]] == main.classifier.predict(main.encode(clips).numpy()).tolist()
    assert "## Latent interpolation" in run.report.read_text() and (run.figures / "interpolation.png").is_file()


def test_a_clip_the_corpus_lacks_stops_evaluate_before_any_output(run):
    stage = {s.name: s.function() for s in STAGES}
    before = run.metrics.stat().st_mtime_ns
    bad = {**SPEECH["evaluate"], "interpolation": {"start": "3_theo_0.wav", "end": "8_nobody_0.wav"}}
    with pytest.raises(UserError) as error:
        stage["evaluate"](EvaluateParams.model_validate(bad), run)
    assert "speech.evaluate.interpolation.end" in str(error.value) and "8_nobody_0.wav" in str(error.value)
    assert run.metrics.stat().st_mtime_ns == before


def test_ablations_train_without_the_test_speakers_and_the_report_reads_them_from_the_metrics(run):
    """One encoder per inner fold and arm (jackson and nicolas, theo dropped); the report's table is metrics.json's rows."""
    results = Results.read(run.metrics, DOMAIN)
    inner = [s for s in SPEAKERS if s not in SPEECH["train"]["test_speakers"]]
    text = run.report.read_text()
    section = text[text.index("## Design ablations"):text.index("## Published figures")]
    clean = {}
    for arm in ["design", *SPEECH["evaluate"]["ablation"]]:
        per = [results.find("model", ablation=arm, speaker=s)["accuracy"] for s in inner]
        clean[arm] = results.find("model", ablation=arm)["accuracy"]
        assert clean[arm] == pytest.approx(np.mean(per))
        row = next(line for line in section.splitlines() if line.startswith(f"| `{arm}` |"))
        assert all(pct(value) in row for value in [clean[arm], *per, results.find("model", ablation=arm, snr_db=10.0)["accuracy"]])
        with pytest.raises(KeyError):
            results.find("model", ablation=arm, speaker="theo")
    assert "`features.align = voice`; `augment.shift = 0`" in section and "`trainer.seed = 4`" in section
    assert "leave-one-speaker-out over jackson, nicolas: theo is dropped altogether" in section
    assert f"moves clean accuracy by up to {100 * abs(clean['seed4'] - clean['design']):.1f} points" in section
    mfcc = next(line for line in section.splitlines() if line.startswith("| MFCC |"))
    assert pct(results.find("mfcc", ablation="design")["accuracy"]) in mfcc


def test_a_bad_ablation_arm_stops_evaluate_before_any_output(run):
    stage = {s.name: s.function() for s in STAGES}
    before = run.metrics.stat().st_mtime_ns
    bad = {**SPEECH["evaluate"], "ablation": {"typo": {"augment": {"shfit": 0}}}}
    with pytest.raises(UserError) as error:
        stage["evaluate"](EvaluateParams.model_validate(bad), run)
    assert "params.yaml: speech.evaluate.ablation.typo.augment.shfit: unknown key (misspelt?)" in str(error.value)
    assert run.metrics.stat().st_mtime_ns == before


def test_report_targets_are_checked_on_the_metrics(run):
    """One row per target of params.yaml, with the verdict `check_target` gives on metrics.json."""
    text = run.report.read_text()
    results = Results.read(run.metrics, DOMAIN)
    targets = load_references(DOMAIN).targets
    assert targets
    measured = 0
    for target in targets:
        check = check_target(results, target)
        row = next(line for line in text.splitlines() if line.startswith(f"| {target.name} |"))
        tested = target.condition.get("speaker", SPEAKERS[0]) in SPEAKERS and target.condition.get("snr_db", 10.0) in SPEECH["evaluate"]["snr_db"]
        if not tested:  # a speaker or SNR this tiny run leaves out: said so, never a pass
            assert check.verdict == "not measured" and "| not measured |" in row
            continue
        measured += 1
        assert f"| {check.verdict} |" in row and f"{check.measured:.3f}" in row and f"{check.threshold:.3f}" in row
    assert measured >= 6  # both issue-4 targets, the clean ones, jackson, nicolas, theo and 10 dB


def test_report_describes_what_was_run_and_cites_no_typed_numbers(run):
    text = run.report.read_text()
    assert "BASELINES" not in text
    for anchor in load_references(DOMAIN).anchors:
        assert anchor.label in text and anchor.citation in text
    model = SPEECH["train"]["model"]
    method = text[text.index("## Method"):]
    assert f"`{model['name']}`" in method and f"channels {model['channels']}" in method and f"strides {model['strides']}" in method
    assert f"flat code of {CODE_DIMS} dims" in method
    low, high = TrainParams.model_validate(SPEECH["train"]).augment.snr_db
    assert f"presented {SPEECH['train']['augment']['copies']} time(s)" in method and f"{low:g}–{high:g} dB" in method
    slow, fast = SPEECH["train"]["augment"]["speed"]
    model_line = next(line for line in method.splitlines() if line.startswith("- **Model.**"))
    assert f"played at a speed drawn from {slow:g}–{fast:g}×" in model_line and "SpecAugment" not in model_line
    assert f"moved by up to {SPEECH['train']['augment']['shift']} frames either way" in model_line
    assert f"An invariance term adds {SPEECH['train']['supervision']['invariance_weight']:g} ×" in model_line
    assert "(center-aligned, padded" in method
    mfcc = EvaluateParams().mfcc
    assert f"MFCC` ({mfcc.n_mfcc} coefficients; n_fft {mfcc.n_fft}, hop {mfcc.hop_length}, {mfcc.n_mels} mels)" in method
    epochs = re.findall(r"without (\w+): (\d+) epochs", text)
    assert sorted(epochs) == sorted((s, str(SPEECH["train"]["trainer"]["epochs"])) for s in SPEAKERS)


# --- the CLI on the trained model -----------------------------------------------------------
def test_embed_writes_one_row_per_file(run, latente, tmp_path):
    theo = sorted(run.raw.glob("recordings/*_theo_*.wav"))
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy(theo[0], folder / "a.wav")
    clipped = tmp_path / "loud.wav"
    samples, _ = load_audio(theo[1], 8000)
    sf.write(clipped, np.clip(samples.numpy() * 50, -1, 32767 / 32768), 8000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"  # the second half of the bytes lost, its header unchanged
    whole = theo[2].read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "codes.csv"
    result = latente(DOMAIN, "embed", *theo, folder, clipped, cut, "--model", run.model, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"warning: {clipped}: audio is clipped" in result.stderr
    data = whole.index(b"data")
    declared = int.from_bytes(whole[data + 4 : data + 8], "little")
    assert f"warning: {cut}: truncated: its header declares {declared} bytes of audio" in result.stderr
    assert sum("truncated" in line for line in result.stderr.splitlines()) == 1  # the whole files say nothing
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(theo) + 3 and list(rows[0])[:3] == ["file", "predicted", "z0"] and len(rows[0]) == 2 + CODE_DIMS
    model = SpeechModel.load(run.model)
    codes = model.encode([load_audio(p, 8000)[0] for p in theo]).numpy()
    written = np.array([[float(r[f"z{k}"]) for k in range(CODE_DIMS)] for r in rows[: len(theo)]])
    np.testing.assert_allclose(written, codes, rtol=1e-5, atol=1e-5)
    # theo is the main model's held-out speaker: its stored classifier scores as the evaluation did
    accuracy = np.mean([r["predicted"] == r["file"].split("/")[-1].split("_")[0] for r in rows[: len(theo)]])
    metrics = json.loads(run.metrics.read_text())
    theo_row = next(r for r in metrics["results"] if r["method"] == "model" and r["condition"] == {"speaker": "theo"})
    assert accuracy == pytest.approx(theo_row["metrics"]["accuracy"], abs=1.5 / len(theo))

    again = latente(DOMAIN, "embed", theo[0], "--model", run.model, "--out", out)
    assert_user_error(again, str(out), "already exists")


def test_embed_bad_input_leaves_no_output(run, latente_subprocess, tmp_path):
    """Through a real `python -m latente.domains.cli` process: one error line, exit 2, no CSV."""
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    out = tmp_path / "codes.csv"
    result = latente_subprocess(DOMAIN, "embed", bad, "--model", run.model, "--out", out)
    assert_user_error(result, str(bad), "not a readable audio file")
    assert not out.exists()


def test_evaluate_json_on_a_labelled_folder(run, latente, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted(run.raw.glob("recordings/*.wav")):
        if int(path.stem.split("_")[2]) < 3 and path.stem.split("_")[1] in ("jackson", "nicolas"):
            shutil.copy(path, data / path.name)
    result = latente(DOMAIN, "evaluate", "--data", data, "--model", run.model, "--json", "--snr", "10")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["domain"] == DOMAIN and out["data"]["items"] == ["jackson", "nicolas"]
    conditions = {(r["method"], json.dumps(r["condition"], sort_keys=True)) for r in out["results"]}
    assert ("mfcc", '{"snr_db": 10.0}') in conditions and ("model", '{"speaker": "nicolas"}') in conditions
    # the main model held out theo only: it heard both speakers, and says so
    assert "does not retrain the encoder" in result.stderr and "heard jackson, nicolas in training" in result.stderr

    table = latente(DOMAIN, "evaluate", "--data", data, "--model", run.model, "--snr", "10")
    assert table.returncode == 0, table.stderr
    per_speaker = {line.split("|")[1].strip(): line for line in table.stdout.splitlines() if line.startswith("| jackson") or line.startswith("| nicolas")}
    nicolas = next(r for r in out["results"] if r["method"] == "model" and r["condition"] == {"speaker": "nicolas"})
    assert set(per_speaker) == {"jackson", "nicolas"} and f"{100 * nicolas['metrics']['accuracy']:.1f} %" in per_speaker["nicolas"]

    (data / "seven by theo.wav").write_bytes((data / "0_jackson_0.wav").read_bytes())
    bad = latente(DOMAIN, "evaluate", "--data", data, "--model", run.model, "--json")
    assert_user_error(bad, "seven by theo.wav", "does not match the label pattern", "(?P<label>")
