"""Params validation, atomic outputs, user errors, results JSON and data sources."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import yaml

from conftest import all_domains, fill_cache
from latente.shared.errors import UserError, exit_on_user_error
from latente.shared.io import atomic_dir, atomic_path, write_json
from latente.shared.report import condition_text
from latente.shared.models import AutoencoderConfig
from latente.shared.params import StrictParams, stage_params
from latente.shared.results import Results
from latente.shared.sources import SourceParams, fetch_files
from latente.shared.params import TrainerConfig


class TrainSchema(StrictParams):
    model: AutoencoderConfig
    trainer: TrainerConfig


def write_params(path, text):
    path.write_text(text)
    return path


def test_params_typo_names_the_key(tmp_path):
    f = write_params(tmp_path / "params.yaml", "ecg:\n  train:\n    model: {name: conv_ae}\n    trainer: {epocs: 3}\n")
    with pytest.raises(UserError) as err:
        stage_params("ecg", "train", TrainSchema, f)
    assert err.value.line() == f"error: {f}: ecg.train.trainer.epocs: unknown key (misspelt?)"


def test_params_wrong_type_and_missing_section(tmp_path):
    f = write_params(tmp_path / "params.yaml", "ecg:\n  train:\n    model: {name: conv_ae}\n    trainer: {epochs: many}\n")
    with pytest.raises(UserError, match=r"ecg\.train\.trainer\.epochs: .*integer"):
        stage_params("ecg", "train", TrainSchema, f)
    with pytest.raises(UserError, match=r"ecg\.evaluate: section is missing"):
        stage_params("ecg", "evaluate", TrainSchema, f)


def test_params_valid(tmp_path):
    f = write_params(tmp_path / "params.yaml", "ecg:\n  train:\n    model: {name: conv_vae, beta: 0.5}\n    trainer: {epochs: 3}\n")
    p = stage_params("ecg", "train", TrainSchema, f)
    assert p.model.beta == 0.5 and p.trainer.epochs == 3 and p.trainer.batch_size == 64


def _trainer_sections(node, where=""):
    """Every mapping under a `trainer` key of a params tree, with its dotted place."""
    if isinstance(node, dict):
        for key, value in node.items():
            place = f"{where}.{key}".lstrip(".")
            if key == "trainer" and isinstance(value, dict):
                yield place, value
            yield from _trainer_sections(value, place)


def test_every_trainer_in_params_fixes_its_thread_count(repo_root):
    """torch's default thread count is the machine's core count, and a CPU model's floats depend on it (a
    different reduction order): a trainer that leaves threads unset gives another model for the same seed on
    another machine."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    trainers = dict(_trainer_sections(params))
    assert {place.split(".")[0] for place in trainers} == set(all_domains())

    def trained_with(place: str, section: dict) -> dict:
        """An ablation arm's `trainer` holds changes to its domain's own trainer, merged key by key (speech's `arm_settings`)."""
        return {**params[place.split(".")[0]]["train"]["trainer"], **section} if ".ablation." in place else section

    unset = [place for place, section in trainers.items() if not TrainerConfig.model_validate(trained_with(place, section)).threads]
    assert unset == []


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_refuses_existing_without_force(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(UserError, match="already exists"):
        with atomic_path(target, force=False):
            pass
    with atomic_path(target, force=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {})
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_atomic_dir_swaps_whole_folder(tmp_path):
    folder = tmp_path / "model"
    with atomic_dir(folder) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(folder) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in folder.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_dir_over_a_file_leaves_nothing_beside_it(tmp_path):
    # `--model-out FILE --force` where FILE is a file: the swap moves the file aside, then removes it
    target = tmp_path / "model"
    target.write_text("an old file")
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert target.is_dir() and (target / "a").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_condition_text():
    assert condition_text({}) == "overall"
    assert condition_text({"volume": "MR_Gd.nii.gz", "noise": 0.03}) == "volume MR_Gd.nii.gz, noise 0.03"


def test_user_error_prints_one_line_and_exits_2(capsys):
    @exit_on_user_error
    def main():
        raise UserError("rec/100.hea", "no lead named 'V9'", "leads: MLII, V5")

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: rec/100.hea: no lead named 'V9' — leads: MLII, V5\n"


def test_results_shape_follows_conventions(tmp_path):
    r = Results("ecg", "mirror", ["100", "208"])
    r.add("model", {"cr": 33.0, "prd": float("nan")}, operating_point="A")
    r.add("wavelet", {"cr": 33.0}, operating_point="A", record="100")
    write_json(tmp_path / "m.json", r.to_dict())
    data = json.loads((tmp_path / "m.json").read_text())
    assert data == {
        "domain": "ecg", "data": {"source": "mirror", "items": ["100", "208"], "n": 2},
        "results": [
            {"method": "model", "condition": {"operating_point": "A"}, "metrics": {"cr": 33.0, "prd": None}},
            {"method": "wavelet", "condition": {"operating_point": "A", "record": "100"}, "metrics": {"cr": 33.0}},
        ],
    }
    assert r.find("wavelet", operating_point="A", record="100") == {"cr": 33.0}


def test_results_write_flat_summary_beside_metrics_and_read_back(tmp_path):
    r = Results("speech", "mirror", ["theo"])
    r.add("model", {"accuracy": 0.75, "macro_f1": float("nan")})
    r.add("model", {"accuracy": 0.5}, snr_db=10.0)
    r.add("mfcc", {"accuracy": 0.625}, snr_db=10.0, speaker="theo")
    r.write(tmp_path / "reports" / "metrics.json")
    # hand-written: method/metric/condition, conditions as key=value joined by commas, the NaN (null) left out
    assert json.loads((tmp_path / "reports" / "summary.json").read_text()) == {
        "model/accuracy": 0.75, "model/accuracy/snr_db=10.0": 0.5, "mfcc/accuracy/snr_db=10.0,speaker=theo": 0.625}
    assert r.flat(skip_condition="speaker") == {"model/accuracy": 0.75, "model/accuracy/snr_db=10.0": 0.5}
    back = Results.read(tmp_path / "reports" / "metrics.json", "speech")
    assert back.to_dict() == r.to_dict() == json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert back.find("model", snr_db=10.0) == {"accuracy": 0.5}
    with pytest.raises(UserError, match=r"metrics.json: domain: is 'speech', expected 'ecg'"):
        Results.read(tmp_path / "reports" / "metrics.json", "ecg")


def test_fetch_prefers_the_mirror(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("LATENTE_MIRROR", str(mirror))
    source = SourceParams(kind="url", location="http://127.0.0.1:9/never", files=("records/100.hea",))
    origin = fetch_files("ecg", source, tmp_path)
    assert origin.startswith("mirror") and (tmp_path / "records" / "100.hea").read_bytes() == (mirror / "ecg/records/100.hea").read_bytes()


def test_fetch_over_http_with_checksums(tmp_path, mirror, http_mirror, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    good = hashlib.sha256((mirror / "ecg/records/100.hea").read_bytes()).hexdigest()
    source = SourceParams(kind="url", location=f"{http_mirror}/ecg", files=("records/100.hea",), sha256={"records/100.hea": good})
    assert fetch_files("ecg", source, tmp_path / "ok") == f"{http_mirror}/ecg"
    bad = SourceParams(kind="url", location=f"{http_mirror}/ecg", files=("records/100.hea",), sha256={"records/100.hea": "0" * 64})
    with pytest.raises(UserError, match="sha256 does not match"):
        fetch_files("ecg", bad, tmp_path / "bad")
    missing = SourceParams(kind="url", location=f"{http_mirror}/ecg", files=("records/999.hea",))
    with pytest.raises(UserError, match="download failed .* set LATENTE_MIRROR"):
        fetch_files("ecg", missing, tmp_path / "missing")
    assert not (tmp_path / "missing" / "records" / "999.hea").exists()


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_source_names_the_url_it_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    base = f"http://127.0.0.1:{closed_port()}/ecg"
    with pytest.raises(UserError) as err:
        fetch_files("ecg", SourceParams(kind="url", location=base, files=("records/100.hea",)), tmp_path / "raw")
    assert err.value.line().startswith(f"error: {base}/records/100.hea: download failed (")
    assert "LATENTE_MIRROR" in err.value.line()  # and says where else the data can come from


def test_fetch_stage_with_no_mirror_and_no_network_names_the_url(tmp_path, repo_root):
    """A stranger's machine: no LATENTE_MIRROR, the source unreachable; `dvc repro` would run exactly this."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    base = f"http://127.0.0.1:{closed_port()}/mitdb"
    params["ecg"]["fetch"]["source"].update(kind="url", location=base)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    env = {k: v for k, v in os.environ.items() if k != "LATENTE_MIRROR"}
    done = subprocess.run([sys.executable, "-m", "latente.pipelines.ecg", "fetch"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {base}/{params['ecg']['fetch']['source']['files'][0]}: download failed (")
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "data" / "raw" / "ecg").exists()


def test_without_a_mirror_the_test_data_are_fetched_once_into_the_cache(tmp_path, mirror, serve_folder, repo_root, monkeypatch):
    monkeypatch.delenv("LATENTE_MIRROR", raising=False)
    files = ["records/100.hea", "records/100.dat"]
    served = tmp_path / "served"
    for rel in files:
        (served / "ecg" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror / "ecg" / rel, served / "ecg" / rel)
    url = serve_folder(served)
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["ecg"]["fetch"]["source"] = {"kind": "url", "location": f"{url}/ecg", "files": list(files)}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))

    cache = fill_cache(tmp_path / "cache", tmp_path / "params.yaml", ["ecg"])
    for rel in files:  # laid out like the mirror
        assert (cache / "ecg" / rel).read_bytes() == (mirror / "ecg" / rel).read_bytes()
    stamps = {rel: (cache / "ecg" / rel).stat().st_mtime_ns for rel in files}

    shutil.rmtree(served / "ecg")  # the source is gone: the second call must not need it
    fill_cache(tmp_path / "cache", tmp_path / "params.yaml", ["ecg"])
    assert {rel: (cache / "ecg" / rel).stat().st_mtime_ns for rel in files} == stamps

    params["ecg"]["fetch"]["source"]["files"].append("records/100.atr")  # other sources: fetched anew
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    with pytest.raises(UserError, match=f"^error: {url}/ecg/records/100.hea: download failed"):
        fill_cache(tmp_path / "cache", tmp_path / "params.yaml", ["ecg"])
    assert {rel: (cache / "ecg" / rel).stat().st_mtime_ns for rel in files} == stamps  # the complete copy stays
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["ecg"]  # no scratch folder left


def test_fetch_without_any_source_says_how_to_set_the_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTE_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="has no 'ecg' folder — set LATENTE_MIRROR"):
        fetch_files("ecg", SourceParams(files=("a",)), tmp_path / "out")
    monkeypatch.delenv("LATENTE_MIRROR")
    with pytest.raises(UserError, match="local source folder not found"):
        fetch_files("ecg", SourceParams(kind="local", location=str(tmp_path / "nope"), files=("a",)), tmp_path / "out")


@pytest.mark.parametrize("domain", ["", *all_domains()])
def test_help_imports_neither_torch_nor_monai(domain, tmp_path):
    """`latente --help` and `latente <domain> --help` answer without the seconds torch and MONAI take to import."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "latente.domains.cli", *filter(None, [domain]), "--help"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "Usage" in done.stdout, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported  # the import log is read right
    assert imported & {"torch", "monai"} == set()


def test_cli_without_arguments_lists_domains(repo_root):
    result = subprocess.run([sys.executable, "-m", "latente.domains.cli", "--help"], capture_output=True, text=True, cwd=repo_root)
    assert result.returncode == 0 and "ecg" in result.stdout
