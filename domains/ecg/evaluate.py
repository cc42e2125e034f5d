"""Evaluate codecs on WFDB records: CR, PRD, PRDN, SNR, QS and R-peak preservation."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latente.domains.ecg import codec, wavelet
from latente.domains.ecg.metrics import detect_rpeaks, distortion, prd, quality_score, rpeak_scores
from latente.domains.ecg.records import Lead, read_beats, read_lead
from latente.shared.models import LoadedModel
from latente.shared.results import Results

DOMAIN = "ecg"


@dataclass
class Codec:
    """A trained model at one bit depth and residual bound: one operating point."""

    label: str
    loaded: LoadedModel
    bits: int
    max_error: int = 0

    def round_trip(self, lead: Lead) -> tuple[np.ndarray, int]:
        data = codec.compress(self.loaded, lead, self.bits, self.max_error)
        return codec.decompress(self.loaded, data).adc, len(data)


@dataclass
class RecordCase:
    """One test lead with its reference beats and the detector's score on the original."""

    stem: Path
    lead: Lead
    beats: tuple[np.ndarray, np.ndarray] | None  # (samples, symbols)
    original_rpeaks: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.stem.name

    def rpeaks(self, adc: np.ndarray) -> dict[str, float]:
        if self.beats is None:
            return {}
        return rpeak_scores(self.beats[0], detect_rpeaks((adc - self.lead.baseline) / self.lead.gain, self.lead.fs), self.lead.fs)


def load_cases(stems: list[Path], lead: str, min_samples: int, seconds: float | None = None) -> list[RecordCase]:
    """Test leads (optionally only their first `seconds`) with the beats inside that span."""
    cases = []
    for stem in stems:
        signal = read_lead(stem, lead, min_samples, seconds)
        beats = read_beats(stem)
        if beats is not None:
            inside = beats[0] < len(signal.adc)
            beats = (beats[0][inside], beats[1][inside])
        case = RecordCase(stem, signal, beats)
        case.original_rpeaks = case.rpeaks(case.lead.adc)
        cases.append(case)
    return cases


def scores(case: RecordCase, decoded: np.ndarray, n_bytes: int) -> dict[str, float]:
    cr = codec.compression_ratio(len(case.lead.adc), n_bytes)
    metrics = {"cr": cr, **distortion(case.lead.adc, decoded), "bytes": n_bytes}
    metrics["qs"] = quality_score(cr, metrics["prd"])
    metrics.update(case.rpeaks(decoded))
    return metrics


def wavelet_at_cr(case: RecordCase, target_cr: float) -> tuple[np.ndarray, int]:
    """The wavelet codec with the smallest quantiser step that reaches `target_cr`."""
    adc, base = case.lead.adc, case.lead.baseline
    step = wavelet.step_for(lambda s: codec.compression_ratio(len(adc), len(wavelet.encode(adc, base, s))), target_cr)
    data = wavelet.encode(adc, base, step)
    return wavelet.decode(data), len(data)


def wavelet_cr_at_prd(case: RecordCase, target_prd: float) -> float:
    """CR of the wavelet codec at the largest step whose PRD stays within `target_prd`."""
    adc, base = case.lead.adc, case.lead.baseline
    step = wavelet.step_for(lambda s: prd(adc, wavelet.decode(wavelet.encode(adc, base, s))), target_prd, below=True)
    return codec.compression_ratio(len(adc), len(wavelet.encode(adc, base, step)))


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def evaluate_codecs(cases: list[RecordCase], codecs: list[Codec], results: Results) -> dict:
    """Rows for each codec and the wavelet baseline at the codec's CR, per record and averaged.

    Returns {(label, record): decoded ADC} for the model, for plots.
    """
    decoded: dict = {}
    for point in codecs:
        model_rows, wavelet_rows = [], []
        for case in cases:
            started = time.perf_counter()
            adc, n_bytes = point.round_trip(case.lead)
            seconds = time.perf_counter() - started
            decoded[(point.label, case.name)] = adc
            m = {**scores(case, adc, n_bytes), "seconds": seconds}
            w_adc, w_bytes = wavelet_at_cr(case, m["cr"])
            decoded[("wavelet " + point.label, case.name)] = w_adc
            w = scores(case, w_adc, w_bytes)
            results.add("model", m, operating_point=point.label, record=case.name)
            results.add("wavelet", w, operating_point=point.label, record=case.name)
            model_rows.append(m)
            wavelet_rows.append(w)
            print(f"{case.name} {point.label}: CR {m['cr']:.2f} PRD {m['prd']:.2f} PRDN {m['prdn']:.2f} | wavelet PRD {w['prd']:.2f}", file=sys.stderr)
        results.add("model", _mean(model_rows), operating_point=point.label)
        results.add("wavelet", _mean(wavelet_rows), operating_point=point.label)
    if all(c.original_rpeaks for c in cases):
        for case in cases:
            results.add("original", case.original_rpeaks, record=case.name)
        results.add("original", _mean([c.original_rpeaks for c in cases]))
    return decoded
