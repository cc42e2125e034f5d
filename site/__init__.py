"""The published evaluation site (`dvc repro publish` → reports/site/).

Built only from report files (reports/<domain>/metrics.json, report.md, figures/, plots/)
and the `publish:` params; nothing here imports `domains/`.
"""
from latente.site.build import SITE, SUMMARY, build_site
from latente.site.params import PublishParams

__all__ = ["SITE", "SUMMARY", "PublishParams", "build_site"]
