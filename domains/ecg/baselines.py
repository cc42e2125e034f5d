"""The classical baseline: a wavelet-threshold codec (bior4.4, 4 levels).

The coefficients go through a dead-zone uniform quantiser; the approximation band is
first-differenced; zero runs and values are written as zig-zag varints and the bytes are
compressed with LZMA. The file is a real byte string, so CR counts every byte of it.
"""
from __future__ import annotations

import lzma
import struct

import numpy as np
import pywt

WAVELET = "bior4.4"
LEVELS = 4
_HEADER = struct.Struct("<IfiB")


def _zigzag(v: np.ndarray) -> np.ndarray:
    return np.where(v >= 0, 2 * v, -2 * v - 1).astype(np.uint64)


def _unzigzag(u: np.ndarray) -> np.ndarray:
    u = u.astype(np.int64)
    return np.where(u % 2 == 0, u // 2, -(u + 1) // 2)


def _varints(values: np.ndarray) -> bytes:
    out = bytearray()
    for v in values.tolist():
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
    return bytes(out)


def _read_varints(data: bytes) -> np.ndarray:
    values, v, shift = [], 0, 0
    for byte in data:
        v |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
        else:
            values.append(v)
            v, shift = 0, 0
    return np.array(values, dtype=np.uint64)


def _run_length(q: np.ndarray) -> np.ndarray:
    """Each non-zero value is preceded by the count of zeros before it; a final zero run ends it."""
    nz = np.flatnonzero(q)
    runs = np.diff(np.concatenate([[-1], nz])) - 1
    pairs = np.empty(2 * len(nz) + 1, dtype=np.uint64)
    pairs[0:-1:2] = runs.astype(np.uint64)
    pairs[1:-1:2] = _zigzag(q[nz])
    pairs[-1] = len(q) - (nz[-1] + 1 if len(nz) else 0)
    return pairs


def _undo_run_length(pairs: np.ndarray, n: int) -> np.ndarray:
    q = np.zeros(n, dtype=np.int64)
    pos = 0
    for i in range(0, len(pairs) - 1, 2):
        pos += int(pairs[i])
        q[pos] = _unzigzag(pairs[i + 1 : i + 2])[0]
        pos += 1
    return q


def encode(adc: np.ndarray, baseline: int, step: float) -> bytes:
    coeffs = pywt.wavedec(np.asarray(adc, dtype=np.float64) - baseline, WAVELET, level=LEVELS, mode="periodization")
    flat = np.concatenate(coeffs)
    q = (np.sign(flat) * np.floor(np.abs(flat) / step)).astype(np.int64)
    n_approx = len(coeffs[0])
    q[:n_approx] = np.diff(q[:n_approx], prepend=0)
    payload = lzma.compress(_varints(_run_length(q)), preset=9 | lzma.PRESET_EXTREME)
    return _HEADER.pack(len(adc), step, baseline, LEVELS) + payload


def decode(data: bytes) -> np.ndarray:
    n, step, baseline, levels = _HEADER.unpack(data[: _HEADER.size])
    template = pywt.wavedec(np.zeros(n), WAVELET, level=levels, mode="periodization")
    sizes = [len(c) for c in template]
    q = _undo_run_length(_read_varints(lzma.decompress(data[_HEADER.size :])), sum(sizes))
    q[: sizes[0]] = np.cumsum(q[: sizes[0]])
    flat = np.where(q != 0, (q + 0.5 * np.sign(q)) * step, 0.0)
    coeffs = np.split(flat, np.cumsum(sizes)[:-1])
    signal = pywt.waverec(coeffs, WAVELET, mode="periodization")[:n]
    return np.rint(signal + baseline).astype(np.int64)


def step_for(measure, target: float, below: bool = False, iterations: int = 18) -> float:
    """Bisect the quantiser step in log space; `measure(step)` (CR or PRD) grows with it.

    Returns the smallest step whose measure reaches `target`, or with `below` the largest
    step whose measure stays under it.
    """
    lo, hi = np.log(0.01), np.log(5000.0)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        if measure(float(np.exp(mid))) >= target:
            hi = mid
        else:
            lo = mid
    return float(np.exp(lo if below else hi))
