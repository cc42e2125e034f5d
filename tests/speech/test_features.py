"""Log-mel (the model's input) and MFCC (the baseline) on real FSDD recordings, against computations written out by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from latente.domains.speech import DOMAIN
from latente.domains.speech.baselines import Mfcc
from latente.domains.speech.data import GriffinLimInverter, LogMel, Normaliser, fix_duration, load_audio, noise_floor, noisy
from latente.domains.speech.params import FeatureParams, MfccParams


@pytest.fixture
def clips(mirror):
    folder = mirror / DOMAIN / "recordings"
    return [load_audio(folder / name, 8000)[0] for name in ("0_jackson_0.wav", "7_lucas_12.wav", "9_nicolas_3.wav")]


def by_hand(samples: torch.Tensor, p: FeatureParams) -> torch.Tensor:
    """STFT power → HTK mel filters → (less each band's 0.2 quantile over the recorded frames, when
    subtract_floor is set) → 10·log10 → floor at max − top_db → minus the max."""
    x = fix_duration(samples, p.samples, p.align, p.hop_length, p.voice_smoothing, p.voice_margin_db)
    stft = torch.stft(x, p.n_fft, p.hop_length, window=torch.hann_window(p.n_fft), center=True, pad_mode="reflect", return_complex=True)
    filters = AF.melscale_fbanks(p.n_fft // 2 + 1, 0.0, p.sample_rate / 2, p.n_mels, p.sample_rate)
    mel = filters.T @ stft.abs() ** 2
    if p.subtract_floor:
        mel = mel - torch.quantile(mel[:, mel.sum(0) > 0], 0.2, dim=1, keepdim=True)
    db = 10 * torch.log10(mel.clamp_min(1e-10))
    db = torch.maximum(db, db.max() - p.top_db)
    return db - db.max()


def test_log_mel_shape_and_scale_on_real_files(clips):
    params = FeatureParams()
    out = LogMel(params)(clips)
    # 40 mels; 0.8 s × 8000 Hz = 6400 samples, hop 80 with centred frames: 6400 // 80 + 1 = 81 frames
    assert out.shape == (3, 1, 40, 81) and params.frames == 81
    for k, clip in enumerate(clips):
        expected = by_hand(clip, params)
        torch.testing.assert_close(out[k, 0], expected, atol=2e-3, rtol=0)
        assert out[k].max().item() == 0.0
        assert out[k].min().item() == pytest.approx(-40.0)  # padded silence sits on the floor


def test_top_db_floor_is_per_clip_not_per_batch(clips):
    logmel = LogMel(FeatureParams())
    quiet = clips[0] * 1e-3
    alone = logmel([quiet])
    beside_loud = logmel([quiet, clips[1] * 10])
    torch.testing.assert_close(alone[0], beside_loud[0])
    # relative dB: a level change does not change the features
    torch.testing.assert_close(logmel([clips[0]])[0], alone[0], atol=1e-3, rtol=0)


def test_noise_floor_is_the_low_quantile_of_each_band_over_the_recorded_frames():
    # one clip, two bands, six frames; the first and last are padding (no power in any band) and are left out
    power = torch.tensor([[[0, 4, 1, 3, 2, 0.], [0, 2, 6, 2, 2, 0]]])
    # band 0 holds 1, 2, 3, 4: the 0.2 quantile lies 0.6 of the way from 1 to 2; band 1 sorted is 2, 2, 2, 6
    assert noise_floor(power).flatten().tolist() == pytest.approx([1.6, 2.0])
    assert noise_floor(torch.zeros(1, 2, 4)).flatten().tolist() == [0.0, 0.0]  # a silent clip has no floor


def test_floor_subtraction_brings_a_noisy_clip_toward_its_clean_spectrogram(clips):
    plain, subtracted = FeatureParams(), FeatureParams(subtract_floor=True)
    noisy_clips = noisy(clips, 0.0, seed=0)
    distance = {p.subtract_floor: (LogMel(p)(noisy_clips) - LogMel(p)(clips)).abs().mean().item() for p in (plain, subtracted)}
    assert distance[True] < 0.8 * distance[False]
    for clip in clips:
        torch.testing.assert_close(LogMel(subtracted)([clip])[0, 0], by_hand(clip, subtracted), atol=2e-3, rtol=0)


def test_normaliser_round_trip():
    x = torch.randn(4, 1, 8, 9) * 7 - 20
    norm = Normaliser.fit(x)
    y = norm(x)
    assert y.mean().item() == pytest.approx(0.0, abs=1e-5) and y.std().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(norm.inverse(y), x)
    assert Normaliser(**norm.to_json()).mean == norm.mean


def test_mfcc_baseline_features(clips):
    params = MfccParams()
    out = Mfcc(params, 8000)(clips)
    assert out.shape == (3, 78) and params.dims == 78  # 13 coefficients, + Δ + ΔΔ, each mean- and std-pooled: 6 × 13
    coeffs = AF.create_dct(13, 40, "ortho").T @ AF.amplitude_to_DB(
        AF.melscale_fbanks(129, 0.0, 4000.0, 40, 8000).T @ torch.stft(clips[1], 256, 80, window=torch.hann_window(256), return_complex=True).abs() ** 2,
        10.0, 1e-10, 0.0, 80.0,
    )
    torch.testing.assert_close(out[1, :13], coeffs.mean(1), atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(out[1, 39:52], coeffs.std(1), atol=1e-3, rtol=1e-4)
    deltas = AF.compute_deltas(coeffs)
    torch.testing.assert_close(out[1, 13:26], deltas.mean(1), atol=1e-4, rtol=1e-4)


def test_griffin_lim_gives_audio_with_the_input_spectrum(clips):
    params = FeatureParams()
    spec = LogMel(params)([clips[0]])[0, 0]
    wave = GriffinLimInverter(params, n_iter=32)(spec)
    assert wave.ndim == 1 and abs(len(wave) - params.samples) <= params.hop_length
    assert wave.abs().max().item() == pytest.approx(0.9)
    again = LogMel(params)([wave])[0, 0]
    # Griffin-Lim is only approximate; the re-analysed spectrogram must still follow the input.
    assert np.corrcoef(again.flatten(), spec.flatten())[0, 1] > 0.8
