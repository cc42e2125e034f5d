"""Stage functions on real data: fetch (local HTTP mirror), prepare, evaluate's report, and the whole
fetch → evaluate chain through `python -m latente.pipelines.protein`."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from latente.domains.protein import BOUNDS, DOMAIN, sources
from latente.domains.protein.data import ALPHABET, GAP_CODE, encode, load_prepared, read_mutations
from latente.domains.protein.model import latent_means, load_family, sequence_draws
from latente.domains.protein.params import EvaluateParams, FetchParams, PrepareParams
from latente.pipelines.protein import STAGES
from latente.shared.errors import UserError
from latente.shared.report import load_references
from latente.shared.stage import DomainPaths
from tests.tiny import PROTEIN

FILES = [sources.ALIGNMENT, sources.DMS]
# the checksums params.yaml pins (protein.fetch.source.sha256), of the files as published upstream
SHA = {sources.ALIGNMENT: "68e0c67d86159e6e6363aa3131d6275634d9c7c80decba32cbf055a6a0218320",
       sources.DMS: "ca17d79b57a0624a2e4189d1912c32d4d80fd67ee0835549573223f9f90d5336"}
STAGE = {s.name: s.function() for s in STAGES}


def test_fetch_from_an_http_mirror_verifies_checksums(http_mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    paths = DomainPaths(DOMAIN, root=tmp_path)
    params = FetchParams.model_validate({"source": {"kind": "url", "location": f"{http_mirror}/protein", "files": FILES, "sha256": SHA}})
    STAGE["fetch"](params, paths)
    assert sorted(p.name for p in paths.raw.iterdir()) == sorted(FILES)
    bad = FetchParams.model_validate({"source": {"kind": "url", "location": f"{http_mirror}/protein", "files": FILES,
                                                 "sha256": {**SHA, sources.DMS: "0" * 64}}})
    with pytest.raises(UserError, match="sha256 does not match"):
        STAGE["fetch"](bad, DomainPaths(DOMAIN, root=tmp_path / "other"))
    assert not (tmp_path / "other" / "data" / "raw" / "protein").exists()  # nothing half-fetched


def test_canonical_source_is_pinned_to_commits(mirror, tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    fetched = []

    def fake_download(url, dest):
        fetched.append(url)
        shutil.copyfile(mirror / "protein" / url.rsplit("/", 1)[1], dest)

    monkeypatch.setattr(sources, "download_file", fake_download)
    params = FetchParams.model_validate({"source": {"kind": "canonical", "files": FILES, "sha256": SHA}})
    STAGE["fetch"](params, DomainPaths(DOMAIN, root=tmp_path))
    assert fetched == [
        "https://raw.githubusercontent.com/charlesxu90/DeepSequence-torch/640db39769a93ef3d5bc11d6ad05aa7f5d761972/"
        f"datasets/{sources.ALIGNMENT}",
        "https://raw.githubusercontent.com/debbiemarkslab/DeepSequence/fd5c272b273385c0b87fce9dec410a9d74463393/"
        f"examples/mutations/{sources.DMS}",
    ]
    with pytest.raises(UserError, match="has no canonical upstream"):
        sources.download_canonical(["other.a2m"], tmp_path)


def test_prepare_and_evaluate_write_the_report(cropped_alignment, blat_dms, tiny_model, tmp_path, capsys):
    paths = DomainPaths(DOMAIN, root=tmp_path)
    paths.raw.mkdir(parents=True)
    shutil.copyfile(cropped_alignment, paths.raw / cropped_alignment.name)
    shutil.copyfile(blat_dms, paths.raw / sources.DMS)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({DOMAIN: PROTEIN}))  # evaluate retrains the depth curve with `train`
    STAGE["prepare"](PrepareParams.model_validate(PROTEIN["prepare"]), paths)
    prepared = load_prepared(paths.prepared)
    assert prepared.alignment.shape[1] == 253 and prepared.neff < prepared.alignment.shape[0]
    shutil.copytree(tiny_model, paths.model)
    capsys.readouterr()
    evaluate = EvaluateParams.model_validate(PROTEIN["evaluate"])
    STAGE["evaluate"](evaluate, paths)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(paths.metrics.read_text())
    rows = {(r["method"], json.dumps(r["condition"], sort_keys=True)): r["metrics"] for r in printed["results"]}
    members, n = PROTEIN["train"]["members"], prepared.alignment.shape[0]
    depth = PROTEIN["evaluate"]["depth"]["sequences"][0]
    expected = {("model", "{}"), ("site_independent", "{}"), ("model", '{"task": "train"}'), ("natural", '{"task": "generation"}'),
                ("model", '{"seed": 0}'), *(("model", f'{{"members": {k}}}') for k in range(1, members + 1)),
                *((m, f'{{"sequences": {s}}}') for m in ("model", "site_independent") for s in (depth, n)),
                *(("model", f'{{"samples": {s}, "task": "calibration"}}') for s in PROTEIN["evaluate"]["calibration"]["samples"])}
    assert expected <= set(rows)
    # one procedure was saved (no replicates): the overall ρ is its ensemble's, and the k = members row is the same ensemble
    overall = rows[("model", "{}")]
    assert overall["replicates"] == 1 and overall["members"] == members
    assert overall["spearman"] == rows[("model", '{"seed": 0}')]["spearman"] == rows[("model", f'{{"members": {members}}}')]["spearman"]
    # the headline scores with the ELBO, the params' default; the importance-weighted bound's row is beside it
    assert evaluate.bound == "elbo"
    by_bound = {bound: rows[("model", json.dumps({"bound": bound}))] for bound in BOUNDS}
    assert by_bound["elbo"]["spearman"] == overall["spearman"] != by_bound["iwae"]["spearman"]
    assert assert_scores_are_the_members_mean_elbo(paths, prepared, evaluate) == 3
    assert "## Which bound scores a mutant" in paths.report.read_text()
    # the full-depth point is the headline ensemble's first depth.members members, scored the same way
    assert rows[("model", f'{{"sequences": {n}}}')]["spearman"] == rows[("model", '{"members": 1}')]["spearman"]
    assert rows[("site_independent", f'{{"sequences": {n}}}')]["spearman"] == rows[("site_independent", "{}")]["spearman"]
    assert rows[("site_independent", f'{{"sequences": {depth}}}')]["neff"] < prepared.neff
    bounds = [rows[("model", f'{{"members": {k}}}')]["val_elbo_bound"] for k in range(1, members + 1)]
    assert all(b < 0 for b in bounds)
    calibration = [rows[("model", f'{{"samples": {s}, "task": "calibration"}}')] for s in PROTEIN["evaluate"]["calibration"]["samples"]]
    assert calibration[1]["se_stated"] < calibration[0]["se_stated"]  # 16 samples against 4
    sweep = [m for (method, c), m in rows.items() if method == "model" and '"temperature"' in c]
    g = PROTEIN["evaluate"]["generation"]
    assert len(sweep) == len(g["temperatures"]) * len(g["latent_scales"])
    assert all(0 < m["identity_nearest"] <= 1 and 0 <= m["gap_fraction"] < 1 and m["n"] == g["sequences"] for m in sweep)
    report = paths.report.read_text()
    for figure in ("effects", "training", "latent", "generation", "depth_and_seeds", "calibration"):
        assert (paths.figures / f"{figure}.png").stat().st_size > 1000
        assert f"figures/{figure}.png" in report
    latent = (paths.plots / "latent.csv").read_text().splitlines()
    assert latent[0] == "id,pc1,pc2,cluster,species,weight,sequence"
    assert len(latent) == prepared.alignment.shape[0] + 1 and latent[1].startswith("BLAT_ECOLX/24-286,")
    assert ",ECOLX," in latent[1]
    effects = (paths.plots / "effects.csv").read_text().splitlines()
    assert effects[0] == "mutant,dms,model,model_se,site_independent" and len(effects) == 4808  # 4807 scorable mutants
    assert len((paths.plots / "depth.csv").read_text().splitlines()) == 3  # header, the subsample, the full alignment
    assert_report_follows_references_and_config(report, printed, PROTEIN["train"])
    assert_interpolation_decodes_the_path(paths, prepared, report)
    before = paths.metrics.stat().st_mtime_ns
    bad = {**PROTEIN["evaluate"], "interpolation": {"start": "BLAT_ECOLX/24-286", "end": "up|P00000|NOBODY/1-2"}}
    with pytest.raises(UserError) as error:
        STAGE["evaluate"](EvaluateParams.model_validate(bad), paths)
    assert "protein.evaluate.interpolation.end" in str(error.value) and "NOBODY" in str(error.value)
    assert paths.metrics.stat().st_mtime_ns == before  # it stopped before any scoring or output


def assert_scores_are_the_members_mean_elbo(paths: DomainPaths, prepared, evaluate: EvaluateParams) -> int:
    """The first mutants' scores in plots/effects.csv, recomputed from the saved members: per member the mean ELBO
    over the params' draws, mutant minus wild type, then the mean over members."""
    mutations = read_mutations(paths.raw / evaluate.mutations, prepared.alignment.focus, evaluate.mutant_column,
                               evaluate.score_column)
    codes = np.concatenate([encode(prepared.alignment.focus.sequence)[None], mutations.codes[:3]])
    per_member = []
    for model in load_family(paths.model).models:
        elbo = sequence_draws(model, codes, evaluate.samples, evaluate.seed).elbo.mean(1)
        per_member.append(elbo[1:] - elbo[0])
    with (paths.plots / "effects.csv").open() as f:
        written = [row for _, row in zip(range(3), csv.DictReader(f))]
    assert [row["mutant"] for row in written] == mutations.mutants[:3]
    assert np.allclose([float(row["model"]) for row in written], np.mean(per_member, axis=0), atol=1e-3)
    return len(written)


