"""Shared fixtures: the real data (mirror or download cache), a CLI runner, a local HTTP server, Chromium."""
from __future__ import annotations

import contextlib
import functools
import http.server
import importlib
import io
import json
import os
import pkgutil
import shutil
import subprocess
import sys
import tempfile
import threading
import traceback
import typing
from pathlib import Path
from typing import Iterable

import pytest
import torch
from filelock import FileLock

from latente.shared.errors import UserError
from latente.shared.params import PARAMS_FILE, stage_params
from latente.shared.sources import MIRROR_ENV
from latente.shared.stage import DomainPaths

REPO = Path(__file__).resolve().parents[1]
STAGED_DATASETS = REPO.parent / "shared" / "datasets"  # where CI and the project's machines stage the data
FETCH_NOTE = ".latente-fetch.json"  # in each cached domain folder: the fetch params it came from
CHROMIUM_ENV = "LATENTE_CHROMIUM"

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def data_cache() -> Path:
    """`$XDG_CACHE_HOME/latente/datasets` (default `~/.cache/latente/datasets`): laid out like the mirror."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "latente" / "datasets"


def all_domains() -> list[str]:
    import latente.domains

    return sorted(m.name for m in pkgutil.iter_modules(latente.domains.__path__) if m.ispkg)


def fill_cache(cache: Path, params_file: Path, domains: Iterable[str]) -> Path:
    """Fetch each domain's raw data into `cache/<domain>` with the domain's own fetch stage.

    The fetch stage runs exactly as `dvc repro fetch@<domain>` would, with the `<domain>.fetch`
    sources of `params_file`, into a scratch repo root; its `data/raw/<domain>` then moves into the
    cache whole, so the cache is laid out like the mirror and a domain folder is never half there.
    A folder whose note holds the same fetch params is kept: a second call downloads nothing.
    Call with LATENTE_MIRROR unset, or the stages copy from the mirror instead of the sources.
    """
    cache.mkdir(parents=True, exist_ok=True)
    for domain in domains:
        stages = importlib.import_module(f"latente.pipelines.{domain}").STAGES
        fetch = {stage.name: stage for stage in stages}["fetch"].function()
        params = stage_params(domain, "fetch", typing.get_type_hints(fetch)["params"], params_file)
        note = params.model_dump_json()
        folder = cache / domain
        if (folder / FETCH_NOTE).is_file() and (folder / FETCH_NOTE).read_text() == note:
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f".{domain}.", dir=cache))
        try:
            paths = DomainPaths(domain, scratch)
            fetch(params, paths)
            (paths.raw / FETCH_NOTE).write_text(note)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(paths.raw, folder)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return cache


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real datasets, laid out as `<domain>/...`: `LATENTE_MIRROR`, else ../shared/datasets, else a download cache.

    On a machine with neither, the default public sources of params.yaml are fetched once by
    each domain's own fetch stage into `data_cache()` (under a lock, for pytest-xdist workers).
    """
    if os.environ.get(MIRROR_ENV):
        root = Path(os.environ[MIRROR_ENV]).expanduser()
        if not root.is_dir():
            pytest.fail(f"{MIRROR_ENV}={root}: not a folder")
        return root
    if STAGED_DATASETS.is_dir():
        return STAGED_DATASETS
    cache = data_cache()
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / ".lock")):
        try:
            return fill_cache(cache, REPO / PARAMS_FILE, all_domains())
        except UserError as err:
            pytest.fail(f"no data mirror ({MIRROR_ENV} unset, no {STAGED_DATASETS}) and the public sources failed: {err.line()}")


def run_latente(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `latente` entry point in a subprocess, exactly as a user would."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "latente.domains.cli", *map(str, args)],
        cwd=cwd or REPO, env=full_env, capture_output=True, text=True, timeout=600,
    )


def call_latente(*args: str) -> subprocess.CompletedProcess:
    """Run the same entry point (`latente.domains.cli.main`) in this process: no interpreter start-up.

    stdout/stderr are captured and the exit status is taken from SystemExit, so the result
    reads like a subprocess's; an unexpected exception becomes status 1 with its traceback.
    """
    from latente.domains.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["latente", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            except Exception:
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["latente", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture
def latente():
    """The `latente` command, run in-process (fast); see `latente_subprocess` for a real process."""
    return call_latente


@pytest.fixture
def latente_subprocess():
    return run_latente


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 2, exactly one `error: ...` line on stderr, no traceback, each fragment named."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_sealed_config(folder: Path, meta: dict) -> None:
    """Replace a model folder's config.json with `meta`, sealed as save_model seals it: a config that
    loads past the checksum, so the checks behind it (keys, domain fields) are what a test meets."""
    from latente.shared.models.store import CONFIG, CONFIG_DIGEST, config_digest

    (folder / CONFIG).write_text(json.dumps({**meta, CONFIG_DIGEST: config_digest(meta)}))


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium the browser tests drive: `LATENTE_CHROMIUM`, else `chromium` on PATH; none: they skip."""
    if os.environ.get(CHROMIUM_ENV):
        path = Path(os.environ[CHROMIUM_ENV]).expanduser()
        if not path.is_file():
            pytest.fail(f"{CHROMIUM_ENV}={path}: no such file")
        return path
    found = shutil.which("chromium")
    if found is None:
        pytest.skip(f"no Chromium for the browser tests: install it (`apt-get install chromium` on Debian/Ubuntu; "
                    f"`make test` does it when run as root) or set {CHROMIUM_ENV} to a Chromium executable")
    return Path(found)


@pytest.fixture
def serve_folder():
    """Serve folders over HTTP on 127.0.0.1 for the test's duration; returns base URLs."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http_mirror(mirror, serve_folder):
    """Serve the mirror on 127.0.0.1 to test the real download code; yields the base URL."""
    return serve_folder(mirror)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass
