"""Shared fixtures: the real-data mirror, a CLI runner, and a local HTTP mirror server."""
from __future__ import annotations

import contextlib
import functools
import http.server
import io
import os
import subprocess
import sys
import threading
import traceback
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The staged real datasets (`LATENTE_MIRROR`, else ../shared/datasets)."""
    root = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
    if not root.is_dir():
        pytest.fail(f"real data mirror not found at {root}: set LATENTE_MIRROR")
    return root


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
