"""The ECG stages run once with tests/tiny.py's params on real MIT-BIH records: a tiny codec "A",
trained for a few seconds, shared by the ECG tests; and `recoded`, a .ltc file with header fields
rewritten under a valid CRC, as a crafted or buggy writer would make it."""
import contextlib
import struct
import zlib

import pytest
import wfdb

from latente.domains.ecg import DOMAIN
from latente.domains.ecg.data import prepare, read_lead
from latente.domains.ecg.evaluation import evaluate
from latente.domains.ecg.params import EvaluateParams, FetchParams, PrepareParams, TrainParams
from latente.domains.ecg.sources import fetch
from latente.domains.ecg.model import load_codec
from latente.domains.ecg.training import train
from latente.shared.stage import DomainPaths
from tiny import ECG


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mirror) -> DomainPaths:
    """fetch → prepare → train with the tiny ECG params, the mirror's records as a local source."""
    paths = DomainPaths(DOMAIN, tmp_path_factory.mktemp("ecg_run"))
    fetch(FetchParams.model_validate({"source": {**ECG["fetch"]["source"], "kind": "local", "location": str(mirror / DOMAIN)}}), paths)
    prepare(PrepareParams.model_validate(ECG["prepare"]), paths)
    train(TrainParams.model_validate(ECG["train"]), paths)
    return paths


@pytest.fixture(scope="session")
def tiny_evaluated(tiny_run, repo_root) -> DomainPaths:
    """The tiny run after its evaluate stage (the report reads `references.ecg` of the repo's params.yaml)."""
    with contextlib.chdir(repo_root):
        evaluate(EvaluateParams.model_validate(ECG["evaluate"]), tiny_run)
    return tiny_run


@pytest.fixture(scope="session")
def tiny_codec(tiny_run):
    """The folder of the tiny codec "A"."""
    return tiny_run.model / "A"


@pytest.fixture(scope="session")
def loaded_codec(tiny_codec):
    """The tiny codec loaded by the one codec loader (transforms, hyperprior, integer tables)."""
    return load_codec(tiny_codec)


@pytest.fixture(scope="session")
def lead(mirror):
    """The first 30 s of record 100's MLII lead."""
    full = read_lead(mirror / DOMAIN / "records" / "100", "MLII")
    full.adc = full.adc[: 30 * 360]
    return full


@pytest.fixture
def records(mirror):
    return mirror / DOMAIN / "records"


@pytest.fixture
def crop_record(records, tmp_path):
    """Write record 100 cut to its first `seconds` as a new WFDB record named `name`."""

    def crop(name: str, seconds: float):
        rec = wfdb.rdrecord(str(records / "100"), sampto=int(seconds * 360), physical=False)
        wfdb.wrsamp(name, fs=rec.fs, units=rec.units, sig_name=rec.sig_name, d_signal=rec.d_signal,
                    fmt=rec.fmt, adc_gain=rec.adc_gain, baseline=rec.baseline, write_dir=str(tmp_path))
        return tmp_path / name

    return crop


@pytest.fixture
def short_record(crop_record):
    return crop_record("r100", 20)


# The fixed part of a version-3 .ltc header, written out here from the format's description
# (domains/ecg/model.py) rather than imported, so a change to the format shows up as a failing test.
LTC_FIELDS = ("magic", "version", "has_residual", "fs", "gain", "baseline", "n_samples", "shift", "channels", "code_length",
              "side_length", "max_error", "model_id", "side_bytes", "latent_bytes", "residual_bytes", "residual_scale",
              "input_gain")
LTC_FIXED = struct.Struct("<4sBBffiIbBIIH16sIIIff")


def recoded(data: bytes, name_byte: int | None = None, **changes) -> bytes:
    """`data` (a real .ltc) with header fields changed (a value, or a function of the old fields) and a valid CRC."""
    fields = dict(zip(LTC_FIELDS, LTC_FIXED.unpack(data[: LTC_FIXED.size])))
    fields.update({k: (v(fields) if callable(v) else v) for k, v in changes.items()})
    rest = bytearray(data[LTC_FIXED.size : -4])
    if name_byte is not None:
        rest[1] = name_byte  # the first byte of the lead name (after its length byte)
    body = LTC_FIXED.pack(*fields.values()) + bytes(rest)
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.fixture(scope="session")
def recode():
    """`recoded` for the tests of this folder."""
    return recoded
