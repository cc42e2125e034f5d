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
from latente.shared.errors import UserError

if TYPE_CHECKING:
    from latente.shared.models import LoadedModel

DEFAULT_MODEL = Path("models") / DOMAIN / "A"

app = typer.Typer(no_args_is_help=True, help="ECG compression with a learned codec (MIT-BIH / any WFDB record).")


def _model(folder: Path) -> LoadedModel:
    from latente.shared.models import load_model

    return load_model(folder, domain=DOMAIN)


def _bits(loaded: LoadedModel, bits: Optional[int]) -> int:
    return bits if bits is not None else loaded.model.config.code_bits


def _read_input(path: Path) -> bytes:
    if not path.is_file():
        raise UserError(path, "file not found")
    return path.read_bytes()


@app.command()
def compress(
    record: Path = typer.Argument(..., help="WFDB record (path without extension, or its .hea)"),
    out: Path = typer.Argument(..., help="compressed file to write (.ltc)"),
    model: Path = typer.Option(DEFAULT_MODEL, help="trained ECG model folder"),
    lead: str = typer.Option("0", help="lead name (e.g. MLII) or index"),
    bits: Optional[int] = typer.Option(None, help="bits per latent code (default: the model's)"),
    max_error: int = typer.Option(0, help="guaranteed max |error| in ADC units (0: no residual)"),
    force: bool = typer.Option(False, help="overwrite OUT if it exists"),
) -> None:
    """Compress one lead of a WFDB record."""
    from latente.domains.ecg import model as codec
    from latente.domains.ecg.data import read_lead
    from latente.domains.ecg.metrics import compression_ratio
    from latente.shared.io import write_bytes

    loaded = _model(model)
    if out.exists() and not force:
        raise UserError(out, "already exists", "pass --force to overwrite it")
    signal = read_lead(record, lead, min_samples=loaded.preprocessing["window"])
    data = codec.compress(loaded, signal, _bits(loaded, bits), max_error)
    write_bytes(out, data, force=force)
    cr = compression_ratio(len(signal.adc), len(data))
    print(f"{out}: {len(data)} bytes, CR {cr:.2f} ({signal.seconds:.0f} s of lead {signal.name})", file=sys.stderr)


@app.command()
def decompress(
    compressed: Path = typer.Argument(..., help="file written by `latente ecg compress`"),
    out_record: Path = typer.Argument(..., help="WFDB record to write (OUT.hea + OUT.dat)"),
    model: Path = typer.Option(DEFAULT_MODEL, help="the model folder that compressed it"),
    force: bool = typer.Option(False, help="overwrite the record if it exists"),
) -> None:
    """Decode a compressed file back to a WFDB record readable by wfdb.rdrecord."""
    from latente.domains.ecg import model as codec
    from latente.domains.ecg.data import record_stem, write_lead

    data = _read_input(compressed)
    codec.read_header(data, str(compressed))
    stem = record_stem(out_record)
    decoded = codec.decompress(_model(model), data, record=stem.name, source=str(compressed))
    write_lead(decoded, stem, force=force)
    print(f"{stem}.hea/.dat: {len(decoded.adc)} samples of lead {decoded.name}", file=sys.stderr)


@app.command()
def evaluate(
    records: Path = typer.Option(..., help="folder of WFDB records"),
    names: Optional[str] = typer.Option(None, help="comma-separated record names (default: all)"),
    model: Path = typer.Option(DEFAULT_MODEL, help="trained ECG model folder"),
    lead: str = typer.Option("0", help="lead name or index"),
    bits: Optional[int] = typer.Option(None, help="bits per latent code (default: the model's)"),
    max_error: int = typer.Option(0, help="residual bound in ADC units (0: none)"),
    json_out: bool = typer.Option(False, "--json", help="print the results JSON on stdout"),
) -> None:
    """CR, PRD, PRDN, SNR, QS and R-peak F1 of the model and of the wavelet baseline at matched CR."""
    from latente.domains.ecg.data import list_records
    from latente.domains.ecg.evaluation import Codec, evaluate_codecs, load_cases
    from latente.shared.results import Results

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