def assert_interpolation_decodes_the_path(paths: DomainPaths, prepared, report: str) -> None:
    """Evenly spaced steps between the two sequences' posterior means under member 0, each decoded to its most
    probable sequence; the identities recomputed here by hand: matched residues over the natural sequence's non-gap
    columns, and the nearest natural sequence's over the decoded one's."""
    path = PROTEIN["evaluate"]["interpolation"]
    with (paths.plots / "interpolation.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["t"]) for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert {(r["start"], r["end"]) for r in rows} == {(path["start"], path["end"])}
    a = prepared.alignment
    model = load_family(paths.model).first.model
    ends = [a.codes[a.ids.index(path[end])] for end in ("start", "end")]
    means = torch.from_numpy(latent_means(model, np.stack(ends)))
    for row in rows:
        t = float(row["t"])
        with torch.no_grad():
            logits = model.decode(((1 - t) * means[0] + t * means[1])[None])[0]  # [21, L]
        decoded = logits.argmax(0).numpy()
        assert row["sequence"] == "".join(ALPHABET[c] for c in decoded)
        for end, column in zip(ends, ("identity_start", "identity_end")):
            residues = end != GAP_CODE
            assert float(row[column]) == pytest.approx((decoded == end)[residues].mean(), abs=1e-4)
        shares = ((a.codes == decoded) & (decoded != GAP_CODE)).sum(1) / (decoded != GAP_CODE).sum()
        assert float(row["identity_nearest"]) == pytest.approx(shares.max(), abs=1e-4)
        assert shares[a.ids.index(row["nearest"])] == pytest.approx(shares.max(), abs=1e-12)
    assert "## Latent interpolation" in report and (paths.figures / "interpolation.png").stat().st_size > 1000


def assert_report_follows_references_and_config(report: str, metrics: dict, train: dict) -> None:
    """The report's targets are decided from the metrics, its published figures come from params.yaml,
    and its model description names the trained sizes."""
    references = load_references(DOMAIN)

    def measured(method: str, condition: dict, metric: str) -> float | None:
        return next((r["metrics"].get(metric) for r in metrics["results"] if r["method"] == method and r["condition"] == condition), None)

    for target in references.targets:
        value = measured(target.method, target.condition, target.metric)
        threshold = target.value if target.against is None else measured(target.against, target.condition, target.metric)
        if threshold is not None and target.against is not None:
            threshold = target.scale * threshold + target.offset
        verdict = "not measured" if value is None or threshold is None else ("met" if value >= threshold else "missed")
        row = next(line for line in report.splitlines() if line.startswith(f"| {target.name} |"))
        assert row.split(" | ")[6] == verdict, row
    for anchor in references.anchors:
        assert anchor.label in report and anchor.protocol in report and anchor.citation in report
    model = train["model"]
    assert (f"encoder {'-'.join(map(str, model['hidden']))}, latent {model['latent_dim']}, "
            f"decoder {'-'.join(map(str, model['decoder_hidden']))}, {model['act']}") in report
    assert f"a dictionary of {train['decoder']['dictionary']} patterns" in report
    epochs = train["trainer"]["epochs"]
    assert f"{train['members']} members, each trained for {epochs} (best " in report


@pytest.mark.slow
def test_the_stage_scripts_run_fetch_to_evaluate(cropped_alignment, blat_dms, repo_root, tmp_path):
    """`python -m latente.pipelines.protein <stage>` as DVC runs it, with the tiny params, in an empty folder."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copyfile(cropped_alignment, source / cropped_alignment.name)
    shutil.copyfile(blat_dms, source / sources.DMS)
    repo_params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params = {DOMAIN: {"fetch": {"source": {"kind": "local", "location": str(source),
                                            "files": [cropped_alignment.name, sources.DMS]}}, **PROTEIN},
              "references": {DOMAIN: repo_params["references"][DOMAIN]}}
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if k != "LATENTE_MIRROR"} | {"OMP_NUM_THREADS": "1"}
    for stage in STAGE:
        done = subprocess.run([sys.executable, "-m", f"latente.pipelines.{DOMAIN}", stage], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (stage, done.stderr)
    paths = DomainPaths(DOMAIN, root=work)
    index = json.loads((paths.model / "ensemble.json").read_text())
    replicates = PROTEIN["train"]["replicates"]
    assert index["replicates"] == {str(s): f"seeds/{s}" for s in range(1, replicates)}
    config = json.loads((paths.model / "members" / "0" / "config.json").read_text())
    assert config["model"]["input_size"] == [253] and config["model"]["in_channels"] == 21
    assert config["info"]["fit"]["epochs_run"] == PROTEIN["train"]["trainer"]["epochs"]
    seeds = [json.loads((paths.model / "seeds" / str(s) / "members" / str(k) / "config.json").read_text())["info"]["seed"]
             for s in range(1, replicates) for k in range(PROTEIN["train"]["members"])]
    assert seeds == [s + 1000 * k for s in range(1, replicates) for k in range(PROTEIN["train"]["members"])]
    metrics = json.loads(paths.metrics.read_text())
    overall = next(r["metrics"] for r in metrics["results"] if r["method"] == "model" and r["condition"] == {})
    per_seed = [r["metrics"]["spearman"] for r in metrics["results"] if r["method"] == "model" and set(r["condition"]) == {"seed"}]
    assert len(per_seed) == replicates and abs(overall["spearman"] - sum(per_seed) / replicates) < 1e-12
    assert_report_follows_references_and_config(paths.report.read_text(), json.loads(paths.metrics.read_text()),
                                                PROTEIN["train"])
