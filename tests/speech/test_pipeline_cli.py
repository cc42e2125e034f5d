"""A small real run (3 speakers, 8 takes per digit, tiny model) of every stage, then the CLI on its model."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import assert_user_error
from latente.domains.speech.audio import load_audio
from latente.domains.speech.fetch import fetch_fsdd, fsdd_files, manifest_sha256
from latente.domains.speech.model import SpeechModel
from latente.domains.speech.params import AugmentParams, DatasetParams, EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.sources import SourceParams
from latente.shared.stage import DomainPaths

SPEAKERS = ("jackson", "nicolas", "theo")
TAKES = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory, mirror):
    import latente.pipelines.speech as stages

    paths = DomainPaths("speech", tmp_path_factory.mktemp("repo"))
    fetch = FetchParams(source=SourceParams(kind="local", location=str(mirror / "speech")), speakers=SPEAKERS, takes=TAKES)
    stages.fetch(fetch, paths)
    stages.prepare(PrepareParams(dataset=DatasetParams(root=str(paths.raw / "recordings"))), paths)
    train = TrainParams(
        test_speakers=("theo",), loso=True, augment=AugmentParams(copies=1),
        model={"name": "conv_ae", "spatial_dims": 2, "channels": [8, 16], "strides": [2, 2], "latent_dim": 16},
        trainer={"epochs": 2, "batch_size": 32, "threads": 1, "device": "cpu", "seed": 3},
    )
    stages.train(train, paths)
    stages.evaluate(EvaluateParams(snr_db=(10.0,), examples=2), paths)
    return paths


def test_fetch_verifies_and_records_the_source(run):
    note = json.loads((run.raw / "SOURCE.json").read_text())
    assert note["files"] == 10 * TAKES * len(SPEAKERS)
    assert note["manifest_sha256"] == manifest_sha256(run.raw, fsdd_files(SPEAKERS, TAKES))


def test_canonical_download_path_against_a_local_server(http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    params = FetchParams(speakers=("lucas",), takes=2)
    fetch_fsdd(params, tmp_path / "raw", base=f"{http_mirror}/speech")
    assert sorted(p.name for p in (tmp_path / "raw" / "recordings").iterdir())[:2] == ["0_lucas_0.wav", "0_lucas_1.wav"]
    wrong = params.model_copy(update={"manifest_sha256": "0" * 64})
    with pytest.raises(UserError, match="manifest_sha256"):
        fetch_fsdd(wrong, tmp_path / "raw2", base=f"{http_mirror}/speech")
    assert not (tmp_path / "raw2").exists()  # all or nothing


def test_models_per_fold(run):
    main = SpeechModel.load(run.model)
    assert [f["held_out"] for f in main.info["folds"]] == [["theo"], ["jackson"], ["nicolas"]]
    for entry in main.info["folds"][1:]:
        fold = SpeechModel.load(run.model / entry["folder"])
        assert fold.info["held_out"] == entry["held_out"] and fold.code_dims == 16
    assert main.normaliser.std > 0 and main.classifier.classes == [str(d) for d in range(10)]
    assert (run.training_log / "metrics.json").is_file()


def test_metrics_are_per_speaker_with_means(run):
    metrics = json.loads(run.metrics.read_text())
    assert metrics["domain"] == "speech" and metrics["data"]["items"] == sorted(SPEAKERS)
    rows = {(r["method"], json.dumps(r["condition"], sort_keys=True)): r["metrics"] for r in metrics["results"]}
    for method, dims in (("model", 16), ("mfcc", 78)):
        overall = rows[(method, "{}")]
        assert overall["dims"] == dims and overall["seconds"] > 0
        for condition in ({}, {"snr_db": 10.0}):
            per = [rows[(method, json.dumps({**condition, "speaker": s}, sort_keys=True))] for s in SPEAKERS]
            mean = rows[(method, json.dumps(condition, sort_keys=True))]
            assert mean["accuracy"] == pytest.approx(np.mean([p["accuracy"] for p in per]))
            assert all(0.0 <= p["accuracy"] <= 1.0 and 0.0 <= p["macro_f1"] <= 1.0 for p in per)
    # the MFCC baseline is deterministic and well above chance even on this small subset
    assert rows[("mfcc", "{}")]["accuracy"] > 0.3


def test_report_figures_audio_and_plot_data(run):
    text = run.report.read_text()
    for needle in ("## Targets", "## Accuracy", "figures/confusion.png", "figures/projection.png", "figures/spectrograms.png", "figures/audio/"):
        assert needle in text
    for name in ("confusion.png", "projection.png", "spectrograms.png", "accuracy_vs_snr.png"):
        assert (run.figures / name).stat().st_size > 5000
    wavs = sorted((run.figures / "audio").glob("*.wav"))
    assert len(wavs) == 2 * 5
    info = sf.info(wavs[0])
    assert info.samplerate == 8000 and info.frames == 6400
    with (run.plots / "projection.csv").open() as fh:
        points = list(csv.DictReader(fh))
    assert len(points) == 10 * TAKES * len(SPEAKERS)
    assert {"file", "label", "speaker", "held_out", "pca_1", "pca_2", "tsne_1", "tsne_2"} <= set(points[0])
    assert {p["speaker"] for p in points if p["held_out"] == "True"} == {"theo"}


# --- the CLI on the trained model -----------------------------------------------------------
def test_embed_writes_one_row_per_file(run, latente, tmp_path):
    theo = sorted(run.raw.glob("recordings/*_theo_*.wav"))
    folder = tmp_path / "more"
    folder.mkdir()
    shutil.copy(theo[0], folder / "a.wav")
    clipped = tmp_path / "loud.wav"
    samples, _ = load_audio(theo[1], 8000)
    sf.write(clipped, np.clip(samples.numpy() * 50, -1, 32767 / 32768), 8000, subtype="PCM_16")
    out = tmp_path / "codes.csv"
    result = latente("speech", "embed", *theo, folder, clipped, "--model", run.model, "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"warning: {clipped}: audio is clipped" in result.stderr
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(theo) + 2 and list(rows[0])[:3] == ["file", "predicted", "z0"] and len(rows[0]) == 2 + 16
    model = SpeechModel.load(run.model)
    codes = model.encode([load_audio(p, 8000)[0] for p in theo]).numpy()
    written = np.array([[float(r[f"z{k}"]) for k in range(16)] for r in rows[: len(theo)]])
    np.testing.assert_allclose(written, codes, rtol=1e-5, atol=1e-5)
    # theo is the main model's held-out speaker: its stored classifier scores as the evaluation did
    accuracy = np.mean([r["predicted"] == r["file"].split("/")[-1].split("_")[0] for r in rows[: len(theo)]])
    metrics = json.loads(run.metrics.read_text())
    theo_row = next(r for r in metrics["results"] if r["method"] == "model" and r["condition"] == {"speaker": "theo"})
    assert accuracy == pytest.approx(theo_row["metrics"]["accuracy"], abs=1.5 / len(theo))

    again = latente("speech", "embed", theo[0], "--model", run.model, "--out", out)
    assert_user_error(again, str(out), "already exists")


def test_embed_bad_input_leaves_no_output(run, latente_subprocess, tmp_path):
    """Through a real `python -m latente.domains.cli` process: one error line, exit 2, no CSV."""
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    out = tmp_path / "codes.csv"
    result = latente_subprocess("speech", "embed", bad, "--model", run.model, "--out", out)
    assert_user_error(result, str(bad), "not a readable audio file")
    assert not out.exists()


def test_evaluate_json_on_a_labelled_folder(run, latente, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted(run.raw.glob("recordings/*.wav")):
        if int(path.stem.split("_")[2]) < 3 and path.stem.split("_")[1] in ("jackson", "nicolas"):
            shutil.copy(path, data / path.name)
    result = latente("speech", "evaluate", "--data", data, "--model", run.model, "--json", "--snr", "10")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["domain"] == "speech" and out["data"]["items"] == ["jackson", "nicolas"]
    conditions = {(r["method"], json.dumps(r["condition"], sort_keys=True)) for r in out["results"]}
    assert ("mfcc", '{"snr_db": 10.0}') in conditions and ("model", '{"speaker": "nicolas"}') in conditions

    (data / "seven by theo.wav").write_bytes((data / "0_jackson_0.wav").read_bytes())
    bad = latente("speech", "evaluate", "--data", data, "--model", run.model, "--json")
    assert_user_error(bad, "seven by theo.wav", "does not match the label pattern", "(?P<label>")
