"""Stage functions on real data: fetch (local HTTP mirror), prepare, and evaluate's report."""
from __future__ import annotations

import json
import shutil

import pytest

from latente.domains.protein import sources
from latente.domains.protein.params import EvaluateParams, FetchParams, PrepareParams
from latente.domains.protein.prepared import load_prepared
from latente.pipelines import protein as stages
from latente.shared.errors import UserError
from latente.shared.stage import DomainPaths

FILES = [sources.ALIGNMENT, sources.DMS]
SHA = {sources.ALIGNMENT: "68e0c67d86159e6e6363aa3131d6275634d9c7c80decba32cbf055a6a0218320",
       sources.DMS: "ca17d79b57a0624a2e4189d1912c32d4d80fd67ee0835549573223f9f90d5336"}


def test_fetch_from_an_http_mirror_verifies_checksums(http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    paths = DomainPaths("protein", root=tmp_path)
    params = FetchParams.model_validate({"source": {"kind": "url", "location": f"{http_mirror}/protein", "files": FILES, "sha256": SHA}})
    stages.fetch(params, paths)
    assert sorted(p.name for p in paths.raw.iterdir()) == sorted(FILES)
    bad = FetchParams.model_validate({"source": {"kind": "url", "location": f"{http_mirror}/protein", "files": FILES,
                                                 "sha256": {**SHA, sources.DMS: "0" * 64}}})
    with pytest.raises(UserError, match="sha256 does not match"):
        stages.fetch(bad, DomainPaths("protein", root=tmp_path / "other"))
    assert not (tmp_path / "other" / "data" / "raw" / "protein").exists()  # nothing half-fetched


def test_canonical_source_is_pinned_to_commits(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    fetched = []

    def fake_download(url, dest):
        fetched.append(url)
        shutil.copyfile(mirror / "protein" / url.rsplit("/", 1)[1], dest)

    monkeypatch.setattr(sources, "download_file", fake_download)
    params = FetchParams.model_validate({"source": {"kind": "canonical", "files": FILES, "sha256": SHA}})
    stages.fetch(params, DomainPaths("protein", root=tmp_path))
    assert fetched == [
        "https://raw.githubusercontent.com/charlesxu90/DeepSequence-torch/640db39769a93ef3d5bc11d6ad05aa7f5d761972/"
        f"datasets/{sources.ALIGNMENT}",
        "https://raw.githubusercontent.com/debbiemarkslab/DeepSequence/fd5c272b273385c0b87fce9dec410a9d74463393/"
        f"examples/mutations/{sources.DMS}",
    ]
    with pytest.raises(UserError, match="has no canonical upstream"):
        sources.download_canonical(["other.a2m"], tmp_path)


def test_prepare_and_evaluate_write_the_report(cropped_alignment, blat_dms, tiny_model, tmp_path, capsys):
    paths = DomainPaths("protein", root=tmp_path)
    paths.raw.mkdir(parents=True)
    shutil.copyfile(cropped_alignment, paths.raw / "cropped.a2m")
    shutil.copyfile(blat_dms, paths.raw / sources.DMS)
    stages.prepare(PrepareParams(alignment="cropped.a2m"), paths)
    prepared = load_prepared(paths.prepared)
    assert prepared.alignment.shape[1] == 253 and prepared.neff < prepared.alignment.shape[0]
    shutil.copytree(tiny_model, paths.model)
    capsys.readouterr()
    stages.evaluate(EvaluateParams(mutations=sources.DMS, score_column="2500", samples=4, generated=50, clusters=3), paths)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(paths.metrics.read_text())
    methods = {(r["method"], json.dumps(r["condition"])) for r in printed["results"]}
    assert {("model", "{}"), ("site_independent", "{}"), ("model", '{"task": "train"}'),
            ("model", '{"task": "generation"}'), ("natural", '{"task": "generation"}')} <= methods
    generation = next(r["metrics"] for r in printed["results"] if r["method"] == "model" and r["condition"] == {"task": "generation"})
    assert 0 < generation["identity_nearest"] <= 1 and 0 <= generation["gap_fraction"] < 1 and generation["n"] == 50
    for figure in ("effects", "training", "latent", "generation"):
        assert (paths.figures / f"{figure}.png").stat().st_size > 1000
        assert f"figures/{figure}.png" in paths.report.read_text()
    latent = (paths.plots / "latent.csv").read_text().splitlines()
    assert latent[0] == "id,pc1,pc2,cluster,species,weight,sequence"
    assert len(latent) == prepared.alignment.shape[0] + 1 and latent[1].startswith("BLAT_ECOLX/24-286,")
    assert ",ECOLX," in latent[1]
    assert len((paths.plots / "effects.csv").read_text().splitlines()) == 4808
