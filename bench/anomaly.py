"""Anomaly benchmark: scoring throughput on one core against PCA T²+Q, and a 1,000,000-row CSV in bounded memory.

`python -m bench.anomaly [--rows 1000000] [--throughput-rows 200000]`. A detector is fitted on
the first 400 rows of SKAB valve1/0.csv; the big CSVs are built in a temporary folder from
the real rows of the 20 valve files, tiled, with fresh 1 s timestamps. Peak RSS is the
`latente anomaly score` child's own, for the big file and for files a tenth and half its size, with the part
above the imports (torch, MONAI, pandas) shown separately: that part must not grow with the file.

Training: the train stage's detector on the anomaly-free run's windows, params.yaml's setting beside
the candidate speed-ups, with counted FLOPs and their fraction of the machine's matmul peak measured
at the start of the same run (bench/_training.py says how); one more candidate trains the stage's
20 per-file detectors of a seed at once (`ensemble_20`, torch.func.vmap), as the issue suggests for small models.
`--train-steps N --train-pairs P` size it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench._cases import real_case
from bench._training import add_arguments, measure, run_ensemble, table
from bench.machine import ceiling

REPO = Path(__file__).resolve().parents[1]
ENSEMBLE = 20  # per-file detectors of one seed: the 20 valve files
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "bench" / "results" / "anomaly.json"


def valve_rows() -> pd.DataFrame:
    root = MIRROR / "anomaly" / "skab"
    paths = [root / f"valve1/{i}.csv" for i in range(16)] + [root / f"valve2/{i}.csv" for i in range(4)]
    return pd.concat([pd.read_csv(p, sep=";") for p in paths], ignore_index=True)


def tiled(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    reps = -(-n // len(rows))
    out = pd.concat([rows] * reps, ignore_index=True).iloc[:n].copy()
    out["datetime"] = pd.date_range("2021-01-01", periods=n, freq="s").strftime("%Y-%m-%d %H:%M:%S")
    return out


def best_of(repeats: int, func) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def throughput(detector, rows: pd.DataFrame, n: int) -> dict:
    """Rows per second of in-memory scoring (model: windows + SKAB rule + shares; PCA: T², Q, medians)."""
    from latente.domains.anomaly.baselines import PCAT2Q
    from latente.domains.anomaly.data import DataReport, Series
    from latente.domains.anomaly.model import score_series
    from latente.domains.anomaly.params import PCABaselineParams

    values = tiled(rows, n)[detector.sensors].to_numpy(dtype=np.float64)
    series = Series(Path("tiled"), detector.sensors, values, np.arange(1, n + 1), None, None, None, DataReport())
    train = rows[detector.sensors].to_numpy(dtype=np.float64)[:400]
    pca = PCAT2Q(PCABaselineParams()).fit(train)
    model_s = best_of(1, lambda: score_series(detector, series))
    pca_s = best_of(3, lambda: pca.predict(values))
    return {"rows": n, "model_rows_per_s": n / model_s, "pca_t2q_rows_per_s": n / pca_s, "model_seconds": model_s,
            "pca_t2q_seconds": pca_s, "model_vs_pca_speed": pca_s / model_s}


CHILD = """
import json, resource, sys
import latente.domains.cli, latente.domains.anomaly.model, latente.domains.anomaly.data, latente.shared.models  # what `score` imports


def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1])


import_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) so it covers scoring only
    fh.write("5")
sys.argv = ["latente", *sys.argv[1:]]
try:
    latente.domains.cli.main()
except SystemExit as exit_:
    if exit_.code:
        raise
