"""Params schemas of the speech stages (`speech.<stage>` in params.yaml), one per stage."""
from __future__ import annotations

import math
import re
from typing import Any, Literal, Optional

import pydantic

from latente.domains.speech import DOMAIN
from latente.shared.models.config import AutoencoderConfig
from latente.shared.params import InterpolationParams, StrictParams, TrainerConfig
from latente.shared.sources import SourceParams

FSDD_SPEAKERS = ("jackson", "nicolas", "theo", "yweweler", "lucas")
FSDD_PATTERN = r"(?P<label>[0-9])_(?P<speaker>[A-Za-z]+)_(?P<index>[0-9]+)\.wav"


def check_label_pattern(pattern: str) -> str:
    """A file-name regex must compile and name the groups `label` and `speaker`."""
    try:
        groups = re.compile(pattern).groupindex
    except re.error as err:
        raise ValueError(f"not a valid regular expression ({err})") from None
    missing = [name for name in ("label", "speaker") if name not in groups]
    if missing:
        raise ValueError(f"the pattern needs the named groups {', '.join(f'(?P<{m}>...)' for m in missing)}")
    return pattern


class FetchParams(StrictParams):
    """FSDD recordings into data/raw/speech/recordings (50 per digit and speaker)."""

    source: SourceParams = SourceParams()
    speakers: tuple[str, ...] = FSDD_SPEAKERS
    takes: int = pydantic.Field(50, ge=1, description="recordings per digit and speaker")
    manifest_sha256: str | None = None


class DatasetParams(StrictParams):
    """Which labelled recordings to use: a folder (labels from file names or a CSV) or Speech Commands."""

    kind: Literal["folder", "speechcommands"] = "folder"
    root: str = f"data/raw/{DOMAIN}/recordings"
    pattern: str = FSDD_PATTERN
    labels_csv: str | None = None
    subset: Literal["training", "validation", "testing"] | None = None
    labels: tuple[str, ...] = ()

    @pydantic.field_validator("pattern")
    @classmethod
    def _pattern_ok(cls, value: str) -> str:
        return check_label_pattern(value)


