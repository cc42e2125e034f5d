"""DVC stages of the MRI domain: `python -m latente.pipelines.mri fetch|prepare|train|evaluate`."""
from __future__ import annotations

import time

from latente.shared.io import atomic_dir, write_json
from latente.shared.models import load_model
from latente.shared.results import Results
from latente.shared.sources import fetch_files
from latente.shared.stage import DomainPaths, run_stage

from latente.domains.mri import DOMAIN
from latente.domains.mri.data import prepare as prepare_slices
from latente.domains.mri.denoiser import denoise_values, prepare_for_inference
from latente.domains.mri.evaluation import evaluate_cases, load_case
from latente.domains.mri.params import EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.mri.report import write_report
from latente.domains.mri.sources import download_canonical
from latente.domains.mri.training import save, train as train_denoiser


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=download_canonical)
        write_json(tmp / "SOURCE.json", {"origin": origin, "files": list(params.source.files)})


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    prepare_slices(params, paths.raw, paths.prepared)


def train(params: TrainParams, paths: DomainPaths) -> None:
    model, result, prepared = train_denoiser(params, paths.prepared, paths.checkpoint, paths.training_log)
    save(model, paths.model, params, prepared, result)


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    loaded = load_model(paths.model, domain=DOMAIN)
    model = prepare_for_inference(loaded.model)
    names = loaded.meta["data"]["test_volumes"]
    cases = [load_case(paths.raw / name, params.slices, params.mask_threshold) for name in names]
    results = Results(DOMAIN, f"{paths.raw} (test volumes; the model trained on {', '.join(loaded.meta['data']['train_volumes'])})", names)
    outputs = evaluate_cases(cases, model, params.noise, params.kind, params.seed, params.methods, results)
    started = time.perf_counter()
    denoise_values(model, cases[0].clean)  # whole test volume, every axial slice
    whole_volume = {"shape": list(cases[0].clean.shape), "seconds": time.perf_counter() - started}
    write_report(paths, params, results, cases, outputs, loaded, whole_volume)
    results.write(paths.metrics)


if __name__ == "__main__":
    run_stage(DOMAIN, fetch, prepare, train, evaluate)
