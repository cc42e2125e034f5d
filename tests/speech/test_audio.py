"""Audio loading: real FSDD files, resampling, mono mix-down, fixed duration, noise, bad files."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import add_white_noise, check_resampling, fix_duration, is_clipped, load_audio, noisy, voiced_span
from latente.shared.errors import UserError


@pytest.fixture
def fsdd_file(mirror):
    return mirror / DOMAIN / "recordings" / "3_theo_7.wav"


def test_real_file_loads_as_mono_float_at_its_rate(fsdd_file):
    samples, clipped = load_audio(fsdd_file, 8000)
    reference, rate = sf.read(fsdd_file, dtype="float32")
    assert rate == 8000 and samples.dtype == torch.float32 and samples.ndim == 1
    assert torch.equal(samples, torch.from_numpy(reference))
    assert not clipped


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_is_mixed_to_the_channel_mean(tmp_path):
    left, right = sine(300, 8000, 0.5, 0.6), sine(700, 8000, 0.5, 0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    samples, _ = load_audio(path, 8000)
    np.testing.assert_allclose(samples.numpy(), (left + right) / 2, atol=1e-7)


def test_resampling_keeps_frequency_and_level(tmp_path):
    path = tmp_path / "tone_16k.wav"
    sf.write(path, sine(440, 16000, 1.0, 0.5), 16000, subtype="FLOAT")
    samples, _ = load_audio(path, 8000)
    assert samples.shape == (8000,)  # one second at the target rate
    spectrum = np.abs(np.fft.rfft(samples.numpy()))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second
    core = samples[500:-500]
    assert core.abs().max().item() == pytest.approx(0.5, abs=0.01)
    assert core.pow(2).mean().sqrt().item() == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_fix_duration_pads_and_crops_as_computed_by_hand():
    x = torch.arange(1, 6, dtype=torch.float32)  # 1..5
    assert fix_duration(x, 8, "start", 2, 1, 6.0).tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    assert fix_duration(x, 8, "center", 2, 1, 6.0).tolist() == [0, 1, 2, 3, 4, 5, 0, 0]
    assert fix_duration(x, 3, "start", 2, 1, 6.0).tolist() == [1, 2, 3]
    assert fix_duration(x, 3, "center", 2, 1, 6.0).tolist() == [2, 3, 4]
    assert fix_duration(x, 5, "center", 2, 1, 6.0).tolist() == [1, 2, 3, 4, 5]


def test_voice_alignment_centres_the_loud_blocks_whatever_silence_surrounds_them():
    # blocks of 2: energies 0, 1/1024, 1, 4, 0, 0 — the second is 36 dB below the loudest (VOICE_DB 30), so the voice is [4, 8)
    x = torch.tensor([0, 0, 1 / 32, 1 / 32, 1, 1, 2, 2, 0, 0, 0, 0], dtype=torch.float32)
    assert voiced_span(x, 2, 1, 6.0) == (4, 8)
    assert fix_duration(x, 6, "voice", 2, 1, 6.0).tolist() == [1 / 32, 1, 1, 2, 2, 0]  # samples 3..8
    assert fix_duration(x, 3, "voice", 2, 1, 6.0).tolist() == [1, 2, 2]  # samples 5..7
    assert fix_duration(x, 16, "voice", 2, 1, 6.0).tolist() == [0, 0] + x.tolist() + [0, 0]  # samples -2..13
    # the same word after more leading silence lands in the same place; centring the recording would move it
    later = torch.cat([torch.zeros(6), x])
    assert torch.equal(fix_duration(later, 6, "voice", 2, 1, 6.0), fix_duration(x, 6, "voice", 2, 1, 6.0))
    assert not torch.equal(fix_duration(later, 6, "center", 2, 1, 6.0), fix_duration(x, 6, "center", 2, 1, 6.0))
    # at the start of the recording the window overhangs it; silence and tails shorter than a block count as voice-less
    assert fix_duration(torch.tensor([5, 5, 0, 0, 0, 0, 0, 0.]), 6, "voice", 2, 1, 6.0).tolist() == [0, 0, 5, 5, 0, 0]
    assert voiced_span(torch.zeros(7), 2, 1, 6.0) == (0, 7) and voiced_span(torch.ones(1), 2, 3, 1.0) == (0, 1)


def test_voiced_span_stands_above_the_noise_floor_as_well_as_near_the_peak():
    # blocks of 2 at amplitude 0.1 (energy 0.01: the floor, the 0.2 quantile of the ten block energies), one at 1 and
    # one at 0.15 (0.0225): every block is within VOICE_DB 30 of the loudest (≥ 0.001), but a margin of 6 dB above the floor
    # asks for ≥ 0.01 × 10^0.6 = 0.0398, which the block at 1 alone clears; at 0.25 (0.0625) its neighbour clears it too
    amplitudes = [0.1] * 5 + [1.0, 0.15] + [0.1] * 3
    x = torch.tensor(amplitudes, dtype=torch.float64).repeat_interleave(2)
    assert voiced_span(x, 2, 1, 6.0) == (10, 12)
    amplitudes[6] = 0.25
    assert voiced_span(torch.tensor(amplitudes, dtype=torch.float64).repeat_interleave(2), 2, 1, 6.0) == (10, 14)


def test_averaged_block_energies_keep_a_quiet_tail_and_drop_a_lone_noise_block():
    # blocks of 2, energies: noise 1, one noise block at 1.6 (index 2), a word at 4, 4 (6, 7) with a quieter tail at 1.5 (8-10)
    energies = [1, 1, 1.6, 1, 1, 1, 4, 4, 1.5, 1.5, 1.5, 1, 1, 1, 1]
    x = torch.tensor(energies, dtype=torch.float64).sqrt().repeat_interleave(2)
    # block by block the floor (0.2 quantile) is 1: 1 dB above it (≥ 1.259) takes the noise block in, [2, 11) blocks;
    # 6 dB (≥ 3.98) drops the tail, [6, 8) blocks
    assert voiced_span(x, 2, 1, 1.0) == (4, 22)
    assert voiced_span(x, 2, 1, 6.0) == (12, 16)
    # averaged over 3 blocks (2 at the ends): 1, 1.2, 1.2, 1.2, 1, 2, 3, 3.17, 2.33, 1.5, 1.33, 1.17, 1, 1, 1; the floor is
    # still 1, the noise block's 1.2 stays under 1.259 and the tail's 1.5, 1.33 clear it: [5, 11) blocks, centre 8 (the word's
    # [6, 11) has 8.5; the two rules without the average give 6.5 and 7)
    assert voiced_span(x, 2, 3, 1.0) == (10, 22)


def test_averaged_span_moves_less_in_noise_on_real_recordings(mirror):
    # digits 0-9 of three FSDD speakers: how far the voiced span's centre moves, in 80-sample frames, from the clean recording
    # to the same recording in white noise; averaging 11 blocks with a 1 dB margin against one block with 6 dB
    folder = mirror / DOMAIN / "recordings"
    clips = [load_audio(folder / f"{digit}_{speaker}_0.wav", 8000)[0] for digit in range(10) for speaker in ("jackson", "lucas", "nicolas")]

    def centre_shift(snr_db: float, smoothing: int, margin_db: float) -> float:
        return float(np.mean([abs(sum(voiced_span(c, 80, smoothing, margin_db)) - sum(voiced_span(n, 80, smoothing, margin_db))) / 160
                              for c, n in zip(clips, noisy(clips, snr_db, 0))]))

    for snr_db in (10.0, 0.0):
        assert centre_shift(snr_db, 11, 1.0) < 0.6 * centre_shift(snr_db, 1, 6.0)


def test_white_noise_has_the_requested_snr(fsdd_file):
    samples, _ = load_audio(fsdd_file, 8000)
    for snr in (20.0, 10.0, 0.0):
        noise = add_white_noise(samples, snr, torch.Generator().manual_seed(1)) - samples
        measured = 10 * torch.log10(samples.pow(2).mean() / noise.pow(2).mean()).item()
        assert measured == pytest.approx(snr, abs=0.25)
    again = add_white_noise(samples, 10.0, torch.Generator().manual_seed(1))
    assert torch.equal(again, add_white_noise(samples, 10.0, torch.Generator().manual_seed(1)))


def test_clipping_is_detected_and_only_warned(tmp_path, fsdd_file):
    loud = np.clip(sine(200, 8000, 0.5, 3.0), -1.0, 32767 / 32768)
    path = tmp_path / "clipped.wav"
    sf.write(path, loud, 8000, subtype="PCM_16")
    samples, clipped = load_audio(path, 8000)
    assert clipped and samples.shape == (4000,)  # 0.5 s at 8000 Hz
    assert not is_clipped(torch.tensor([0.1, 1.0, 0.2, -1.0, 0.0]))  # isolated peaks are not clipping


def bad_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "zero_length.wav", np.zeros(0, dtype=np.float32), 8000)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (tmp_path / "notes.txt").write_text("these are not samples\n")
    sf.write(tmp_path / "low_rate.wav", sine(100, 500, 0.5), 500)
    sf.write(tmp_path / "odd_rate.wav", sine(440, 44101, 0.1), 44101)
    return {
        "empty.wav": "empty file",
        "zero_length.wav": "zero length",
        "corrupt.wav": "not a readable audio file",
        "notes.txt": "not a readable audio file",
        "low_rate.wav": "500 Hz is too low",
        "odd_rate.wav": "cannot resample 44101 Hz to 8000 Hz",
    }


def test_bad_files_raise_one_user_error_naming_the_file(tmp_path):
    for name, fragment in bad_files(tmp_path).items():
        with pytest.raises(UserError) as err:
            load_audio(tmp_path / name, 8000)
        assert name in err.value.line() and fragment in err.value.line(), err.value.line()


def test_resampler_limits():
    check_resampling("x.wav", 44100, 8000)  # gcd 100: small kernel, accepted
    check_resampling("x.wav", 22050, 16000)
    with pytest.raises(UserError, match="cannot resample"):
        check_resampling("x.wav", 96001, 16000)
