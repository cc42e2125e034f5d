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
from latente.domains.ecg.params import SHIFT_LIMIT
from latente.shared.cli import (
    float_option, force_option, input_file, input_folder, int_option, json_option, model_folder, model_option, output_file,
)
from latente.shared.errors import UserError

if TYPE_CHECKING:
    from latente.domains.ecg.model import LoadedCodec
    from latente.domains.ecg.params import OperatingPoint

DEFAULT_MODEL = Path("models") / DOMAIN / "A"

MAX_ERROR_MAX = 2047  # ADC units: the whole range of MIT-BIH's 11-bit converter; a wider bound guarantees nothing
CR_MAX = 1000.0  # far beyond any useful ECG compression ratio


def cr_option():
    return float_option(None, "--cr", low=1.0, high=CR_MAX, help="rate control: the finest step whose file reaches this CR")


def prdn_option():
    return float_option(None, "--prdn", low=0.0, high=100.0, open_low=True,
                        help="rate control: the coarsest step whose PRDN (%) stays within this")


def shift_option():
    return int_option(None, "--shift", low=-SHIFT_LIMIT, high=SHIFT_LIMIT, why="the steps a .ltc header holds",
                      help="fixed quantisation step exp(step·shift) (default 0: the step the model trained at)")


def max_error_option(help: str):
    return int_option(0, "--max-error", low=0, high=MAX_ERROR_MAX, why="ADC units; 2047 spans an 11-bit ADC", help=help)


app = typer.Typer(no_args_is_help=True, help="ECG compression with a learned codec (MIT-BIH / any WFDB record).")


def _model(folder: Path) -> LoadedCodec:
    from latente.domains.ecg.model import load_codec

    return load_codec(folder)


def _point(model: Path, cr: Optional[float], prdn: Optional[float], shift: Optional[int], max_error: int) -> OperatingPoint:
    """The rate setting the options give: at most one of --cr, --prdn, --shift (none: shift 0)."""
    from latente.domains.ecg.params import OperatingPoint

    given = {name: value for name, value in (("--cr", cr), ("--prdn", prdn), ("--shift", shift)) if value is not None}
    if len(given) > 1:
        raise UserError(" and ".join(given), "set the rate in two ways", "give one of --cr, --prdn, --shift")
    return OperatingPoint(model=model.name, cr=cr, prdn=prdn, shift=shift if given else 0, max_error=max_error)


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
    cr: Optional[float] = cr_option(),
    prdn: Optional[float] = prdn_option(),
    shift: Optional[int] = shift_option(),
    max_error: int = max_error_option("guaranteed max |error| in ADC units (0: no residual)"),
    force: bool = force_option("OUT"),
) -> None:
    """Compress one lead of a WFDB record."""
    from latente.domains.ecg import model as codec
    from latente.domains.ecg.data import read_lead
    from latente.domains.ecg.evaluation import Codec
    from latente.domains.ecg.metrics import compression_ratio
    from latente.shared.io import write_bytes

    _check_record(record)
    output_file(out, force, "OUT")
    folder = model_folder(model, DEFAULT_MODEL, DOMAIN)
    point = _point(folder, cr, prdn, shift, max_error)
    loaded = _model(folder)
    signal = read_lead(record, lead, min_samples=loaded.preprocessing["window"])
    analysis = codec.analyse(loaded, signal)
    chosen = Codec(folder.name, loaded, point).shift(signal, analysis)
    data = codec.compress(loaded, signal, chosen, max_error, analysis)
    write_bytes(out, data, force=force)
    ratio = compression_ratio(len(signal.adc), len(data))
    print(f"{out}: {len(data)} bytes, CR {ratio:.2f}, shift {chosen} ({signal.seconds:.0f} s of lead {signal.name})", file=sys.stderr)


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
    cr: Optional[float] = cr_option(),
    prdn: Optional[float] = prdn_option(),
    shift: Optional[int] = shift_option(),
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
    point = _point(model, cr, prdn, shift, max_error)
    loaded = _model(model)
    stems = list_records(records, names.split(",") if names else None)
    cases = load_cases(stems, lead, loaded.preprocessing["window"])
    results = Results(DOMAIN, str(records), [s.name for s in stems])
    evaluate_codecs(cases, [Codec(model.name, loaded, point)], results)
    if json_out:
        results.print_json()
    else:
        for row in results.rows:
            if "record" not in row["condition"]:
                m = row["metrics"]
                print(f"{row['method']:9s} CR {m.get('cr', float('nan')):6.2f}  PRD {m.get('prd', float('nan')):6.2f}  PRDN {m.get('prdn', float('nan')):6.2f}  R-peak F1 {m.get('rpeak_f1')}")
