"""DVC stages of the protein domain: fetch → prepare → train → evaluate (BLAT_ECOLX by default)."""
from __future__ import annotations

from latente.domains.protein.params import EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.shared.stage import DomainPaths, run_stage

DOMAIN = "protein"


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    from latente.domains.protein.sources import download_canonical
    from latente.shared.io import atomic_dir
    from latente.shared.sources import fetch_files

    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=download_canonical)
    print(f"fetched {len(params.source.files)} files from {origin}")


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    from latente.domains.protein.prepared import save_prepared, weigh

    data = weigh(paths.raw / params.alignment, params.focus, params.theta)
    save_prepared(data, paths.prepared)
    n, length = data.alignment.shape
    print(f"{n} sequences × {length} focus columns ({data.alignment.n_removed} removed for non-standard residues); "
          f"Neff {data.neff:.1f} (θ = {params.theta}), weights in {data.weight_seconds:.1f} s")


def train(params: TrainParams, paths: DomainPaths) -> None:
    from latente.domains.protein.prepared import load_prepared
    from latente.domains.protein.training import save_family_vae, train_family_vae

    data = load_prepared(paths.prepared)
    fingerprint = {"params": params.model_dump(mode="json"), "data": {"source": data.alignment.source, "neff": data.neff,
                                                                      "shape": list(data.alignment.shape)}}
    trained = train_family_vae(data.alignment.codes, data.weights, params, paths.checkpoint,
                               fingerprint=fingerprint, live_dir=paths.training_log)
    save_family_vae(trained, data, paths.model)
    fit = trained.fit
    print(f"trained {fit.epochs_run} epochs in {fit.seconds:.0f} s wall, {trained.cpu_seconds:.0f} s CPU "
          f"(best epoch {fit.best_epoch})")


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    from latente.domains.protein.report import evaluate_and_report

    evaluate_and_report(params, paths)


if __name__ == "__main__":
    run_stage(DOMAIN, fetch, prepare, train, evaluate)
