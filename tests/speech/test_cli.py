"""`latente speech --help` stays fast: the command module imports no numerical library until a command runs."""
from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "torchaudio", "numpy", "sklearn", "soundfile", "matplotlib")


def test_cli_module_imports_nothing_heavy(tmp_path):
    probe = f"import sys, latente.domains.speech.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
