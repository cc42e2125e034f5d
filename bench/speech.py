"""Speech throughput: audio processed per CPU-second, model vs the MFCC baseline, and training speed against the ceiling.

Two comparisons on the FSDD recordings (one thread), as seconds of audio and as clips per CPU-second:
- feature extraction: fixed-duration log-mel spectrograms (the model's input) vs MFCC + Δ + ΔΔ pooled;
- embedding: log-mel + encoder → code (what `latente speech embed` computes) vs the same MFCC features.
Uses the trained model in models/speech if present, else an untrained one of the configured size
(throughput does not depend on the weights). Training: the train stage's main fold on its real
spectrograms (clean and noisy copies), params.yaml's setting beside the candidate speed-ups, with
counted FLOPs and their fraction of the machine's matmul peak measured at the start of the same
run (bench/_training.py says how).
`python -m bench.speech [--clips N] [--repeats R] [--train-steps N] [--train-pairs P]`
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from latente.domains.speech.baselines import Mfcc
from latente.domains.speech.data import LogMel, Normaliser, labelled_folder, load_audio
from latente.domains.speech.model import ENCODE_BATCH, LinearClassifier, SpeechModel, model_config
from latente.domains.speech.params import FSDD_PATTERN, ClassifierParams, EvaluateParams, PrepareParams, TrainParams
from latente.shared.io import write_json
from latente.shared.models import build_model
from latente.shared.params import stage_params
from latente.shared.report import markdown_table
from bench import cpu_seconds
from bench._cases import real_case
from bench._training import add_arguments, measure, table
from bench.machine import ceiling

RESULTS = Path("bench/results/speech.json")
MIRROR = Path(os.environ.get("LATENTE_MIRROR", "../shared/datasets"))


def bench_model() -> tuple[SpeechModel, str]:
    if (Path("models/speech") / "config.json").is_file():
        return SpeechModel.load("models/speech"), "models/speech"
    features = stage_params("speech", "prepare", PrepareParams).features
    autoencoder = build_model(model_config(stage_params("speech", "train", TrainParams).model, features))
    # Untrained weights and a classifier on random codes: only the arithmetic is timed.
    codes = np.random.default_rng(0).normal(size=(20, autoencoder.config.latent_dim))
    classifier = LinearClassifier.fit(codes, ["a", "b"] * 10, ClassifierParams())
    return SpeechModel(autoencoder, features, Normaliser(0.0, 1.0), classifier, FSDD_PATTERN), "untrained (params.yaml size)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", default=str(MIRROR / "speech" / "recordings"))
    add_arguments(parser)
    args = parser.parse_args()
    machine = ceiling()
    torch.set_num_threads(1)

    model, origin = bench_model()
    rate = model.features.sample_rate
    items = labelled_folder(args.data, FSDD_PATTERN)[: args.clips]
    recordings = [load_audio(u.path, rate)[0] for u in items]
    audio_seconds = sum(len(r) for r in recordings) / rate
    mfcc = Mfcc(EvaluateParams().mfcc, rate)
    logmel = LogMel(model.features)

    timings = {
        "mfcc": cpu_seconds(lambda: mfcc(recordings), args.repeats),
        # in the same batches as `encode`, so that the two model rows differ only by the encoder
        "logmel": cpu_seconds(lambda: [logmel(recordings[i : i + ENCODE_BATCH]) for i in range(0, len(recordings), ENCODE_BATCH)], args.repeats),
        "embed": cpu_seconds(lambda: model.encode(recordings), args.repeats),
    }
    speed = {name: audio_seconds / seconds for name, seconds in timings.items()}
    clips = {name: len(recordings) / seconds for name, seconds in timings.items()}
    rows = [
        ("feature extraction", "log-mel (model input)", f"{speed['logmel']:.0f}", f"{speed['mfcc']:.0f}", f"{speed['logmel'] / speed['mfcc']:.2f}"),
        ("embedding", f"log-mel + encoder → {model.code_dims}-d code", f"{speed['embed']:.0f}", f"{speed['mfcc']:.0f}", f"{speed['embed'] / speed['mfcc']:.2f}"),
    ]
    print(f"{len(recordings)} clips, {audio_seconds:.0f} s of audio, 1 thread, best of {args.repeats}; model: {origin}", file=sys.stderr)
    print(markdown_table(["comparison", "method", "audio s per CPU-s", "MFCC audio s per CPU-s", "ratio vs MFCC"], rows))
    training = measure(real_case("speech", MIRROR), machine, args).result()
    print(table(training))
    write_json(RESULTS, {
        "domain": "speech", "clips": len(recordings), "audio_seconds": audio_seconds, "threads": 1, "repeats": args.repeats, "model": origin,
        "cpu_seconds": timings, "audio_seconds_per_cpu_second": speed, "clips_per_cpu_second": clips,
        "ratio_vs_mfcc": {"feature_extraction": speed["logmel"] / speed["mfcc"], "embedding": speed["embed"] / speed["mfcc"]},
        "machine": machine, **training,
    })


if __name__ == "__main__":
    main()
