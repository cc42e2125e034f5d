"""Evaluate codecs on WFDB records (CR, PRD, PRDN, SNR, QS, R-peak preservation) and the evaluate stage."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latente.domains.ecg import DOMAIN, baselines, model
from latente.domains.ecg.data import Lead, read_beats, read_lead
from latente.domains.ecg.metrics import compression_ratio, detect_rpeaks, distortion, prd, prdn, quality_score, rpeak_scores
from latente.domains.ecg.params import EvaluateParams
from latente.domains.ecg.report import write_report
from latente.shared.models import LoadedModel, load_model
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

WAVELET_STEPS = (4.0, 8.0, 12.0, 18.0, 24.0, 32.0, 45.0, 60.0, 80.0, 110.0)  # the wavelet's rate-distortion sweep


@dataclass
class Codec:
    """A trained model at one bit depth and residual bound: one operating point."""

    label: str
    loaded: LoadedModel
    bits: int
    max_error: int = 0

    def round_trip(self, lead: Lead) -> tuple[np.ndarray, int]:
        data = model.compress(self.loaded, lead, self.bits, self.max_error)
        return model.decompress(self.loaded, data).adc, len(data)


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
    cr = compression_ratio(len(case.lead.adc), n_bytes)
    metrics = {"cr": cr, **distortion(case.lead.adc, decoded), "bytes": n_bytes}
    metrics["qs"] = quality_score(cr, metrics["prd"])
    metrics.update(case.rpeaks(decoded))
    return metrics


def wavelet_at_cr(case: RecordCase, target_cr: float) -> tuple[np.ndarray, int]:
    """The wavelet codec with the smallest quantiser step that reaches `target_cr`."""
    adc, base = case.lead.adc, case.lead.baseline
    step = baselines.step_for(lambda s: compression_ratio(len(adc), len(baselines.encode(adc, base, s))), target_cr)
    data = baselines.encode(adc, base, step)
    return baselines.decode(data), len(data)


def wavelet_cr_at_prd(case: RecordCase, target_prd: float) -> float:
    """CR of the wavelet codec at the largest step whose PRD stays within `target_prd`."""
    adc, base = case.lead.adc, case.lead.baseline
    step = baselines.step_for(lambda s: prd(adc, baselines.decode(baselines.encode(adc, base, s))), target_prd, below=True)
    return compression_ratio(len(adc), len(baselines.encode(adc, base, step)))


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


def rate_distortion(cases: list[RecordCase], codecs: list[Codec], wavelet_crs: tuple[float, ...]) -> list[dict]:
    """CR/PRD/PRDN per record for each model point and for a sweep of wavelet steps."""
    rows = []
    for point in codecs:
        for case in cases:
            adc, n_bytes = point.round_trip(case.lead)
            rows.append({"method": "model", "point": point.label, "record": case.name,
                         "cr": compression_ratio(len(adc), n_bytes), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
    for case in cases:
        for step in WAVELET_STEPS:
            data = baselines.encode(case.lead.adc, case.lead.baseline, step)
            adc = baselines.decode(data)
            rows.append({"method": "wavelet", "point": f"step {step:g}", "record": case.name,
                         "cr": compression_ratio(len(adc), len(data)), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
        for target in wavelet_crs:
            adc, n_bytes = wavelet_at_cr(case, target)
            rows.append({"method": "wavelet", "point": f"CR {target:g}", "record": case.name,
                         "cr": compression_ratio(len(adc), n_bytes), "prd": prd(case.lead.adc, adc), "prdn": prdn(case.lead.adc, adc)})
    return rows


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """Every operating point and the wavelet at its CR, the rate-distortion curves, the wavelet's CR
    at `wavelet_target_prd`; then metrics.json and the report."""
    stems = [paths.raw / "records" / name for name in params.test_records]
    loaded = {name: load_model(paths.model / name, domain=DOMAIN) for name in sorted(
        {p.model for p in params.operating_points.values()} | {p.model for p in params.rate_distortion})}
    window = max(m.preprocessing["window"] for m in loaded.values())
    cases = load_cases(stems, params.lead, window, params.seconds)
    results = Results(DOMAIN, str(paths.raw / "records"), list(params.test_records))
    points = [Codec(label, loaded[p.model], p.bits, p.max_error) for label, p in params.operating_points.items()]
    decoded = evaluate_codecs(cases, points, results)
    curve = rate_distortion(cases, [Codec(f"{p.model}@{p.bits}bit", loaded[p.model], p.bits, p.max_error) for p in params.rate_distortion],
                            params.wavelet_target_crs)
    for case in cases:
        results.add("wavelet", {"cr": wavelet_cr_at_prd(case, params.wavelet_target_prd)},
                    target_prd=params.wavelet_target_prd, record=case.name)
    write_report(paths, params, results, cases, decoded, curve, loaded)
    results.write(paths.metrics)
