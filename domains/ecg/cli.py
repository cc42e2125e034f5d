"""`latente ecg compress | decompress | evaluate`.

Module-level imports stay light so `latente --help` starts fast; each command imports the
codec (torch, wfdb) when it runs.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from latente.domains.ecg import DOMAIN
from latente.shared.cli import (
    force_option, input_file, input_folder, int_option, json_option, model_folder, model_option, output_file,
)
from latente.shared.errors import UserError

if TYPE_CHECKING:
    from latente.shared.models import LoadedModel

DEFAULT_MODEL = Path("models") / DOMAIN / "A"

BITS_MIN, BITS_MAX = 2, 16  # AutoencoderConfig.code_bits: what a codec can quantise to
MAX_ERROR_MAX = 2047  # ADC units: the whole range of MIT-BIH's 11-bit converter; a wider bound guarantees nothing


def bits_option():
    return int_option(None, "--bits", low=BITS_MIN, high=BITS_MAX, why="the code widths an ECG codec supports",
                      help="bits per latent code (default: the model's)")


def max_error_option(help: str):
    return int_option(0, "--max-error", low=0, high=MAX_ERROR_MAX, why="ADC units; 2047 spans an 11-bit ADC", help=help)


app = typer.Typer(no_args_is_help=True, help="ECG compression with a learned codec (MIT-BIH / any WFDB record).")


def _model(folder: Path) -> LoadedModel:
    from latente.shared.models import load_model

    return load_model(folder, domain=DOMAIN)


def _bits(loaded: LoadedModel, bits: Optional[int]) -> int:
    return bits if bits is not None else loaded.model.config.code_bits


def _read_input(path: Path) -> bytes:
    return input_file(path, "COMPRESSED", "compressed file").read_bytes()


def _check_record(record: Path) -> None:
    """What `read_lead` would misreport: a folder, or a compressed file given where a record goes."""
    if record.is_dir():
        raise UserError(record, "is a folder, not a WFDB record", "give a record path without extension (e.g. records/100) or its .hea file")
    if record.suffix == ".ltc":
        raise UserError(record, "is a compressed file, not a WFDB record", "decode it with `latente ecg decompress`")


def _check_record_output(out_record: Path, force: bool) -> Path:
    """OUT_RECORD.hea and OUT_RECORD.dat can be written; returns the record stem."""
    from latente.domains.ecg.data import record_stem

    if out_record.is_dir():
        raise UserError(out_record, "is a folder",
                        f"OUT_RECORD names the record to write, e.g. {out_record / 'decoded'} (writes decoded.hea and decoded.dat)")
    stem = record_stem(out_record)
    for suffix in (".hea", ".dat"):
        output_file(stem.with_suffix(suffix), force, "OUT_RECORD")
    return stem


@app.command()
def compress(
    record: Path = typer.Argument(..., help="WFDB record (path without extension, or its .hea)"),
    out: Path = typer.Argument(..., help="compressed file to write (.ltc)"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "trained ECG model folder"),
    lead: str = typer.Option("0", help="lead name (e.g. MLII) or index"),
    bits: Optional[int] = bits_option(),
    max_error: int = max_error_option("guaranteed max |error| in ADC units (0: no residual)"),
    force: bool = force_option("OUT"),
) -> None:
    """Compress one lead of a WFDB record."""
    from latente.domains.ecg import model as codec
    from latente.domains.ecg.data import read_lead
    from latente.domains.ecg.metrics import compression_ratio
    from latente.shared.io import write_bytes

    _check_record(record)
    output_file(out, force, "OUT")
    loaded = _model(model_folder(model, DEFAULT_MODEL, DOMAIN))
    signal = read_lead(record, lead, min_samples=loaded.preprocessing["window"])
    data = codec.compress(loaded, signal, _bits(loaded, bits), max_error)
    write_bytes(out, data, force=force)
    cr = compression_ratio(len(signal.adc), len(data))
    print(f"{out}: {len(data)} bytes, CR {cr:.2f} ({signal.seconds:.0f} s of lead {signal.name})", file=sys.stderr)


@app.command()
def decompress(
    compressed: Path = typer.Argument(..., help="file written by `latente ecg compress`"),
    out_record: Path = typer.Argument(..., help="WFDB record to write (OUT.hea + OUT.dat)"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "the model folder that compressed it"),
    force: bool = force_option("the record"),
) -> None:
    """Decode a compressed file back to a WFDB record readable by wfdb.rdrecord."""
    from latente.domains.ecg import model as codec
    from latente.domains.ecg.data import write_lead

    data = _read_input(compressed)
    codec.read_header(data, str(compressed))
    stem = _check_record_output(out_record, force)
    decoded = codec.decompress(_model(model_folder(model, DEFAULT_MODEL, DOMAIN)), data, record=stem.name, source=str(compressed))
    write_lead(decoded, stem, force=force)
    print(f"{stem}.hea/.dat: {len(decoded.adc)} samples of lead {decoded.name}", file=sys.stderr)


@app.command()
def evaluate(
    records: Path = typer.Option(..., help="folder of WFDB records"),
    names: Optional[str] = typer.Option(None, help="comma-separated record names (default: all)"),
    model: Optional[Path] = model_option(DEFAULT_MODEL, "trained ECG model folder"),
    lead: str = typer.Option("0", help="lead name or index"),
    bits: Optional[int] = bits_option(),
    max_error: int = max_error_option("residual bound in ADC units (0: none)"),
    json_out: bool = json_option(),
) -> None:
    """CR, PRD, PRDN, SNR, QS and R-peak F1 of the model and of the wavelet baseline at matched CR."""
    from latente.domains.ecg.data import list_records
    from latente.domains.ecg.evaluation import Codec, evaluate_codecs, load_cases
    from latente.shared.results import Results

    if records.is_file():
        stem = Path(records.name).with_suffix("") if records.suffix in (".hea", ".dat", ".atr") else Path(records.name)
        raise UserError(records, "is a file, not a folder",
                        f"--records takes the folder of WFDB records; for this record alone: --records {records.parent} --names {stem}")
    input_folder(records, "--records", "folder of WFDB records")
    model = model_folder(model, DEFAULT_MODEL, DOMAIN)
    loaded = _model(model)
    stems = list_records(records, names.split(",") if names else None)
    cases = load_cases(stems, lead, loaded.preprocessing["window"])
    results = Results(DOMAIN, str(records), [s.name for s in stems])
    evaluate_codecs(cases, [Codec(model.name, loaded, _bits(loaded, bits), max_error)], results)
    if json_out:
        results.print_json()
    else:
        for row in results.rows:
            if "record" not in row["condition"]:
                m = row["metrics"]
                print(f"{row['method']:9s} CR {m.get('cr', float('nan')):6.2f}  PRD {m.get('prd', float('nan')):6.2f}  PRDN {m.get('prdn', float('nan')):6.2f}  R-peak F1 {m.get('rpeak_f1')}")