print(json.dumps({"import_peak_kib": import_peak, "after_imports_kib": base, "scoring_peak_kib": status("VmHWM")}))
"""


def score_file(csv: Path, model: Path, out: Path, chunk_rows: int) -> dict:
    """`latente anomaly score` (the real entry point) in a child on one core: wall time, peak RSS, and the
    peak over what importing torch/MONAI/pandas already took, which is what streaming must keep bounded."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, "anomaly", "score", str(csv), "--model", str(model), "--out", str(out),
                           "--chunk-rows", str(chunk_rows), "--force"], cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"score failed:\n{done.stderr}")
    rss = json.loads(done.stdout.strip().splitlines()[-1])
    lines = sum(1 for _ in out.open()) - 1
    return {"rows": lines, "seconds": seconds, "rows_per_s": lines / seconds, "csv_mib": csv.stat().st_size / 2**20,
            "peak_rss_mib": max(rss["import_peak_kib"], rss["scoring_peak_kib"]) / 1024,
            "import_peak_rss_mib": rss["import_peak_kib"] / 1024, "after_imports_rss_mib": rss["after_imports_kib"] / 1024,
            "scoring_peak_rss_mib": rss["scoring_peak_kib"] / 1024,
            "scoring_rss_mib": (rss["scoring_peak_kib"] - rss["after_imports_kib"]) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big CSV")
    parser.add_argument("--throughput-rows", type=int, default=200_000, help="rows for the in-memory throughput test")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="rows per chunk when streaming")
    add_arguments(parser)
    args = parser.parse_args()
    machine = ceiling()
    torch.set_num_threads(1)

    from latente.domains.anomaly.data import read_series
    from latente.domains.anomaly.params import DetectorConfig, ReaderConfig
    from latente.domains.anomaly.training import fit_detector

    reader = ReaderConfig()
    first = read_series(MIRROR / "anomaly/skab/valve1/0.csv", reader)
    detector = fit_detector(first.values[:400], first.sensors, DetectorConfig().with_trainer(epochs=10), reader=reader,
                            step_s=1.0, where="valve1/0.csv")
    rows = valve_rows()
    result = {"threads": 1, "torch": torch.__version__, "cpu": os.cpu_count(), "detector": "conv_ae, valve1/0.csv rows 0:400",
              "throughput": throughput(detector, rows, args.throughput_rows)}
    with tempfile.TemporaryDirectory(prefix="latente-bench-anomaly-") as tmp:
        tmp = Path(tmp)
        detector.save(tmp / "model", data={"file": "valve1/0.csv", "rows": [0, 400]})
        streaming = {}
        for n in (args.rows // 10, args.rows // 2, args.rows):  # the scoring RSS must not grow with n
            csv = tmp / f"tiled_{n}.csv"
            tiled(rows, n).to_csv(csv, sep=";", index=False)
            streaming[str(n)] = score_file(csv, tmp / "model", tmp / f"scores_{n}.csv", args.chunk_rows)
            csv.unlink()
        result["streaming"] = streaming
    bench = measure(real_case("anomaly", MIRROR), machine, args)
    if args.candidates is None or f"ensemble_{ENSEMBLE}" in args.candidates.split(","):
        run_ensemble(bench, ENSEMBLE)
    result |= {"machine": machine, **bench.result()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    t = result["throughput"]
    print(f"in-memory scoring, {t['rows']:,} rows, 1 thread:")
    print(f"  {'method':<12} {'rows/s':>12} {'seconds':>9}")
    print(f"  {'conv AE':<12} {t['model_rows_per_s']:>12,.0f} {t['model_seconds']:>9.2f}")
    print(f"  {'PCA T²+Q':<12} {t['pca_t2q_rows_per_s']:>12,.0f} {t['pca_t2q_seconds']:>9.2f}")
    print(f"  conv AE / PCA speed: {t['model_vs_pca_speed']:.3f}×")
    print(f"streaming `latente anomaly score` (chunks of {args.chunk_rows:,} rows, 1 thread):")
    print(f"  {'rows':>10} {'CSV MiB':>8} {'seconds':>8} {'rows/s':>9} {'peak RSS MiB':>13} {'of which scoring':>17}")
    for n, s in streaming.items():
        print(f"  {s['rows']:>10,} {s['csv_mib']:>8.1f} {s['seconds']:>8.1f} {s['rows_per_s']:>9,.0f} "
              f"{s['peak_rss_mib']:>13.0f} {s['scoring_rss_mib']:>17.0f}")
    print("  (peak RSS includes importing torch, MONAI and pandas; 'of which scoring' is the peak while scoring minus "
          "the RSS right after the imports)")
    print(table(result))
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
