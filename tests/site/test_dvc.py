"""The publish stage under DVC: comparing with the previous committed run, offline `dvc plots show`, and the flat
per-domain summary that `dvc metrics diff` reads."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from latente.shared.results import Results
from latente.site.build import format_number
from latente.site.readme import BEGIN as README_BEGIN, END as README_END

PUBLISH_STAGE = {
    "cmd": "python -m latente.pipelines.publish",
    "deps": ["reports/ecg/metrics.json", "reports/ecg/report.md", "reports/ecg/figures", "reports/ecg/plots"],
    "params": ["publish", "references"],
    "outs": ["reports/site"],
    "metrics": ["reports/summary.json"],
}


def run(cmd: list[str], cwd, env) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.mark.slow  # `dvc repro` and `dvc exp run` in a temp repo
def test_compare_page_and_dvc_commands_against_the_previous_committed_run(copy_reports, edit_metrics, tmp_path, subprocess_env,
                                                                        open_page, screenshots):
    root = copy_reports(tmp_path / "repo", ("ecg",))
    (root / ".gitignore").write_text("/reports/\n")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"publish": PUBLISH_STAGE}}))
    (root / "README.md").write_text(f"# latente\n\n{README_BEGIN}\n{README_END}\n")
    env = subprocess_env
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        run(cmd, root, env)
    run(["dvc", "repro", "publish"], root, env)
    first = (root / "reports/site/compare.html").read_text()
    assert "| ECG compression |" in (root / "README.md").read_text()  # publish wrote the README's results block
    assert "No previous committed run to compare with." in first
    run(["git", "add", "dvc.lock"], root, env)
    run(["git", "commit", "-qm", "first run"], root, env)

    # a new evaluation: the model's PRD at operating point A changes
    metrics = root / "reports/ecg/metrics.json"
    old = next(r["metrics"]["prd"] for r in json.loads(metrics.read_text())["results"] if r["method"] == "model" and r["condition"] == {"operating_point": "A"})
    new = old + 1.25

    def change(data):
        next(r for r in data["results"] if r["method"] == "model" and r["condition"] == {"operating_point": "A"})["metrics"]["prd"] = new

    edit_metrics(metrics, change)
    run(["dvc", "exp", "run", "publish"], root, env)
    for lang, page in (("en", "compare.html"), ("pt-BR", "compare.pt-BR.html")):
        html = (root / "reports/site" / page).read_text()
        row = html[html.index("<code>ecg.model/prd/operating_point=A</code>"):]
        row = row[:row.index("</tr>")]
        assert f"<td>{format_number(old, lang)}</td><td>{format_number(new, lang)}</td><td>+{format_number(1.25, lang)}</td>" in row
        assert f"| ecg.model/prd/operating_point=A | {format_number(old, lang)} | {format_number(new, lang)} |" in html  # to paste
    page, log = open_page((root / "reports/site/compare.pt-BR.html").as_uri())
    assert "Execução anterior: commit" in page.inner_text("main") and "“first run”" in page.inner_text("main")
    page.screenshot(path=str(screenshots / "compare-with-previous.pt-BR.png"), full_page=True)
    log.assert_clean()

    diff = json.loads(run(["dvc", "metrics", "diff", "--targets", "reports/summary.json", "--json"], root, env).stdout)
    assert diff["reports/summary.json"]["ecg.model/prd/operating_point=A"] == {"old": old, "new": new, "diff": new - old}
    shown = json.loads(run(["dvc", "exp", "show", "--json"], root, env).stdout)
    baseline = next(r for r in shown if r["rev"] != "workspace")
    experiment = baseline["experiments"][0]["revs"][0]
    prd = lambda rev: rev["data"]["metrics"]["reports/summary.json"]["data"]["ecg"]["model/prd/operating_point=A"]  # noqa: E731
    assert (prd(baseline), prd(experiment)) == (old, new)


def test_dvc_plots_show_renders_offline_with_the_vendored_template(tiny_reports, tmp_path, subprocess_env, repo_root, open_page,
                                                                  screenshots):
    root = tmp_path / "repo"
    shutil.copytree(tiny_reports / "reports/ecg/plots", root / "reports/ecg/plots")
    shutil.copytree(repo_root / "vendor", root / "vendor")
    run(["git", "init", "-q"], root, subprocess_env)
    run(["dvc", "init", "-q"], root, subprocess_env)
    shutil.copyfile(repo_root / ".dvc/config", root / ".dvc/config")  # plots.html_template = ../vendor/vega/offline.html
    (root / "dvc.yaml").write_text(yaml.safe_dump({"plots": [
        {"reports/ecg/plots/rate_distortion.csv": {"x": "cr", "y": "prd", "template": "scatter"}}]}))
    run(["dvc", "plots", "show", "-o", "plots_html"], root, subprocess_env)
    html = (root / "plots_html/index.html").read_text()
    assert "jsdelivr" not in html and '<script src="http' not in html
    page, log = open_page((root / "plots_html/index.html").as_uri())
    page.wait_for_selector(".vega-embed svg, .vega-embed canvas")
    assert page.locator(".vega-embed").count() == 1
    assert page.evaluate("() => typeof vega") == "object"
    page.screenshot(path=str(screenshots / "dvc-plots-show.png"))
    log.assert_clean()


def test_dvc_metrics_diff_reads_the_flat_summary_beside_metrics_json(tmp_path, subprocess_env):
    """What an evaluate stage writes: `dvc metrics diff` compares its numbers key by key (not the rows of metrics.json)."""
    root = tmp_path / "repo"
    root.mkdir()
    results = Results("speech", "test", ["theo"])
    results.add("model", {"accuracy": 0.75})
    results.add("model", {"accuracy": 0.5}, snr_db=10.0)
    results.write(root / "reports/speech/metrics.json")
    (root / "dvc.yaml").write_text(yaml.safe_dump({"metrics": ["reports/speech/summary.json"]}))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "base"]):
        run(cmd, root, subprocess_env)
    results.rows[1]["metrics"]["accuracy"] = 0.625
    results.write(root / "reports/speech/metrics.json")
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], root, subprocess_env).stdout)
    assert diff == {"reports/speech/summary.json": {"model/accuracy/snr_db=10.0": {"old": 0.5, "new": 0.625, "diff": 0.125}}}
