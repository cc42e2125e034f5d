"""ECG benchmark: codec throughput against the wavelet baseline, and training speed against the machine's ceiling.

`python -m bench.ecg [--model models/ecg/A] [--records 100,208] [--cr 30] [--train-steps N] [--train-pairs P]`.
Throughput is seconds of ECG encoded + decoded per CPU-second (process time, one thread), for the
learned codec and the wavelet codec on the same full records in the same run, both at the CR
rate control gives the model on the first record (the model's step is chosen once, before
timing: rate control is a search, not part of coding); the ratio is model / wavelet. Training: the train stage's codec (variant A) on its real training windows,
params.yaml's setting beside the candidate speed-ups, with counted FLOPs and their fraction of
the machine's matmul peak measured at the start of the same run (bench/_training.py says how).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from latente.domains.ecg import baselines as wavelet
from latente.domains.ecg import model as codec
from latente.domains.ecg.data import read_lead
from latente.domains.ecg.evaluation import shift_for_cr
from latente.domains.ecg.metrics import compression_ratio
from latente.shared.io import write_json
from bench import cpu_seconds
from bench._cases import real_case
from bench._training import add_arguments, measure, table
from bench.machine import ceiling

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
RESULTS = REPO / "bench" / "results" / "ecg.json"


def codec_throughput(loaded, leads, shift: int, wavelet_step: float, repeats: int) -> dict:
    seconds_of_ecg = sum(lead.seconds for lead in leads)
    model_cpu = cpu_seconds(lambda: [codec.decompress(loaded, codec.compress(loaded, lead, shift)) for lead in leads], repeats)
    wavelet_cpu = cpu_seconds(lambda: [wavelet.decode(wavelet.encode(lead.adc, lead.baseline, wavelet_step)) for lead in leads], repeats)
    return {
        "ecg_seconds": seconds_of_ecg,
        "model_ecg_seconds_per_cpu_second": seconds_of_ecg / model_cpu,
        "wavelet_ecg_seconds_per_cpu_second": seconds_of_ecg / wavelet_cpu,
        "model_over_wavelet": wavelet_cpu / model_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "ecg" / "A")
    parser.add_argument("--records", default="100,208")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cr", type=float, default=30.0, help="the CR rate control aims the model at (operating point A's)")
    add_arguments(parser)
    args = parser.parse_args()
    machine = ceiling()
    torch.set_num_threads(1)
    if not args.model.is_dir():
        sys.exit(f"error: {args.model}: model folder not found — run `dvc repro train@ecg` first")
    loaded = codec.load_codec(args.model)
    leads = [read_lead(MIRROR / "ecg" / "records" / name, "MLII") for name in args.records.split(",")]
    shift = shift_for_cr(loaded, leads[0], args.cr)
    # the wavelet runs at the CR the model reaches on the first record, so both do comparable work
    target = compression_ratio(len(leads[0].adc), len(codec.compress(loaded, leads[0], shift)))
    step = wavelet.step_for(lambda s: compression_ratio(len(leads[0].adc), len(wavelet.encode(leads[0].adc, leads[0].baseline, s))), target)
    c = codec_throughput(loaded, leads, shift, step, args.repeats)
    print(f"codec (encode+decode, CR {target:.1f}): model {c['model_ecg_seconds_per_cpu_second']:.0f} s ECG / CPU-s, "
          f"wavelet {c['wavelet_ecg_seconds_per_cpu_second']:.0f} s ECG / CPU-s, ratio model/wavelet {c['model_over_wavelet']:.2f}")
    training = measure(real_case("ecg", MIRROR), machine, args).result()
    result = {
        "model": str(args.model), "records": args.records.split(","), "threads": 1, "matched_cr": target, "shift": shift,
        "codec": c, "machine": machine, **training,
    }
    write_json(RESULTS, result)
    print(table(training))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
