"""Every bad `latente protein` command line of issue 16 (and its neighbours): one `error:` line, exit 2,
no traceback, no partial or clobbered file (tests/bad_input.py). Numbers are checked while the
command line is parsed, paths before the model is loaded, the alignment weighed or a VAE trained."""
from __future__ import annotations

import pytest
import yaml

from bad_input import Env, case, env_stack, replay  # noqa: F401  (env_stack is a fixture)
from tests.tiny import PROTEIN

S = "protein score --alignment {alignment} --mutations {dms} --model {model} --score-column 2500"
EV = "protein evaluate --alignment {alignment} --mutations {dms} --score-column 2500 --epochs 1 --params {params}"
SA = "protein sample --model {model} --out {tmp}/s.fasta"

CASES = [
    # --theta: an identity threshold, strictly between 0 and 1
    case("theta_negative", S + " --theta -5", "--theta", "-5 is out of range", "above 0 and below 1"),
    case("theta_nan", S + " --theta nan", "--theta", "nan is not a finite number"),
    case("theta_inf", S + " --theta inf", "--theta", "inf is not a finite number"),
    case("theta_0", S + " --theta 0", "--theta", "0 is out of range"),
    # --bound: one of the two bounds by name
    case("bound_unknown", S + " --bound elbow", "--bound", "'elbow' is not one of 'elbo', 'iwae'"),
    case("theta_1", S + " --theta 1", "--theta", "1 is out of range"),
    case("theta_text", S + " --theta abc", "--theta", "'abc' is not a number"),
    case("evaluate_theta_nan", EV + " --theta nan", "--theta", "nan is not a finite number"),
    # --samples: bounded, so a typo does not run silently for hours
    case("samples_0", S + " --samples 0", "--samples", "0 is out of range", "from 1 to 10000"),
    case("samples_huge", S + " --samples 100000000", "--samples", "100000000 is out of range"),
    case("samples_negative", S + " --samples -1", "--samples", "-1 is out of range"),
    case("samples_text", S + " --samples many", "--samples", "'many' is not a whole number"),
    case("evaluate_samples_0", EV + " --samples 0", "--samples", "0 is out of range"),
    case("seed_negative", S + " --seed -1", "--seed", "-1 is out of range"),
    # score's inputs: a folder where a file is expected
    case("mutations_is_a_folder", S.replace("{dms}", "."), ".: is a folder, not a CSV file", "--mutations"),
    case("mutations_missing", S.replace("{dms}", "{missing}"), "{missing}", "CSV file not found"),
    case("alignment_is_a_folder", S.replace("{alignment}", "{dir}"), "{dir}", "is a folder, not an alignment file"),
    case("alignment_missing", S.replace("{alignment}", "{missing}"), "{missing}", "alignment file not found"),
    case("alignment_not_given", "protein score --mutations {dms} --model {model}", "--alignment", "required"),
    # score --out
    case("out_is_a_folder", S + " --out {dir}", "{dir}", "is a folder"),
    case("out_parent_is_a_file", S + " --out {file}/p.csv", "{file}", "is a file, not a folder"),
    case("out_in_read_only_folder", S + " --out {ro}/p.csv", "{ro}", "not writable"),
    case("out_exists", S + " --out {existing}", "{existing}", "already exists", "--force"),
    case("no_force_is_gone", S + " --out {tmp}/p.csv --no-force", "--no-force", "no such option"),
    # --model
    case("model_is_a_file", S.replace("{model}", "{file}"), "{file}", "is a file, not a model folder"),
    case("model_missing", S.replace("{model}", "{missing}"), "{missing}", "model folder not found"),
    case("default_model_nowhere", "protein score --alignment {alignment} --mutations {dms}", "--model", "models/protein",
         "neither in the current folder", outside=True),
    # evaluate: --params, --epochs, --model-out
    case("params_is_a_folder", EV.replace("{params}", "."), ".: is a folder, not a params file", "--params"),
    case("params_missing", EV.replace("{params}", "{missing}"), "{missing}", "params file not found"),
    case("params_default_nowhere", EV.replace(" --params {params}", ""), "--params", "params.yaml", "neither in the current folder",
         outside=True),
    case("epochs_0", EV + " --epochs 0", "--epochs", "0 is out of range", "from 1 to 100000"),
    case("epochs_huge", EV + " --epochs 1000000000", "--epochs", "1000000000 is out of range"),
    case("epochs_text", EV + " --epochs ten", "--epochs", "'ten' is not a whole number"),
    case("model_out_is_a_file", EV + " --model-out {file}", "{file}", "is a file, not a folder"),
    case("model_out_exists", EV + " --model-out {dir}", "{dir}", "already exists", "--force"),
    case("model_out_in_read_only_folder", EV + " --model-out {ro}/m", "{ro}", "not writable"),
    case("model_out_parent_is_a_file", EV + " --model-out {file}/m", "{file}", "is a file, not a folder"),
    # sample: -n bounded (it once tried to allocate 40 GB)
    case("n_0", SA + " -n 0", "-n", "0 is out of range", "from 1 to 10000"),
    case("n_huge", SA + " -n 100000000", "-n", "100000000 is out of range", "another --seed"),
    case("n_negative", SA + " -n -5", "-n", "-5 is out of range"),
    case("n_text", SA + " -n lots", "-n", "'lots' is not a whole number"),
    case("sample_out_exists", "protein sample --model {model} --out {existing}", "{existing}", "already exists"),
    case("sample_out_is_a_folder", "protein sample --model {model} --out {dir}", "{dir}", "is a folder"),
    case("sample_out_not_given", "protein sample --model {model}", "--out", "required"),
    case("sample_seed_negative", SA + " --seed -2", "--seed", "-2 is out of range"),
    case("sample_model_is_a_file", "protein sample --model {file} --out {tmp}/s.fasta", "{file}", "is a file, not a model folder"),
    # sample's knobs: a temperature divides logits, a latent scale multiplies z
    case("temperature_0", SA + " --temperature 0", "--temperature", "0 is out of range"),
    case("temperature_negative", SA + " --temperature -1", "--temperature", "-1 is out of range"),
    case("temperature_nan", SA + " --temperature nan", "--temperature", "nan is not a finite number"),
    case("temperature_huge", SA + " --temperature 1000", "--temperature", "1000 is out of range"),
    case("latent_scale_negative", SA + " --latent-scale -0.5", "--latent-scale", "-0.5 is out of range"),
    case("latent_scale_inf", SA + " --latent-scale inf", "--latent-scale", "inf is not a finite number"),
    case("latent_scale_text", SA + " --latent-scale wide", "--latent-scale", "'wide' is not a number"),
    # evaluate --members: each member is a whole training
    case("members_0", EV + " --members 0", "--members", "0 is out of range", "from 1 to 50"),
    case("members_huge", EV + " --members 1000", "--members", "1000 is out of range"),
    # an ensemble folder whose index is broken
    case("ensemble_index_not_json", S.replace("{model}", "{broken_ensemble}"), "ensemble.json", "not valid JSON"),
    case("ensemble_member_missing", S.replace("{model}", "{hollow_ensemble}"), "members/7", "not found"),
    # params files that do not parse or do not validate: one line, naming the file or key
    case("params_broken_yaml", EV.replace("{params}", "{broken_yaml}"), "{broken_yaml}", "not valid YAML"),
    case("params_members_text", EV.replace("{params}", "{members_text}"), "protein.train.members", "valid integer"),
    case("params_unknown_key", EV.replace("{params}", "{unknown_key}"), "protein.train.memberz", "unknown key"),
    # DMS tables that hold nothing to score
    case("dms_header_only", S.replace("{dms}", "{header_only}"), "{header_only}", "has a header but no mutant rows"),
]


