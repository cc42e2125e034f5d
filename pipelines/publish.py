"""The `publish` DVC stage: `python -m latente.pipelines.publish` builds reports/site from every domain's reports.

It also writes reports/summary.json, the aggregate metrics of every domain as one flat DVC
metrics file, so that `dvc metrics diff --targets reports/summary.json` and `dvc exp show`
can compare runs (they cannot read the list of rows in reports/<domain>/metrics.json).
"""
from __future__ import annotations

import sys

from latente.shared.errors import UserError, exit_on_user_error
from latente.shared.params import PARAMS_FILE, load_params, validate
from latente.site import PublishParams, build_site


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        raise UserError("pipelines/publish.py", "takes no arguments", "its settings are the publish section of params.yaml")
    section = load_params(PARAMS_FILE).get("publish")
    if section is None:
        raise UserError(f"{PARAMS_FILE}: publish", "section is missing")
    build_site(validate(PublishParams, section, "publish"))


if __name__ == "__main__":
    main()
