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


def pareto_front(rate: np.ndarray, distortion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points no other point beats in both rate and distortion, by increasing rate."""
    order = np.argsort(rate, kind="stable")
    keep, best = [], np.inf
    for i in order:
        if distortion[i] < best:
            keep.append(i)
            best = distortion[i]
    return np.asarray(rate)[keep], np.asarray(distortion)[keep]


def bd_rate(reference: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], samples: int = 2001) -> float:
    """Bjøntegaard delta rate in %: how many more bits `test` needs than `reference` at equal distortion.

    Each curve is (bits per sample, PRDN). log(rate) is interpolated as a function of PRDN with a
    monotone piecewise cubic (PCHIP, the current JVET/AOM practice instead of Bjøntegaard's
    global cubic, which overshoots on few points) and averaged over the PRDN range both curves
    cover; negative means fewer bits. Only each curve's Pareto front counts.
    """
    from scipy.interpolate import PchipInterpolator

    curves = []
    for rate, dist in (reference, test):
        r, d = pareto_front(np.asarray(rate, float), np.asarray(dist, float))
        if len(r) < 2:
            raise ValueError("a BD-rate needs at least two points on each curve")
        order = np.argsort(d)
        curves.append((d[order], np.log(r[order])))
    low, high = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    if low >= high:
        raise ValueError("the two curves cover no common distortion range")
    grid = np.linspace(low, high, samples)
    ref, tst = (PchipInterpolator(d, log_r)(grid) for d, log_r in curves)
    return float((np.exp(np.trapezoid(tst - ref, grid) / (high - low)) - 1) * 100)
