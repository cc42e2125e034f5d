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


def test_truncation_by_hand(tmp_path):
    """A 44-byte canonical WAV header whose data chunk declares 100 bytes, with 40, 100 and 101 present,
    and an odd-sized chunk before `data` (RIFF pads it to an even size)."""
    from latente.domains.speech.cli import truncation

    def wav(chunks: bytes, audio: bytes, declared: int) -> bytes:
        body = b"WAVE" + chunks + b"data" + declared.to_bytes(4, "little") + audio
        return b"RIFF" + len(body).to_bytes(4, "little") + body

    fmt = b"fmt " + (16).to_bytes(4, "little") + bytes(16)
    for held, expected in ((40, "holds 40 (40 %)"), (100, None), (101, None)):
        path = tmp_path / f"{held}.wav"
        path.write_bytes(wav(fmt, bytes(held), 100))
        found = truncation(path)
        assert (found is None) if expected is None else ("declares 100 bytes of audio" in found and expected in found)
    odd = tmp_path / "odd.wav"
    odd.write_bytes(wav(fmt + b"LIST" + (3).to_bytes(4, "little") + b"abc\x00", bytes(10), 20))
    assert "declares 20 bytes of audio but the file holds 10" in truncation(odd)
    other = tmp_path / "other.flac"
    other.write_bytes(b"fLaC" + bytes(40))
    assert truncation(other) is None