@pytest.fixture
def env(tmp_path, env_stack, cropped_alignment, blat_dms, tiny_model):  # noqa: F811
    (tmp_path / "params.yaml").write_text("protein: {}\n")
    broken = tmp_path / "broken_ensemble"
    broken.mkdir()
    (broken / "ensemble.json").write_text("{members: [")
    hollow = tmp_path / "hollow_ensemble"
    hollow.mkdir()
    (hollow / "ensemble.json").write_text('{"seed": 0, "members": ["members/7"]}')
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("protein:\n  train: {members: [1,\n    2\n  epochs: 3\n")
    members_text = tmp_path / "members_text.yaml"
    members_text.write_text(yaml.safe_dump({"protein": {"train": {**PROTEIN["train"], "members": "five"}}}))
    unknown_key = tmp_path / "unknown_key.yaml"
    unknown_key.write_text(yaml.safe_dump({"protein": {"train": {**PROTEIN["train"], "memberz": 3}}}))
    header_only = tmp_path / "header_only.csv"
    header_only.write_text("mutant,2500\n")
    return Env(tmp_path, env_stack, alignment=cropped_alignment, dms=blat_dms, model=tiny_model, params=tmp_path / "params.yaml",
               broken_ensemble=broken, hollow_ensemble=hollow, header_only=header_only, broken_yaml=broken_yaml,
               members_text=members_text, unknown_key=unknown_key)


@pytest.mark.parametrize("bad", CASES)
def test_bad_input(latente, bad, env, monkeypatch):
    replay(latente, bad, env, monkeypatch)


@pytest.mark.parametrize("bad", [c for c in CASES if c.id in ("theta_nan", "mutations_is_a_folder", "n_huge")])
def test_bad_input_in_a_real_process(latente_subprocess, bad, env):
    replay(latente_subprocess, bad, env)
