"""ECG data: WFDB records read and written one lead at a time (with user-facing errors), the
prepare stage's train/validation signals, and the training windows cut from them."""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import wfdb
from safetensors.torch import load_file, save_file
from torch.utils.data import Dataset

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.params import PrepareParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, refuse_existing, write_json
from latente.shared.stage import DomainPaths


@dataclass
class Lead:
    """One lead of a record in integer ADC units, with what is needed to write it back."""

    record: str
    name: str
    adc: np.ndarray  # int64 ADC values
    fs: float
    gain: float
    baseline: int
    units: str

    @property
    def mv(self) -> np.ndarray:
        return (self.adc - self.baseline) / self.gain

    @property
    def seconds(self) -> float:
        return len(self.adc) / self.fs


def record_stem(path: str | Path) -> Path:
    """Accept `dir/100`, `dir/100.hea` or `dir/100.dat` and return `dir/100`."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".hea", ".dat", ".atr") else path


def read_lead(path: str | Path, lead: str | int = 0, min_samples: int = 1, seconds: float | None = None) -> Lead:
    """Read one lead by name (e.g. "MLII") or index, optionally only its first `seconds`.

    Every failure is a UserError naming the file.
    """
    stem = record_stem(path)
    header = stem.with_suffix(".hea")
    if not header.is_file():
        raise UserError(header, "WFDB header not found")
    try:
        header_fs = wfdb.rdheader(str(stem)).fs
        rec = wfdb.rdrecord(str(stem), sampto=int(seconds * header_fs) if seconds else None)
    except FileNotFoundError as err:
        raise UserError(err.filename or stem.with_suffix(".dat"), "signal file not found") from None
    except Exception as err:  # wfdb raises many types for malformed files
        raise UserError(header, f"not a readable WFDB record ({type(err).__name__}: {err})") from None
    names = list(rec.sig_name or [])
    if isinstance(lead, str) and not lead.isdigit():
        if lead not in names:
            raise UserError(header, f"no lead named '{lead}'", f"leads in this record: {', '.join(names)}")
        index = names.index(lead)
    else:
        index = int(lead)
        if not 0 <= index < len(names):
            raise UserError(header, f"no lead {index}", f"leads in this record: {', '.join(names)}")
    signal = rec.p_signal[:, index]
    if np.isnan(signal).any():
        first = int(np.flatnonzero(np.isnan(signal))[0])
        raise UserError(stem.with_suffix(".dat"), f"lead '{names[index]}' has NaN (invalid) samples, first at sample {first}")
    if len(signal) < min_samples:
        raise UserError(stem.with_suffix(".dat"), f"record has {len(signal)} samples, fewer than one window ({min_samples})")
    gain, baseline = float(rec.adc_gain[index]), int(rec.baseline[index])
    adc = np.rint(signal * gain + baseline).astype(np.int64)
    return Lead(stem.name, names[index], adc, float(rec.fs), gain, baseline, rec.units[index])


def write_lead(lead: Lead, out: str | Path, force: bool = False) -> Path:
    """Write a one-lead WFDB record (`OUT.hea` + `OUT.dat`, format 16) atomically."""
    stem = record_stem(out)
    for suffix in (".hea", ".dat"):
        refuse_existing(stem.with_suffix(suffix), force)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=stem.parent, prefix=".wfdb.") as tmp:
        wfdb.wrsamp(
            stem.name, fs=lead.fs, units=[lead.units], sig_name=[lead.name],
            d_signal=lead.adc.astype(np.int64).reshape(-1, 1), fmt=["16"],
            adc_gain=[lead.gain], baseline=[lead.baseline], write_dir=tmp,
        )
        # .dat first, then .hea: a reader never sees a header without its signal
        for suffix in (".dat", ".hea"):
            shutil.move(str(Path(tmp) / f"{stem.name}{suffix}"), stem.with_suffix(suffix))
    return stem


def list_records(folder: str | Path, names: list[str] | None = None) -> list[Path]:
    """Record stems in `folder` (all `.hea` files, or the given names)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "records folder not found")
    if names:
        stems = [folder / n for n in names]
        for stem in stems:
            if not stem.with_suffix(".hea").is_file():
                raise UserError(stem.with_suffix(".hea"), "WFDB header not found")
        return stems
    stems = sorted(p.with_suffix("") for p in folder.glob("*.hea"))
    if not stems:
        raise UserError(folder, "no WFDB records (.hea files) found")
    return stems


BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")

AAMI_CLASSES = {"N": "NLRBej", "S": "AaJSn", "V": "VrE", "F": "F", "Q": "/fQ?"}
"""The ANSI/AAMI EC57 beat classes over the MIT-BIH symbols: N normal and bundle-branch-block beats
(and their escapes), S supraventricular ectopic, V ventricular ectopic, F fusion of ventricular and
normal, Q paced, fusion of paced and normal, and unclassifiable."""


def aami_class(symbol: str) -> str:
    """The AAMI class (N, S, V, F, Q) of a beat annotation symbol."""
    for name, symbols in AAMI_CLASSES.items():
        if symbol in symbols:
            return name
    raise ValueError(f"{symbol!r} is not a beat annotation symbol")


def read_beats(stem: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Reference beats (sample positions, symbols) from the `.atr` file, or None if absent."""
    if not stem.with_suffix(".atr").is_file():
        return None
    try:
        ann = wfdb.rdann(str(stem), "atr")
    except Exception as err:
        raise UserError(stem.with_suffix(".atr"), f"unreadable annotations ({err})") from None
    keep = [i for i, sym in enumerate(ann.symbol) if sym in BEAT_SYMBOLS]
    return np.asarray(ann.sample)[keep].astype(np.int64), np.asarray(ann.symbol)[keep]


def normalising_gain(lead: Lead, reference_sd_mv: float) -> float:
    """The factor that scales a lead to `reference_sd_mv` standard deviation, rounded to float32 (as
    a file's header stores it, so encoder and decoder use the same number).

    The codec's loss is squared error in these units, so every record weighs by its own energy, as
    PRDN does; unnormalised, a small lead (record 100's MLII is half the size of the training
    records' MLII leads) is coded as if its detail did not matter. A flat lead's deviation counts
    as one ADC unit.
    """
    sd_mv = max(float(lead.adc.std()), 1.0) / lead.gain
    return float(np.float32(reference_sd_mv / sd_mv))


def save_signals(signals: dict[str, np.ndarray], path: Path) -> None:
    """Leads in model units (normalised mV), one float32 tensor per record."""
    save_file({name: torch.from_numpy(s.astype(np.float32)) for name, s in signals.items()}, str(path))


def load_signals(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(path, "prepared signals not found", f"run `dvc repro prepare@{DOMAIN}` first")
    return load_file(str(path))


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """Each training lead normalised to the records' mean standard deviation, then split in time
    (the last fraction validates)."""
    train, validation, meta = {}, {}, {}
    leads = {name: read_lead(paths.raw / "records" / name, params.lead, seconds=params.seconds) for name in params.train_records}
    reference_sd_mv = float(np.mean([lead.adc.std() / lead.gain for lead in leads.values()]))
    for name, lead in leads.items():
        gain = normalising_gain(lead, reference_sd_mv)
        signal = lead.mv * gain
        cut = int(len(signal) * (1 - params.validation_fraction))
        train[name], validation[name] = signal[:cut], signal[cut:]
        meta[name] = {"lead": lead.name, "fs": lead.fs, "samples": len(signal), "normalising_gain": gain}
    fs = {m["fs"] for m in meta.values()}
    if len(fs) != 1:
        raise ValueError(f"training records have different sampling rates: {fs}")
    with atomic_dir(paths.prepared) as tmp:
        save_signals(train, tmp / "train.safetensors")
        save_signals(validation, tmp / "validation.safetensors")
        write_json(tmp / "prepared.json", {"records": meta, "fs": fs.pop(), "reference_sd_mv": reference_sd_mv,
                                           "validation_fraction": params.validation_fraction, "seconds": params.seconds})


class WindowDataset(Dataset):
    """All windows of `length` samples, `hop` apart, over every signal, as [1, length]: a fixed grid,
    so an epoch is deterministic."""

    def __init__(self, signals: dict[str, torch.Tensor], length: int, hop: int | None = None):
        self.signals = [signals[k] for k in sorted(signals)]
        self.length = length
        hop = hop or length
        self.index = [
            (i, start)
            for i, s in enumerate(self.signals)
            for start in range(0, len(s) - length + 1, hop)
        ]
        if not self.index:
            raise UserError(f"{DOMAIN}.train.window", f"no signal is as long as one window ({length} samples)")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> torch.Tensor:
        i, start = self.index[item]
        return self.signals[i][start : start + self.length].unsqueeze(0)
