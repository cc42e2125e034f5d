"""The wavelet baseline codec on a real record."""
import numpy as np

from latente.domains.ecg import baselines


def test_wavelet_codec_round_trip(lead):
    data = baselines.encode(lead.adc, 1024, step=10.0)
    decoded = baselines.decode(data)
    assert decoded.shape == lead.adc.shape
    # dead-zone quantiser: coefficient error ≤ step; the signal error stays within a few steps (6 × 10)
    assert np.abs(decoded - lead.adc).max() < 60
    assert len(baselines.encode(lead.adc, 1024, step=40.0)) < len(data)
    lossless_ish = baselines.decode(baselines.encode(lead.adc, 1024, step=0.05))
    assert np.abs(lossless_ish - lead.adc).max() <= 1
