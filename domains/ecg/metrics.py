"""ECG compression metrics (CR, PRD on ADC − baseline, PRDN, SNR, QS) and R-peak preservation."""
from __future__ import annotations

import numpy as np
import wfdb.processing

MIT_BIH_BASELINE = 1024
BITS_PER_SAMPLE = 11  # MIT-BIH original resolution: the CR reference
RPEAK_TOLERANCE_S = 0.150


def compression_ratio(n_samples: int, n_bytes: int) -> float:
    """CR: every byte of the file against the original at 11 bits per sample."""
    return BITS_PER_SAMPLE * n_samples / (8 * n_bytes)


def prd(original: np.ndarray, decoded: np.ndarray, baseline: float = MIT_BIH_BASELINE) -> float:
    """Percent RMS difference against the signal minus the ADC baseline (1024 for MIT-BIH)."""
    x = np.asarray(original, dtype=np.float64)
    err = x - np.asarray(decoded, dtype=np.float64)
    return float(100.0 * np.sqrt(np.sum(err**2) / np.sum((x - baseline) ** 2)))


def prdn(original: np.ndarray, decoded: np.ndarray) -> float:
    """PRD normalised by the signal with its mean removed (independent of DC offset)."""
    x = np.asarray(original, dtype=np.float64)
    return prd(x, decoded, baseline=float(x.mean()))


def snr(original: np.ndarray, decoded: np.ndarray) -> float:
    """10·log10(Σ(x − x̄)² / Σ(x − y)²) in dB, i.e. −20·log10(PRDN / 100)."""
    return float(-20.0 * np.log10(prdn(original, decoded) / 100.0))


def quality_score(cr: float, prd_percent: float) -> float:
    return cr / prd_percent


def detect_rpeaks(mv: np.ndarray, fs: float) -> np.ndarray:
    """R-peaks with WFDB's XQRS detector (default settings), on the signal in mV."""
    return np.asarray(wfdb.processing.xqrs_detect(sig=np.asarray(mv, dtype=np.float64), fs=fs, verbose=False), dtype=np.int64)


def rpeak_scores(reference: np.ndarray, detected: np.ndarray, fs: float) -> dict[str, float]:
    """Sensitivity, positive predictivity and F1 of detections against reference beats (±150 ms)."""
    reference, detected = np.asarray(reference), np.asarray(detected)
    if len(reference) == 0 or len(detected) == 0:  # wfdb's comparator cannot take an empty side
        tp, fn, fp = 0, len(reference), len(detected)
    else:
        cmp = wfdb.processing.compare_annotations(reference, detected, int(round(RPEAK_TOLERANCE_S * fs)))
        tp, fn, fp = cmp.tp, cmp.fn, cmp.fp
    return {
        "rpeak_se": tp / (tp + fn) if tp + fn else float("nan"),
        "rpeak_ppv": tp / (tp + fp) if tp + fp else float("nan"),
        "rpeak_f1": 2 * tp / (2 * tp + fp + fn) if tp else 0.0,
    }


def distortion(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    return {"prd": prd(original, decoded), "prdn": prdn(original, decoded), "snr": snr(original, decoded),
            "max_abs_error": float(np.max(np.abs(np.asarray(original) - np.asarray(decoded))))}
