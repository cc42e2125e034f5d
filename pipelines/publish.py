"""The `publish` DVC stage: `python -m latente.pipelines.publish` builds reports/site from every domain's reports.

It also rewrites the results block of README.md from the same reports. Its settings are the `publish` section of params.yaml; each domain's published anchors and
targets are read from `references.<domain>`. It also writes reports/summary.json, the
aggregate metrics of every domain under the flat keys of `latente.shared.results.flat_key`, so
that `dvc metrics diff --targets reports/summary.json` and `dvc exp show` can compare runs
(they cannot read the list of rows in reports/<domain>/metrics.json).
"""
from __future__ import annotations

import sys
from pathlib import Path

from latente.shared.errors import UserError, exit_on_user_error
from latente.shared.params import PARAMS_FILE, load_params, validate
from latente.site import PublishParams, build_site
from latente.site.readme import update_readme
from latente.site.runs import git_revision

README = Path("README.md")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        raise UserError("pipelines/publish.py", "takes no arguments", "its settings are the publish section of params.yaml")
    section = load_params(PARAMS_FILE).get("publish")
    if section is None:
        raise UserError(f"{PARAMS_FILE}: publish", "section is missing")
    views = build_site(validate(PublishParams, section, "publish"))
    revision = git_revision(Path("."))
    update_readme(README, views, f"{revision.commit}{' with uncommitted changes' if revision.dirty else ''}")


if __name__ == "__main__":
    main()
