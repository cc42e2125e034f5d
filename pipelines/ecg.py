"""DVC stages of the ECG domain: `python -m latente.pipelines.ecg fetch|prepare|train|evaluate`."""
from __future__ import annotations

from functools import partial


from latente.domains.ecg.data import save_signals
from latente.domains.ecg.evaluate import Codec, evaluate_codecs, load_cases
from latente.domains.ecg.params import EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.ecg.records import read_lead
from latente.domains.ecg.report import rate_distortion, write_report
from latente.domains.ecg.sources import download_physionet
from latente.domains.ecg.train import train_codec
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.models import load_model
from latente.shared.results import Results
from latente.shared.sources import fetch_files
from latente.shared.stage import DomainPaths, run_stage

DOMAIN = "ecg"


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    canonical = partial(download_physionet, base_url=params.source.location) if params.source.location else download_physionet
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=canonical if params.source.kind == "canonical" else None)
        write_json(tmp / "SOURCE.json", {"origin": origin, "files": list(params.source.files)})


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """Train/validation split in time within each training record (the last fraction validates)."""
    train, validation, meta = {}, {}, {}
    for name in params.train_records:
        lead = read_lead(paths.raw / "records" / name, params.lead, seconds=params.seconds)
        signal = lead.mv / params.scale_mv
        cut = int(len(signal) * (1 - params.validation_fraction))
        train[name], validation[name] = signal[:cut], signal[cut:]
        meta[name] = {"lead": lead.name, "fs": lead.fs, "samples": len(signal)}
    fs = {m["fs"] for m in meta.values()}
    if len(fs) != 1:
        raise ValueError(f"training records have different sampling rates: {fs}")
    with atomic_dir(paths.prepared) as tmp:
        save_signals(train, tmp / "train.safetensors")
        save_signals(validation, tmp / "validation.safetensors")
        write_json(tmp / "prepared.json", {"records": meta, "fs": fs.pop(), "scale_mv": params.scale_mv,
                                           "validation_fraction": params.validation_fraction, "seconds": params.seconds})


def train(params: TrainParams, paths: DomainPaths) -> None:
    prepared = read_json(paths.prepared / "prepared.json")
    preprocessing = {"fs": prepared["fs"], "scale_mv": prepared["scale_mv"], "window": params.window,
                     "input": "lead in mV divided by scale_mv, whole record at once (fully convolutional)"}
    with atomic_dir(paths.model) as tmp:
        for name, config in params.variant_configs().items():
            train_codec(config, params.trainer, params.window, params.hop, paths.prepared, tmp / name,
                        paths.checkpoint / name, paths.training_log / name, preprocessing)


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
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
    write_report(paths, params, results, cases, decoded, curve, loaded)
    results.write(paths.metrics)


if __name__ == "__main__":
    run_stage(DOMAIN, fetch, prepare, train, evaluate)
