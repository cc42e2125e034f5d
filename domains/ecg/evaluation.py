"""Evaluate codecs on WFDB records (CR, PRD, PRDN, SNR, QS, R-peak preservation) and the evaluate stage."""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latente.domains.ecg import DOMAIN, baselines, model
from latente.domains.ecg.data import Lead, aami_class, read_beats, read_lead
from latente.domains.ecg.metrics import (
    BITS_PER_SAMPLE, bd_rate, compression_ratio, detect_rpeaks, distortion, prd, prdn, quality_score, rpeak_scores,
)
from latente.domains.ecg.params import BeatExplorer, EvaluateParams, OperatingPoint
from latente.domains.ecg.report import write_report
from latente.shared.models.entropy import table_bits
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

WAVELET_STEPS = (4.0, 8.0, 12.0, 18.0, 24.0, 32.0, 45.0, 60.0, 80.0, 110.0)  # the wavelet's rate-distortion sweep


def shift_for_cr(codec: model.LoadedCodec, lead: Lead, target_cr: float, analysis: model.Analysis | None = None) -> int:
    """The smallest shift (finest step) whose file reaches `target_cr` (the largest shift if none does).

    Bisection on the table estimate (the size falls as the shift grows), then real files settle
    it: the estimate is a few bytes off either way (the coder's overhead, constriction's own
    quantisation of the tables), which can move the answer by a step.
    """
    analysis = analysis or model.analyse(codec, lead)
    n = len(lead.adc)
    lo, hi = -model.SHIFT_LIMIT, model.SHIFT_LIMIT
    while lo < hi:
        mid = (lo + hi) // 2
        if compression_ratio(n, math.ceil(model.estimated_bytes(codec, analysis, mid))) >= target_cr:
            hi = mid
        else:
            lo = mid + 1
    def reaches(shift: int) -> bool:
        return compression_ratio(n, len(model.compress(codec, lead, shift, analysis=analysis))) >= target_cr

    while lo < model.SHIFT_LIMIT and not reaches(lo):
        lo += 1
    while lo > -model.SHIFT_LIMIT and reaches(lo - 1):
        lo -= 1
    return lo


def shift_for_prdn(codec: model.LoadedCodec, lead: Lead, target_prdn: float, analysis: model.Analysis | None = None) -> int:
    """The largest shift (coarsest step) whose PRDN stays within `target_prdn` (the smallest shift if none does)."""
    analysis = analysis or model.analyse(codec, lead)

    def distortion(shift: int) -> float:
        symbols, _ = model.latent_symbols(codec, analysis, shift)
        return prdn(lead.adc, model.reconstruct(codec, symbols, shift, analysis.input_gain, len(lead.adc), lead.gain, lead.baseline))

    lo, hi = -model.SHIFT_LIMIT, model.SHIFT_LIMIT
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if distortion(mid) <= target_prdn:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class Codec:
    """A trained codec with its rate setting (target CR, target PRDN or fixed shift): one operating point."""

    label: str
    loaded: model.LoadedCodec
    point: OperatingPoint

    def shift(self, lead: Lead, analysis: model.Analysis) -> int:
        if self.point.cr is not None:
            return shift_for_cr(self.loaded, lead, self.point.cr, analysis)
        if self.point.prdn is not None:
            return shift_for_prdn(self.loaded, lead, self.point.prdn, analysis)
        assert self.point.shift is not None
        return self.point.shift

    def round_trip(self, lead: Lead) -> tuple[np.ndarray, int, int]:
        """Decoded ADC values, file bytes and the shift rate control chose."""
        analysis = model.analyse(self.loaded, lead)
        shift = self.shift(lead, analysis)
        data = model.compress(self.loaded, lead, shift, self.point.max_error, analysis)
        return model.decompress(self.loaded, data).adc, len(data), shift


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
            adc, n_bytes, shift = point.round_trip(case.lead)
            seconds = time.perf_counter() - started
            decoded[(point.label, case.name)] = adc
            m = {**scores(case, adc, n_bytes), "shift": shift, "seconds": seconds}
            w_adc, w_bytes = wavelet_at_cr(case, m["cr"])
            decoded[("wavelet " + point.label, case.name)] = w_adc
            w = scores(case, w_adc, w_bytes)
            m["prdn_over_wavelet"] = m["prdn"] / w["prdn"]
            results.add("model", m, operating_point=point.label, record=case.name)
            results.add("wavelet", w, operating_point=point.label, record=case.name)
            model_rows.append(m)
            wavelet_rows.append(w)
            print(f"{case.name} {point.label}: CR {m['cr']:.2f} PRD {m['prd']:.2f} PRDN {m['prdn']:.2f} | wavelet PRD {w['prd']:.2f}", file=sys.stderr)
        mean = _mean(model_rows)
        del mean["shift"]  # chosen per record; a mean of steps means nothing
        results.add("model", mean, operating_point=point.label)
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
            adc, n_bytes, _ = point.round_trip(case.lead)
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