class FeatureParams(StrictParams):
    """Fixed-duration log-mel spectrograms; dB relative to each clip's maximum, floored at -top_db.

    `subtract_floor`: before the dB, each mel band loses its own noise floor, the FLOOR_QUANTILE
    quantile of its power over the clip's recorded frames (spectral subtraction, Boll 1979, with
    the floor read from the clip itself): steady noise then sits at the dB floor as silence does,
    so a noisy clip's input looks more like its clean one's. It reads one clip only, so a
    held-out speaker's statistics never enter.

    `voice_smoothing` and `voice_margin_db` set `align: voice`'s span (data.voiced_span): the
    blocks averaged around each hop-length block, and how far above the clip's noise floor an
    average must stand. Their defaults are the rule before averaging (one block, 6 dB), so model
    folders saved before them cut the windows they were trained on.
    """

    sample_rate: int = pydantic.Field(8000, ge=1000)
    duration: float = pydantic.Field(0.8, gt=0.0)
    align: Literal["center", "start", "voice"] = "center"
    n_fft: int = pydantic.Field(256, ge=16)
    hop_length: int = pydantic.Field(80, ge=1)
    n_mels: int = pydantic.Field(40, ge=4)
    top_db: float = pydantic.Field(40.0, gt=0.0)
    subtract_floor: bool = False
    voice_smoothing: int = pydantic.Field(1, ge=1)
    voice_margin_db: float = pydantic.Field(6.0, ge=0.0)

    @pydantic.field_validator("voice_smoothing")
    @classmethod
    def _centred(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd (an average centred on each block)")
        return value

    @property
    def samples(self) -> int:
        return round(self.duration * self.sample_rate)

    @property
    def frames(self) -> int:
        return self.samples // self.hop_length + 1


class PrepareParams(StrictParams):
    dataset: DatasetParams = DatasetParams()
    features: FeatureParams = FeatureParams()


SPEED_STEPS = 40  # speed factors are SPEED_STEPS / n for integer n: a resampling filter of at most 40 phases


class AugmentParams(StrictParams):
    """Denoising training: each training clip also appears `copies` times with white noise
    at an SNR drawn uniformly from `snr_db`; the target is always the clean spectrogram.

    Two corruptions aimed at unseen voices, both off at their defaults, act on those copies only:
    - `speed`: the copy's recording is played faster or slower by a factor drawn from this range
      (Kaldi-style speed perturbation, Ko et al. 2015): pitch, formants and tempo move together,
      as they differ between speakers. Factors are quantised to SPEED_STEPS / n (n an integer),
      so the resampling filter stays short; the target is the clean, unperturbed spectrogram,
      so the encoder must map a shifted voice onto the original one.
    - `freq_mask` / `time_mask`: SpecAugment (Park et al. 2019): one band of up to `freq_mask`
      mel bins and one span of up to `time_mask` frames of the copy's spectrogram are set to
      the clip's mean, so no single band or moment can carry the digit.
    - `shift`: the copy's spectrogram is moved by up to `shift` frames either way (drawn per
      copy), the frames it uncovers set to the clip's floor, so the code cannot lean on where in
      the window a speaker's digit happens to start.
    """

    copies: int = pydantic.Field(3, ge=0)
    snr_db: tuple[float, float] = (0.0, 20.0)
    speed: tuple[float, float] = (1.0, 1.0)
    freq_mask: int = pydantic.Field(0, ge=0)
    time_mask: int = pydantic.Field(0, ge=0)
    shift: int = pydantic.Field(0, ge=0)

    @pydantic.field_validator("speed")
    @classmethod
    def _speed_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.5 <= low <= high <= 2.0:
            raise ValueError("give [low, high] with 0.5 ≤ low ≤ high ≤ 2")
        return value

    def speed_steps(self) -> list[int]:
        """The integers n whose factor SPEED_STEPS / n lies in the `speed` range (n = SPEED_STEPS: unchanged)."""
        low, high = self.speed
        return list(range(math.ceil(SPEED_STEPS / high - 1e-9), math.floor(SPEED_STEPS / low + 1e-9) + 1))


class ClassifierParams(StrictParams):
    """StandardScaler + multinomial logistic regression, the same for codes and MFCCs.

    The inverse regularisation `C` is chosen from the listed values by leave-one-speaker-out
    accuracy over the training speakers only, by the same search for both feature sets; a single
    value skips the search.
    """

    C: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    max_iter: int = pydantic.Field(2000, ge=10)

    @pydantic.field_validator("C", mode="before")
    @classmethod
    def _one_or_more(cls, value: object) -> object:
        return (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else value

    @pydantic.field_validator("C")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(c <= 0 for c in value):
            raise ValueError("list one or more values, each > 0")
        return value


class SupervisionParams(StrictParams):
    """A supervised autoencoder (Le, Patterson & White, NeurIPS 2018): during encoder training a
    linear digit head on the code adds `digit_weight` × its cross-entropy (nats per clip) to the
    reconstruction error (summed over a clip's spectrogram). Only the training speakers' labels
    are used; the head is dropped after training, so codes and MFCCs still go through the same
    downstream classifier. 0 trains a plain denoising autoencoder.

    `invariance_weight` adds that weight × the squared distance between a corrupted copy's code
    and its clean clip's code, over the batch's code variance (dimensionless, so shrinking the
    codes cannot lower it): the speed-perturbed copy stands in for another voice saying the same
    thing, and the term asks the code to ignore the difference."""

    digit_weight: float = pydantic.Field(0.0, ge=0.0)
    invariance_weight: float = pydantic.Field(0.0, ge=0.0)


MAX_CODE_DIMS = 64


class TrainParams(StrictParams):
    test_speakers: tuple[str, ...] = ("theo",)
    loso: bool = True
    validation_fraction: float = pydantic.Field(0.1, gt=0.0, lt=0.5)
    augment: AugmentParams = AugmentParams()
    supervision: SupervisionParams = SupervisionParams()
    classifier: ClassifierParams = ClassifierParams()
    model: AutoencoderConfig
    trainer: TrainerConfig = TrainerConfig()

    @pydantic.field_validator("test_speakers")
    @classmethod
    def _some_speaker(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one held-out speaker")
        return value

    @pydantic.field_validator("model")
    @classmethod
    def _spectrogram_encoder(cls, value: AutoencoderConfig) -> AutoencoderConfig:
        """A one-channel 2-D model with a small flat code; its input size comes from the features (`model.model_config`)."""
        if value.input_size is not None:
            raise ValueError("input_size is set by the features (n_mels × frames): remove it")
        if value.spatial_dims != 2 or value.in_channels != 1:
            raise ValueError("the speech model reads one-channel spectrograms: set spatial_dims 2 and in_channels 1")
        if value.latent_dim is None or value.latent_dim > MAX_CODE_DIMS:
            raise ValueError(f"latent_dim must be a flat code of at most {MAX_CODE_DIMS} dimensions")
        return value


class MfccParams(StrictParams):
    """The baseline features: MFCCs with Δ and ΔΔ, mean- and std-pooled over time."""

    n_mfcc: int = pydantic.Field(13, ge=2)
    n_fft: int = pydantic.Field(256, ge=16)
    hop_length: int = pydantic.Field(80, ge=1)
    n_mels: int = pydantic.Field(40, ge=4)

    @property
    def dims(self) -> int:
        return 6 * self.n_mfcc


ABLATION_SECTIONS = ("augment", "supervision", "classifier", "model", "trainer", "features")
DESIGN_ARM = "design"


class EvaluateParams(StrictParams):
    """`ablation` names the report's design ablations. Each arm is the trained model's `speech.train`
    (and, under `features`, its spectrogram settings) with some keys changed, section by section:
    `no_shift: {augment: {shift: 0}}`. The design itself and every arm are trained and scored on an
    inner leave-one-speaker-out that drops the main model's `test_speakers` altogether, so the
    choices they justify never saw those speakers. Empty: no ablations (the stage is then minutes
    shorter)."""

    snr_db: tuple[float, ...] = (20.0, 10.0, 0.0)
    noise_seed: int = 0
    mfcc: MfccParams = MfccParams()
    examples: int = pydantic.Field(3, ge=1, le=10)
    interpolation: Optional[InterpolationParams] = None
    ablation: dict[str, dict[Literal[ABLATION_SECTIONS], dict[str, Any]]] = {}

    @pydantic.field_validator("ablation")
    @classmethod
    def _named_arms(cls, value: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for name, changes in value.items():
            if name == DESIGN_ARM or not re.fullmatch(r"[a-z0-9_]+", name):
                raise ValueError(f"arm {name!r}: name arms with lower-case letters, digits and _ ('{DESIGN_ARM}' is the unchanged model)")
            if not changes or not all(changes.values()):
                raise ValueError(f"arm {name!r} changes nothing")
        return value
