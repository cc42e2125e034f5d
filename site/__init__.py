"""The published evaluation site (`dvc repro publish` → reports/site/).

Built only from report files (reports/<domain>/metrics.json, report.md, figures/, plots/),
the `publish:` params, each domain's `references:` (anchors and targets) and the `sweeps:` in
params.yaml, with the trials of sweeps/<name>.json (the committed records) where a search has run;
nothing here imports `latente.domains` or `latente.pipelines`.
"""
from latente.site.build import SITE, SUMMARY, build_site
from latente.site.params import PublishParams

__all__ = ["SITE", "SUMMARY", "PublishParams", "build_site"]
