"""The pipeline's params and data source: strict params, CLI defaults = pipeline defaults, canonical download."""
from __future__ import annotations

import pytest

from latente.domains.anomaly.params import DetectorConfig, EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.anomaly.sources import SKAB_RAW, canonical_downloader, upstream_url
from latente.shared.errors import UserError
from latente.shared.params import stage_params
from latente.shared.sources import fetch_files, file_sha256


@pytest.fixture(scope="module")
def stages(repo_root):
    file = repo_root / "params.yaml"
    return {name: stage_params("anomaly", name, schema, file)
            for name, schema in (("fetch", FetchParams), ("prepare", PrepareParams), ("train", TrainParams),
                                 ("evaluate", EvaluateParams))}


def test_params_yaml_is_the_default_configuration(stages):
    # the CLI builds DetectorConfig() / EvaluateParams() from defaults: they must be what the pipeline measures
    assert stages["train"].detector == DetectorConfig()
    assert stages["train"].train_rows == 400
    assert stages["evaluate"] == EvaluateParams()
    assert stages["prepare"] == PrepareParams()
    assert len(stages["fetch"].source.files) == 21 and set(stages["fetch"].source.sha256) == set(stages["fetch"].source.files)


def test_misspelt_keys_are_named(tmp_path):
    file = tmp_path / "params.yaml"
    file.write_text("anomaly:\n  train:\n    detector:\n      treshold_quantile: 0.99\n")
    with pytest.raises(UserError, match=r"anomaly.train.detector.treshold_quantile: unknown key"):
        stage_params("anomaly", "train", TrainParams, file)
    file.write_text("anomaly:\n  train:\n    detector:\n      model: {name: conv_ae, in_channels: 3}\n")
    with pytest.raises(UserError, match=r"anomaly.train.detector.model: .*in_channels and spatial_dims are set from the data"):
        stage_params("anomaly", "train", TrainParams, file)


def test_canonical_source_is_skab_pinned_to_its_commit():
    assert upstream_url("skab/valve2/3.csv") == "https://raw.githubusercontent.com/waico/SKAB/b2c0d46/data/valve2/3.csv"
    assert SKAB_RAW.endswith("/waico/SKAB/b2c0d46/data")
    with pytest.raises(UserError, match="has no canonical upstream"):
        upstream_url("other/1.csv")


def test_canonical_download_verified_against_the_pinned_checksums(stages, http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    source = stages["fetch"].source.model_copy(update={"files": ("skab/valve1/0.csv", "skab/anomaly-free/anomaly-free.csv")})
    origin = fetch_files("anomaly", source, tmp_path, canonical=canonical_downloader(f"{http_mirror}/anomaly/skab"))
    assert origin == "canonical"
    assert file_sha256(tmp_path / "skab/valve1/0.csv") == source.sha256["skab/valve1/0.csv"]
    bad = source.model_copy(update={"sha256": {**source.sha256, "skab/valve1/0.csv": "0" * 64}})
    with pytest.raises(UserError, match="sha256 does not match"):
        fetch_files("anomaly", bad, tmp_path / "again", canonical=canonical_downloader(f"{http_mirror}/anomaly/skab"))
