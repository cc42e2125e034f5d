"""Speech stages: `python -m latente.pipelines.speech fetch|prepare|train|evaluate`."""
from __future__ import annotations

from pathlib import Path

from latente.domains.speech.data import load_dataset, speaker_folds
from latente.domains.speech.evaluation import Corpus, compare
from latente.domains.speech.fetch import fetch_fsdd
from latente.domains.speech.model import SpeechModel
from latente.domains.speech.params import ClassifierParams, EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.speech.prepared import read_prepared, write_prepared
from latente.domains.speech.report import build_report
from latente.domains.speech.training import fold_name, train_models
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, write_text
from latente.shared.stage import DomainPaths, run_stage


def fetch(params: FetchParams, paths: DomainPaths) -> None:
    fetch_fsdd(params, paths.raw)


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    utterances = load_dataset(params.dataset)
    corpus = Corpus.read(utterances, params.features.sample_rate, root=Path(params.dataset.root))
    write_prepared(paths.prepared, corpus, params.features, params.dataset)


def train(params: TrainParams, paths: DomainPaths) -> None:
    prepared = read_prepared(paths.prepared)
    corpus = prepared.corpus
    folds = speaker_folds(corpus.speakers.tolist(), params.test_speakers, params.loso)
    data = {"source": prepared.dataset["root"], "clips": len(corpus), "speakers": sorted(set(corpus.speakers.tolist())), "sha256": prepared.digest()}
    train_models(
        corpus.labels.tolist(), corpus.speakers.tolist(), corpus.recordings, folds, params, prepared.features,
        prepared.label_pattern, paths.model, paths.checkpoint, paths.training_log, data,
    )


def evaluate(params: EvaluateParams, paths: DomainPaths) -> None:
    prepared = read_prepared(paths.prepared)
    main = SpeechModel.load(paths.model)
    if main.features != prepared.features:
        raise UserError(paths.model, "was trained on other features than data/prepared/speech", "rerun `dvc repro train@speech`")
    models = {fold_name(e["held_out"]): SpeechModel.load(paths.model / e["folder"]) for e in main.info["folds"]}
    held_out = [tuple(e["held_out"]) for e in main.info["folds"]]
    scored = [f for f in held_out if len(f) == 1] if main.info["loso"] else held_out[:1]
    comparison = compare(
        prepared.corpus, scored, lambda fold: models[fold_name(fold)], params.snr_db, params.noise_seed,
        params.mfcc, ClassifierParams.model_validate(main.info["classifier"]), prepared.features.sample_rate,
    )
    source = f"{prepared.dataset['root']} ({'Speech Commands' if prepared.dataset['kind'] == 'speechcommands' else 'labelled folder'})"
    if Path(prepared.dataset["root"]).resolve().is_relative_to(paths.raw.resolve()):
        source = f"FSDD v1.0.10 ({len(set(prepared.corpus.speakers.tolist()))} speakers) from fetch@speech, {prepared.dataset['root']}"
    comparison.results(source, sorted({s for f in scored for s in f})).write(paths.metrics)
    scored_models = {name: models[name] for name in map(fold_name, scored)}
    with atomic_dir(paths.figures) as figures, atomic_dir(paths.plots) as plots:
        text = build_report(figures, plots, comparison, prepared.corpus, main, scored_models, params.examples, params.noise_seed, source)
    write_text(paths.report, text)


if __name__ == "__main__":
    run_stage("speech", fetch, prepare, train, evaluate)