ABLATIONS = {
    "hyperprior, whole record": "the codec as it is: the whole record coded at once, each latent's scale predicted from the side information",
    "static per-channel prior": "the same symbols under the best single scale per latent channel, chosen on this record itself "
                                "(an oracle no factorized prior can beat), with no side information",
    "independent blocks": "the record cut into windows of the training length, each coded on its own (padded, with its own side "
                          "information) at the same step",
}


def ablations(cases: list[RecordCase], point: Codec, results: Results) -> None:
    """What the scale hyperprior and whole-record coding are worth, at the step `evaluate_codecs` chose
    for `point` on each record.

    No retraining: each arm codes with the trained model, so the differences are those of the
    entropy model (same symbols, other tables) and of block edges (same step, cut input). Rates
    are the integer tables' bits (the coder adds a few bytes), so the arms compare like for like.
    """
    codec = point.loaded
    cfg = codec.hyperprior.config
    for case in cases:
        lead = case.lead
        analysis = model.analyse(codec, lead)
        shift = results.find("model", operating_point=point.label, record=case.name)["shift"]  # rate control's, from evaluate_codecs
        symbols, groups = model.latent_symbols(codec, analysis, shift)
        side = model.side_bits(codec, analysis.z_symbols)
        hyper = table_bits(symbols, groups, codec.y_frequencies, cfg.symbol_bound) + side
        static = sum(min(table_bits(row, np.full_like(row, level), codec.y_frequencies, cfg.symbol_bound) for level in range(cfg.levels))
                     for row in symbols)
        decoded = model.reconstruct(codec, symbols, shift, analysis.input_gain, len(lead.adc), lead.gain, lead.baseline)
        window = codec.preprocessing["window"]
        block_bits, block_adc = 0.0, []
        for start in range(0, len(lead.adc), window):
            part = Lead(lead.record, lead.name, lead.adc[start : start + window], lead.fs, lead.gain, lead.baseline, lead.units)
            part_analysis = model.analyse(codec, part)
            part_symbols, part_groups = model.latent_symbols(codec, part_analysis, shift)
            block_bits += table_bits(part_symbols, part_groups, codec.y_frequencies, cfg.symbol_bound)
            block_bits += model.side_bits(codec, part_analysis.z_symbols)
            block_adc.append(model.reconstruct(codec, part_symbols, shift, part_analysis.input_gain, len(part.adc), lead.gain, lead.baseline))
        n = len(lead.adc)
        for arm, bits, adc in (("hyperprior, whole record", hyper, decoded), ("static per-channel prior", static, decoded),
                               ("independent blocks", block_bits, np.concatenate(block_adc))):
            results.add("model", {"bits_per_sample": bits / n, "prdn": prdn(lead.adc, adc), "shift": shift},
                        ablation=arm, operating_point=point.label, record=case.name)


@dataclass
class BeatCodes:
    """The explorer's beats: one row each (identity, class, both waveforms in mV) and its code."""

    rows: list[dict]
    codes: np.ndarray  # [beats, channels · frames]


