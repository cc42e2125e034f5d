"""DVC stages of the anomaly domain: fetch → prepare → train → evaluate (SKAB valve1 + valve2 by default).

models/anomaly holds one detector folder per benchmark file (SKAB's protocol fits a model
per file, `skab/valve1/0/`, ...), the global detector trained on the anomaly-free run
(`global/`), the robustness-seed detectors (`seeds/<seed>/...`) and `protocol.json`, which
says which folder belongs to which file and how they were trained. Every folder is a model
that `latente anomaly score` accepts.
"""
from __future__ import annotations

from latente.domains.anomaly.params import EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.shared.stage import DomainPaths, run_stage

DOMAIN = "anomaly"


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    from latente.domains.anomaly.sources import canonical_downloader
    from latente.shared.io import atomic_dir
    from latente.shared.sources import fetch_files

    with atomic_dir(paths.raw) as tmp:
        origin = fetch_files(DOMAIN, params.source, tmp, canonical=canonical_downloader())
    print(f"fetched {len(params.source.files)} files from {origin}")


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    from latente.domains.anomaly.prepared import prepare as prepare_files

    manifest = prepare_files(paths.raw, paths.prepared, params)
    for entry in manifest["files"]:
        r = entry["report"]
        print(f"{entry['key']}: {r['rows_kept']} rows, {entry['anomalous_rows']} anomalous, {r['gaps']} gaps "
              f"(largest {r['largest_gap_s']:g} s), {r['duplicate_rows']} duplicates, {r['unsorted_rows']} unsorted, "
              f"{r['nan_cells']} NaN")


def train(params: TrainParams, paths: DomainPaths) -> None:
    from latente.domains.anomaly.training import train_all

    train_all(params, paths)


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    from latente.domains.anomaly.report import evaluate_and_report

    evaluate_and_report(params, paths)


if __name__ == "__main__":
    run_stage(DOMAIN, fetch, prepare, train, evaluate)
