"""Speech design ablations on an inner leave-one-speaker-out that never sees the test speakers.

`python -m bench.speech_ablation [--arms design,no_speed,...] [--data FOLDER]`

The pipeline's main model holds out `speech.train.test_speakers` (theo). Here those speakers are
dropped from the corpus altogether, and every remaining speaker is held out in turn: each arm
trains one encoder per inner fold exactly as the train stage does (`train_fold`, params.yaml's
`speech.train` with the arm's changes) and is scored by the evaluate stage's own comparison
(`compare`: the same classifier and C search for codes and MFCC, the same noisy waveforms).
The design choices of the train stage are made on these figures, so theo's recordings inform no
choice; the pipeline's LOSO figures, where every speaker is held out once, are the test.

Arms (changes to params.yaml's `speech.train`, one section level down, or to `speech.prepare.features`):
`design` (as committed), `no_speed` (no speed perturbation) and `speed_wide` (0.8–1.25×), `no_shift`
(copies not moved in time) and `shift16` (twice the range), `voice` (each recording's voiced span
centred in the window instead of the recording), `floor60` (log-mel floor 60 dB below the clip's
peak instead of 40), `masks` (SpecAugment band and span on the copies), `snr_wide` (training SNRs
down to −5 dB), `copies6` (twice the noisy copies), `epochs16` (twice the epochs), `invariance` (the
code-distance term at weight 100), `unsupervised` (no digit head), `dropout` (dropout 0.2 in the
encoder and decoder), `seed1` (the design with another trainer seed: the spread between it and
`design` is the seed noise any arm must clear).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latente.domains.speech.data import Corpus, fold_name, labelled_folder
from latente.domains.speech.evaluation import compare
from latente.domains.speech.model import model_config
from latente.domains.speech.params import EvaluateParams, PrepareParams, TrainParams
from latente.domains.speech.training import spectrograms, train_fold
from latente.shared.io import write_json
from latente.shared.params import stage_params

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "speech_ablation.json"
MIRROR = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
ARMS = {
    "design": {},
    "no_speed": {"augment": {"speed": (1.0, 1.0)}},
    "speed_wide": {"augment": {"speed": (0.8, 1.25)}},
    "no_shift": {"augment": {"shift": 0}},
    "shift16": {"augment": {"shift": 16}},
    "voice": {"features": {"align": "voice"}},
    "floor60": {"features": {"top_db": 60.0}},
    "masks": {"augment": {"freq_mask": 8, "time_mask": 10}},
    "snr_wide": {"augment": {"snr_db": (-5.0, 20.0)}},
    "copies6": {"augment": {"copies": 6}},
    "epochs16": {"trainer": {"epochs": 16}},
    "invariance": {"supervision": {"invariance_weight": 100.0}},
    "unsupervised": {"supervision": {"digit_weight": 0.0}},
    "dropout": {"model": {"dropout": 0.2}},
    "seed1": {"trainer": {"seed": 1}},
}
CONDITIONS = {"clean": None, "10 dB": 10.0, "0 dB": 0.0}


def arm_params(params: TrainParams, changes: dict) -> TrainParams:
    """params.yaml's train section with the arm's changes merged one level down (`features` aside)."""
    merged = params.model_dump()
    for section, values in changes.items():
        if section != "features":
            merged[section] = {**merged[section], **values}
    return TrainParams.model_validate(merged)


def arm_prepare(params: PrepareParams, changes: dict) -> PrepareParams:
    """params.yaml's prepare section with the arm's `features` changes (the spectrogram the encoder reads)."""
    merged = params.model_dump()
    merged["features"] = {**merged["features"], **changes.get("features", {})}
    return PrepareParams.model_validate(merged)


def run_arm(corpus: Corpus, params: TrainParams, prepare: PrepareParams, evaluate: EvaluateParams, work: Path) -> dict:
    folds = [(speaker,) for speaker in sorted(set(corpus.speakers.tolist()))]
    config = model_config(params.model, prepare.features)
    specs = spectrograms(corpus.recordings, prepare.features, params.augment, params.trainer.seed)
    models, started = {}, time.perf_counter()
    for fold in folds:
        models[fold_name(fold)], _ = train_fold(
            specs, corpus.labels.tolist(), corpus.speakers.tolist(), fold, params, prepare.features, config,
            prepare.dataset.pattern, work / fold_name(fold), None, {"bench": "speech_ablation"},
        )
    seconds = time.perf_counter() - started
    comparison = compare(corpus, folds, lambda fold: models[fold_name(fold)], [c for c in CONDITIONS.values() if c is not None],
                         evaluate.noise_seed, evaluate.mfcc, params.classifier, prepare.features.sample_rate)
    out: dict = {"train_seconds": seconds, "speakers": [f[0] for f in folds]}
    for method in ("model", "mfcc"):
        for name, condition in CONDITIONS.items():
            per_speaker = {f[0]: comparison.per_speaker[(method, condition, f[0])]["accuracy"] for f in folds}
            out[f"{method} {name}"] = {"mean": float(np.mean(list(per_speaker.values()))), "per_speaker": per_speaker}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--data", type=Path, default=MIRROR / "speech" / "recordings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prepare = stage_params("speech", "prepare", PrepareParams)
    train = stage_params("speech", "train", TrainParams)
    evaluate = stage_params("speech", "evaluate", EvaluateParams)
    everyone = Corpus.read(labelled_folder(args.data, prepare.dataset.pattern), prepare.features.sample_rate, args.data)
    keep = np.flatnonzero(~np.isin(everyone.speakers, train.test_speakers))
    corpus = Corpus([everyone.names[i] for i in keep], [everyone.recordings[i] for i in keep], everyone.labels[keep], everyone.speakers[keep])
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}  # arms run earlier stay
    for arm in args.arms.split(","):
        with tempfile.TemporaryDirectory() as work:
            results[arm] = {"changes": ARMS[arm], "excluded": list(train.test_speakers),
                            **run_arm(corpus, arm_params(train, ARMS[arm]), arm_prepare(prepare, ARMS[arm]), evaluate, Path(work))}
        print(f"{arm:13s} " + "  ".join(f"{k} {results[arm][k]['mean']:.3f}" for k in results[arm] if " " in k)
              + f"  | {results[arm]['train_seconds']:.0f} s", flush=True)
        write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