def _waveform(values: np.ndarray) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def beat_codes(cases: list[RecordCase], point: Codec, decoded: dict, results: Results, explorer: BeatExplorer) -> BeatCodes:
    """Each chosen beat's code: the latent frames that cover it, as the decoder receives them
    (symbols × the step rate control chose for `point` on the record), with the beat's original
    and decoded waveform.

    The frames start at the one holding the window's first sample, so a beat's R peak sits up to
    one frame's worth of samples later in its code than another's: codes of one class still
    group, and that jitter is what the fully convolutional codec itself sees.
    """
    codec = point.loaded
    downsampling = codec.codec.transform.config.downsampling
    rows, codes = [], []
    for case in cases:
        if case.beats is None:
            continue
        lead = case.lead
        before, after = round(explorer.before_s * lead.fs), round(explorer.after_s * lead.fs)
        frames = math.ceil((before + after) / downsampling)
        shift = results.find("model", operating_point=point.label, record=case.name)["shift"]
        symbols, _ = model.latent_symbols(codec, model.analyse(codec, lead), shift)
        latent = symbols * model.quantisation_step(codec, shift)
        samples, annotations = case.beats
        starts = samples - before
        inside = np.flatnonzero((starts >= 0) & (samples + after <= len(lead.adc)) & (starts // downsampling + frames <= latent.shape[1]))
        count = min(explorer.beats_per_record, len(inside))
        chosen = inside[np.unique(np.linspace(0, len(inside) - 1, count).round().astype(int))] if count else inside
        original, reconstructed = lead.mv, (decoded[(point.label, case.name)] - lead.baseline) / lead.gain
        for index in chosen:
            window = slice(starts[index], samples[index] + after)
            first = starts[index] // downsampling
            codes.append(latent[:, first : first + frames].reshape(-1))
            rows.append({
                "beat": f"{case.name} beat {index + 1}", "record": case.name, "time_s": round(samples[index] / lead.fs, 3),
                "symbol": str(annotations[index]), "class": aami_class(str(annotations[index])),
                "rms_error_mv": round(float(np.sqrt(np.mean((reconstructed[window] - original[window]) ** 2))), 4),
                "x_start": round(-before / lead.fs, 6), "x_step": round(1 / lead.fs, 9),
                "original": _waveform(original[window]), "decoded": _waveform(reconstructed[window]),
            })
    return BeatCodes(rows, np.stack(codes).astype(np.float64) if codes else np.empty((0, 0)))


def point_label(point: OperatingPoint) -> str:
    """`A CR 30`, `B PRDN 8`, `A shift 2`: a rate-distortion point's name."""
    if point.cr is not None:
        return f"{point.model} CR {point.cr:g}"
    if point.prdn is not None:
        return f"{point.model} PRDN {point.prdn:g}"
    return f"{point.model} shift {point.shift}"


def add_bd_rates(curve: list[dict], records: list[str], results: Results) -> None:
    """BD-rate of the model's curve against the wavelet's, in bits per sample at equal PRDN, per record and their mean."""
    values = []
    for record in records:
        sides = [[(BITS_PER_SAMPLE / r["cr"], r["prdn"]) for r in curve if r["record"] == record and r["method"] == method]
                 for method in ("wavelet", "model")]
        try:
            value = bd_rate(*(tuple(np.array(side).T) for side in sides))
        except ValueError as err:  # too few points, or PRDN ranges that do not overlap: undefined, a miss
            print(f"record {record}: no BD-rate ({err})", file=sys.stderr)
            value = float("nan")
        results.add("model", {"bd_rate": value}, against="wavelet", record=record)
        values.append(value)
    results.add("model", {"bd_rate": float(np.mean(values))}, against="wavelet")


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    """Every operating point and the wavelet at its CR, the rate-distortion curves and their BD-rate,
    the wavelet's CR at `wavelet_target_prd`; then metrics.json and the report."""
    stems = [paths.raw / "records" / name for name in params.test_records]
    loaded = {name: model.load_codec(paths.model / name) for name in sorted(
        {p.model for p in params.operating_points.values()} | {p.model for p in params.rate_distortion})}
    window = max(m.preprocessing["window"] for m in loaded.values())
    cases = load_cases(stems, params.lead, window, params.seconds)
    results = Results(DOMAIN, str(paths.raw / "records"), list(params.test_records))
    points = [Codec(label, loaded[p.model], p) for label, p in params.operating_points.items()]
    decoded = evaluate_codecs(cases, points, results)
    curve = rate_distortion(cases, [Codec(point_label(p), loaded[p.model], p) for p in params.rate_distortion],
                            params.wavelet_target_crs)
    add_bd_rates(curve, [case.name for case in cases], results)
    ablations(cases, points[0], results)
    for case in cases:
        results.add("wavelet", {"cr": wavelet_cr_at_prd(case, params.wavelet_target_prd)},
                    target_prd=params.wavelet_target_prd, record=case.name)
    shown = next(p for p in points if p.label == params.explorer.operating_point)
    write_report(paths, params, results, cases, decoded, curve, loaded, beat_codes(cases, shown, decoded, results, params.explorer))
    results.write(paths.metrics)
