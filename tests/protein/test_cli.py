"""`latente protein score | evaluate | sample` on real files, and every bad-input case."""
from __future__ import annotations

import json

import yaml

from latente.domains.protein.data import ALPHABET
from tests.conftest import assert_user_error
from tests.tiny import PROTEIN


def score_args(alignment, dms, model, *extra):
    return ["protein", "score", "--alignment", alignment, "--mutations", dms, "--model", model,
            "--score-column", "2500", "--samples", "8", *extra]


def test_score_prints_the_results_json(latente, cropped_alignment, blat_dms, tiny_model, tmp_path):
    out = tmp_path / "predictions.csv"
    result = latente(*score_args(cropped_alignment, blat_dms, tiny_model, "--json", "--out", out))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["domain"] == "protein"
    model = next(r for r in report["results"] if r["method"] == "model" and not r["condition"])
    base = next(r for r in report["results"] if r["method"] == "site_independent")
    assert model["metrics"]["n"] == base["metrics"]["n"] == 4807  # as DeepSequence's notebook (datasets/protein/SOURCE.md)
    assert model["metrics"]["skipped_outside_focus_columns"] == 190
    assert model["metrics"]["spearman"] > 0.3 and base["metrics"]["spearman"] > 0.3
    assert "190 outside focus columns" in result.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "mutant,score,model,model_se,site_independent" and len(lines) == 4808
    se = [float(line.split(",")[3]) for line in lines[1:]]
    assert all(0 < value < 50 for value in se)  # 8 draws of two members: a finite, positive Monte Carlo error
    assert model["metrics"]["members"] == PROTEIN["train"]["members"]
    again = latente(*score_args(cropped_alignment, blat_dms, tiny_model, "--out", out))
    assert_user_error(again, str(out), "already exists", "--force")
    assert len(out.read_text().splitlines()) == 4808  # untouched


def test_sample_writes_fasta(latente, tiny_model, tmp_path):
    out = tmp_path / "seqs.fasta"
    result = latente("protein", "sample", "--model", tiny_model, "-n", "20", "--out", out)
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    headers, sequences = lines[0::2], lines[1::2]
    assert len(headers) == 20 and all(h.startswith(">sample_") for h in headers)
    assert "temperature 1, latent scale 1" in headers[0]
    assert all(len(s) == 253 and set(s) <= set(ALPHABET) for s in sequences)
    # latent scale 0 and a near-zero temperature: every sequence of one member is (all but near-tied columns of)
    # that member's mode, while prior samples differ in many columns
    cold = tmp_path / "cold.fasta"
    result = latente("protein", "sample", "--model", tiny_model, "-n", "6", "--out", cold, "--temperature", "0.05",
                     "--latent-scale", "0")
    assert result.returncode == 0, result.stderr
    drawn = cold.read_text().splitlines()[1::2]
    members = PROTEIN["train"]["members"]

    def identity(a: str, b: str) -> float:
        return sum(x == y for x, y in zip(a, b)) / len(a)

    cold_identity, prior_identity = identity(drawn[0], drawn[members]), identity(sequences[0], sequences[members])
    assert cold_identity > 0.85 and cold_identity > prior_identity + 0.2, (cold_identity, prior_identity)


def test_evaluate_trains_then_scores(latente, cropped_alignment, blat_dms, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"protein": {"train": PROTEIN["train"]}}))
    model_out = tmp_path / "trained"
    result = latente("protein", "evaluate", "--alignment", cropped_alignment, "--mutations", blat_dms,
                     "--score-column", "2500", "--params", params, "--epochs", "1", "--members", "1", "--samples", "4",
                     "--model-out", model_out, "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["results"]
    train = next(r for r in rows if r["condition"] == {"task": "train"})
    assert train["metrics"]["epochs"] == 1 and train["metrics"]["members"] == 1 and train["metrics"]["sequences"] > 1000
    assert next(r for r in rows if r["method"] == "model" and not r["condition"])["metrics"]["n"] == 4807
    assert json.loads((model_out / "ensemble.json").read_text())["members"] == ["members/0"]
    assert (model_out / "members" / "0" / "config.json").is_file() and (model_out / "members" / "0" / "model.safetensors").is_file()
    # the folder scores as written
    scored = latente(*score_args(cropped_alignment, blat_dms, model_out, "--json"))
    assert scored.returncode == 0, scored.stderr


def test_bad_alignment(latente, tiny_model, blat_dms, tmp_path):
    path = tmp_path / "bad.a2m"
    path.write_text(">WT/1-5\nKLVAG\n>s1\nKLVAGG\n")
    assert_user_error(latente(*score_args(path, blat_dms, tiny_model)), str(path), "ragged alignment", "s1")


def test_missing_score_column(latente, cropped_alignment, tiny_model, tmp_path):
    missing = tmp_path / "missing_column.csv"
    missing.write_text("mutant,fitness\nH24A,0.1\n")
    result = latente(*score_args(cropped_alignment, missing, tiny_model))
    assert_user_error(result, str(missing), "score column '2500' is missing", "--score-column")


def test_wild_type_mismatches_are_counted_and_reported(latente, cropped_alignment, tiny_model, tmp_path):
    # the focus has V at 29 and K at 30: A29V and L30R disagree with it
    dms = tmp_path / "dms.csv"
    dms.write_text("mutant,2500\nV29A,0.1\nV29D,-0.5\nK30R,0.0\nK30E,-0.2\nA29V,0.3\nL30R,0.2\nH24A,0.1\n")
    result = latente(*score_args(cropped_alignment, dms, tiny_model, "--json"))
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)["results"][0]["metrics"]
    assert model["n"] == 4
    assert model["skipped_wild_type_mismatch"] == 2 and model["skipped_outside_focus_columns"] == 1
    assert "2 wild type mismatch (e.g. A29V)" in result.stderr
