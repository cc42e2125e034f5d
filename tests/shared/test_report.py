"""The one target check and the references schema, against hand-computed margins."""
from __future__ import annotations

import math

import pydantic
import pytest
import yaml

from latente.shared.errors import UserError
from latente.shared.report import Target, check_target, load_references, target_table
from latente.shared.results import Results


@pytest.fixture
def results() -> Results:
    r = Results("demo", "here", ["a"])
    r.add("model", {"psnr": 33.0, "prd": 4.0, "f1": 0.95, "bad": math.nan}, noise=0.05)
    r.add("nlm", {"psnr": 31.0, "prd": 5.0}, noise=0.05)
    r.add("original", {"f1": 0.96})
    return r


def target(**fields) -> Target:
    return Target(name="t", source="a test", **fields)


@pytest.mark.parametrize("fields, measured, threshold, margin, verdict", [
    # fixed threshold, higher is better: 33.0 − 32.0 = +1.0
    ({"metric": "psnr", "better": "higher", "value": 32.0}, 33.0, 32.0, 1.0, "met"),
    # fixed threshold, lower is better: 2.73 − 4.0 = −1.27, a miss
    ({"metric": "prd", "better": "lower", "value": 2.73}, 4.0, 2.73, -1.27, "missed"),
    # NLM + 1.5 dB: 31.0 + 1.5 = 32.5, margin 0.5
    ({"metric": "psnr", "better": "higher", "against": "nlm", "offset": 1.5}, 33.0, 32.5, 0.5, "met"),
    # 0.8 × NLM's PRD: 4.0, margin 0 is a pass (≤)
    ({"metric": "prd", "better": "lower", "against": "nlm", "scale": 0.8}, 4.0, 4.0, 0.0, "met"),
    # the original's overall row, minus 0.005: 0.955; 0.95 misses by 0.005
    ({"metric": "f1", "better": "higher", "against": "original", "against_condition": {}, "offset": -0.005}, 0.95, 0.955, -0.005, "missed"),
])
def test_margin_and_verdict(results, fields, measured, threshold, margin, verdict):
    check = check_target(results, target(condition={"noise": 0.05}, **fields))
    assert check.measured == measured and check.threshold == pytest.approx(threshold)
    assert check.margin == pytest.approx(margin) and check.verdict == verdict and check.passed == (verdict == "met")


@pytest.mark.parametrize("fields", [
    {"metric": "psnr", "better": "higher", "value": 1.0, "condition": {"noise": 0.07}},   # no such row
    {"metric": "ssim", "better": "higher", "value": 0.5, "condition": {"noise": 0.05}},   # no such metric
    {"metric": "bad", "better": "higher", "value": 0.0, "condition": {"noise": 0.05}},    # NaN is not a number to pass
    {"metric": "psnr", "better": "higher", "against": "bm3d", "condition": {"noise": 0.05}},  # no baseline row
])
def test_anything_unmeasured_is_never_a_pass(results, fields):
    check = check_target(results, target(**fields))
    assert check.verdict == "not measured" and not check.passed and check.margin is None


@pytest.mark.parametrize("fields", [
    {"metric": "psnr", "better": "higher"},                                      # no threshold
    {"metric": "psnr", "better": "higher", "value": 1.0, "against": "nlm"},      # two thresholds
    {"metric": "psnr", "better": "higher", "value": 1.0, "against_condition": {}},
    {"metric": "psnr", "better": "more", "value": 1.0},
])
def test_an_ill_formed_target_is_rejected(fields):
    with pytest.raises(pydantic.ValidationError):
        target(**fields)


def test_table_states_goal_measured_threshold_margin_and_verdict(results):
    goal = target(metric="psnr", better="higher", against="nlm", offset=1.5, condition={"noise": 0.05})
    table = target_table([check_target(results, goal)])
    assert "| t | noise 0.05 | psnr ≥ nlm + 1.5 | 33.000 | 32.500 | 0.500 | met | a test |" in table


def test_references_are_read_and_a_missing_or_wrong_section_is_named(tmp_path):
    file = tmp_path / "params.yaml"
    file.write_text(yaml.safe_dump({"references": {"demo": {"targets": [
        {"name": "t", "metric": "f1", "better": "higher", "value": 0.8, "source": "s"}]}}}))
    assert load_references("demo", file).targets[0].value == 0.8
    with pytest.raises(UserError, match="references.other"):
        load_references("other", file)
    file.write_text(yaml.safe_dump({"references": {"demo": {"targets": [{"name": "t", "metric": "f1", "better": "up", "value": 1, "source": "s"}]}}}))
    with pytest.raises(UserError, match=r"references\.demo\.targets\.0\.better"):
        load_references("demo", file)


def test_every_domain_section_of_the_repository_validates(repo_root):
    for domain in ("ecg", "mri", "speech", "protein", "anomaly"):
        references = load_references(domain, repo_root / "params.yaml")
        assert references.anchors and references.targets, domain
