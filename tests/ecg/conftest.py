"""A small real codec trained for a few seconds on real MIT-BIH windows, shared by the ECG tests."""
import pytest
import wfdb

from latente.domains.ecg.data import save_signals
from latente.domains.ecg.records import read_lead
from latente.domains.ecg.train import train_codec
from latente.shared.models import AutoencoderConfig, load_model
from latente.shared.trainer import TrainerConfig

TINY_MODEL = AutoencoderConfig(name="conv_ae", channels=(8, 8), strides=(2, 4), kernel_size=5, latent_channels=2, code_bits=6, rate_weight=0.01, norm=None)
WINDOW = 256


@pytest.fixture(scope="session")
def tiny_codec(tmp_path_factory, mirror):
    """Model folder of a codec trained 2 epochs on 60 s of records 105 and 116."""
    root = tmp_path_factory.mktemp("ecg_codec")
    fs = 360
    signals = {r: read_lead(mirror / "ecg/records" / r, 0).mv[: 60 * fs] for r in ("105", "116")}
    prepared = root / "prepared"
    prepared.mkdir()
    save_signals({k: v[: 50 * fs] for k, v in signals.items()}, prepared / "train.safetensors")
    save_signals({k: v[50 * fs :] for k, v in signals.items()}, prepared / "validation.safetensors")
    train_codec(TINY_MODEL, TrainerConfig(epochs=2, batch_size=32, lr=3e-3, patience=None), WINDOW, None, prepared,
                root / "model", root / "ckpt", None, {"fs": 360.0, "scale_mv": 1.0, "window": WINDOW})
    return root / "model"


@pytest.fixture(scope="session")
def loaded_codec(tiny_codec):
    return load_model(tiny_codec, domain="ecg")


@pytest.fixture
def records(mirror):
    return mirror / "ecg" / "records"


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
