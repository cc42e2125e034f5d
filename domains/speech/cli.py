"""`latente speech ...`: embed recordings with a trained model, or compare its codes with MFCCs on a labelled folder."""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import List, Optional

import typer

from latente.domains.speech import DOMAIN
from latente.shared.cli import (
    force_option, input_file, input_folder, json_option, model_folder, model_option, output_file, real_number,
)

DEFAULT_MODEL = Path("models") / DOMAIN
SNR_MIN, SNR_MAX = -100.0, 100.0  # dB: beyond ±100 dB the noise is either all there is or nothing at all
RIFF_CHUNK = 8  # a RIFF chunk header: 4-byte id, 4-byte little-endian size


def truncation(path: Path) -> str | None:
    """What is missing from a WAV whose data chunk declares more bytes than the file holds, or None.

    Audio libraries read such a file without a word and return only the samples that are there,
    so a recording cut off by a full disk or an interrupted copy would be embedded as if complete.
    Only RIFF/WAVE files are checked; anything else is left to the audio reader.
    """
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = path.stat().st_size
        offset = 12
        while offset + RIFF_CHUNK <= size:
            handle.seek(offset)
            chunk = handle.read(RIFF_CHUNK)
            declared = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                held = size - offset - RIFF_CHUNK
                if held >= declared:
                    return None
                return (f"truncated: its header declares {declared} bytes of audio but the file holds {held} "
                        f"({100 * held / declared:.0f} %); only those are used")
            offset += RIFF_CHUNK + declared + declared % 2  # chunks are padded to an even size
    return None

app = typer.Typer(no_args_is_help=True, help="Spoken words: spectrogram-autoencoder codes as features, compared with MFCCs.")


@app.command()
def embed(
    inputs: List[Path] = typer.Argument(..., help="WAV files, or folders searched recursively for .wav files."),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "speech model folder"),
    out: Path = typer.Option(..., "--out", help="CSV to write: file, predicted label, then the code z0, z1, …"),
    force: bool = force_option("--out"),
) -> None:
    """Write one row per file: its code and the label the model's classifier predicts."""
    from latente.domains.speech.data import audio_files, load_audio, warn
    from latente.domains.speech.model import SpeechModel
    from latente.shared.io import write_text

    output_file(out, force, "--out")
    files = audio_files(inputs)
    speech = SpeechModel.load(model_folder(model, DEFAULT_MODEL, DOMAIN))
    recordings = []
    for path in files:
        cut = truncation(path)
        if cut:
            warn(path, cut)
        samples, clipped = load_audio(path, speech.features.sample_rate)
        if clipped:
            warn(path, "audio is clipped (runs of full-scale samples); its code may be unreliable")
        recordings.append(samples)
    codes = speech.encode(recordings).numpy()
    predicted = speech.classifier.predict(codes)
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(["file", "predicted", *[f"z{k}" for k in range(codes.shape[1])]])
    for path, label, code in zip(files, predicted, codes):
        writer.writerow([str(path), label, *[f"{v:.6g}" for v in code]])
    write_text(out, table.getvalue(), force=force)
    print(f"wrote {len(files)} codes of {codes.shape[1]} dims to {out}", file=sys.stderr)


@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="Folder of labelled WAV files (two or more speakers)."),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "speech model folder"),
    json_output: bool = json_option(),
    pattern: Optional[str] = typer.Option(None, "--pattern", help="File-name regex with groups (?P<label>…) and (?P<speaker>…); default: the model's."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="CSV with columns file,label,speaker (files relative to --data) instead of a pattern."),
    snr: Optional[List[float]] = typer.Option(
        None, "--snr", metavar="DB", parser=real_number("--snr", SNR_MIN, SNR_MAX, why="dB"),
        help=f"White-noise SNRs in dB to test (repeatable, each from {SNR_MIN:g} to {SNR_MAX:g}); default 20, 10, 0."),
) -> None:
    """Codes vs MFCCs with the model's classifier protocol, leaving each speaker of the folder out in turn."""
    from latente.domains.speech.data import Corpus, labelled_folder, warn
    from latente.domains.speech.evaluation import compare
    from latente.domains.speech.model import SpeechModel
    from latente.domains.speech.params import EvaluateParams, check_label_pattern
    from latente.domains.speech.report import condition_name, pct, per_speaker_table
    from latente.shared.errors import UserError
    from latente.shared.report import markdown_table

    if pattern is not None:
        try:
            check_label_pattern(pattern)
        except ValueError as err:
            raise UserError("--pattern", str(err)) from None
    input_folder(data, "--data", "folder of WAV files")
    if labels is not None:
        input_file(labels, "--labels", "CSV file")
    speech = SpeechModel.load(model_folder(model, DEFAULT_MODEL, DOMAIN))
    utterances = labelled_folder(data, pattern or speech.label_pattern, labels)
    for utterance in utterances:
        cut = truncation(utterance.path)
        if cut:
            warn(utterance.path, cut)
    corpus = Corpus.read(utterances, speech.features.sample_rate, root=data)
    speakers = sorted(set(corpus.speakers.tolist()))
    if len(speakers) < 2:
        raise UserError(data, f"holds recordings of only one speaker ({speakers[0]})", "leave-one-speaker-out needs at least two")
    defaults = EvaluateParams()
    comparison = compare(
        corpus, [(s,) for s in speakers], lambda fold: speech, snr if snr else defaults.snr_db, defaults.noise_seed,
        defaults.mfcc, speech.training.classifier, speech.features.sample_rate,
    )
    heard = speech.info.get("trained_speakers", [])
    typer.echo(
        "note: this protocol does not retrain the encoder: every fold uses the saved model's encoder and refits only "
        "the classifiers (codes and MFCC alike) on the other speakers of --data"
        + (f"; the encoder heard {', '.join(s for s in speakers if s in heard)} in training, so their rows are not speaker-independent"
           if any(s in heard for s in speakers) else "") + ". `dvc repro` retrains it per fold.",
        err=True,
    )
    results = comparison.results(str(data), speakers)
    if json_output:
        results.print_json()
        return
    rows = [(condition_name(c), pct(comparison.mean("model", c)["accuracy"]), pct(comparison.mean("mfcc", c)["accuracy"])) for c in comparison.conditions]
    typer.echo(markdown_table(["condition", f"code ({comparison.dims['model']} dims)", f"MFCC ({comparison.dims['mfcc']} dims)"], rows))
    typer.echo(per_speaker_table(comparison))
