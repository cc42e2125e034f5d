"""The README's results block: written from the reports and references, the rest of the README untouched."""
from __future__ import annotations

import pytest

from latente.shared.errors import UserError
from latente.shared.report import fmt, load_references
from latente.shared.results import Results
from latente.site import build_site
from latente.site.readme import BEGIN, END, update_readme


def test_block_states_the_reports_numbers_and_the_references(copy_reports, tmp_path, publish_params):
    root = copy_reports(tmp_path / "repo")
    views = build_site(publish_params, root)
    readme = root / "README.md"
    before, after = "# latente\n\nprose before\n\n", "\n\nprose after, unchanged\n"
    readme.write_text(f"{before}{BEGIN}\nstale table\n{END}{after}")
    update_readme(readme, views, "abc1234")
    text = readme.read_text()
    assert text.startswith(before) and text.endswith(after) and "stale table" not in text and "`abc1234`" in text
    for domain in ("ecg", "speech", "protein"):
        config = publish_params.domains[domain]
        h = config.headline
        results = Results.read(root / "reports" / domain / "metrics.json", domain)
        model = results.find("model", **h.condition)[h.metric]
        baseline = results.find(h.baseline, **h.condition)[h.metric]
        row = next(line for line in text.splitlines() if line.startswith(f"| {config.title.en} |"))
        assert f"| {fmt(model)} |" in row and f"| {h.baseline} {fmt(baseline)} |" in row, row
        anchor = next(a for a in load_references(domain, root / "params.yaml").anchors if h.metric in a.values)
        assert f"{anchor.label}: {fmt(anchor.values[h.metric])}" in row
        targets = load_references(domain, root / "params.yaml").targets
        assert f"of {len(targets)}" in row
    assert "| MRI denoising |" not in text  # no reports, no row


def test_a_readme_without_the_markers_is_an_error_and_left_alone(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no block here\n")
    with pytest.raises(UserError, match="no results block"):
        update_readme(readme, [], "abc1234")
    assert readme.read_text() == "# no block here\n"
