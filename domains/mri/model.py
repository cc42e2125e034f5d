"""The 2.5-D residual denoiser: its config hook, and applying it to a volume slice stack by slice stack."""
from __future__ import annotations

import sys

import numpy as np
import torch
from tqdm import tqdm

from latente.shared.errors import UserError
from latente.shared.models import Autoencoder, AutoencoderConfig
from latente.shared.params import PARAMS_FILE

from latente.domains.mri import DOMAIN
from latente.domains.mri.data import TRAINING_ORIENTATION, unit_scale
from latente.domains.mri.params import TrainParams

# how a volume is fed to the model (saved in config.json; `latente mri denoise` reorients to it)
PREPROCESSING = {
    "scale": "min-max of the input volume to [0, 1]",
    "orientation": "".join(TRAINING_ORIENTATION),
    "slice_axis": "axial (third axis in RAS)",
}


def model_config(params: TrainParams) -> AutoencoderConfig:
    """The denoiser's AutoencoderConfig: `train.model` as declared, once it is checked to fit the slice stacks.

    No field comes from the data: the network is fully convolutional, so it takes axial slices
    of any size (no `input_size`), and its input channels (`2·context + 1` adjacent slices) are
    a modelling choice. What the domain fixes is checked here, where `denoise_unit` relies on it.
    """
    config, where = params.model, f"{PARAMS_FILE}: {DOMAIN}.train.model"
    if config.architecture != "conv" or config.spatial_dims != 2 or config.latent_dim is not None:
        raise UserError(where, "the MRI denoiser is a 2-D convolutional model with a code map", "use a conv_* model, spatial_dims 2, no latent_dim")
    if config.outputs != 1:
        raise UserError(f"{where}.out_channels", "must be 1: the centre slice is denoised, its neighbours are context")
    if config.corruption is None or config.corruption.kind not in ("rician", "gaussian"):
        raise UserError(f"{where}.corruption", "must be rician or gaussian noise")
    return config


def context_slices(config: AutoencoderConfig) -> int:
    """Adjacent slices on each side of the one being denoised."""
    return config.context_channels // 2


def prepare_for_inference(model: Autoencoder) -> Autoencoder:
    """Eval mode and channels-last weights (2–3× faster CPU convolutions, same numbers)."""
    return model.eval().to(memory_format=torch.channels_last)


def axial_slices(volume: np.ndarray) -> torch.Tensor:
    """An [X, Y, Z] volume as [Z, X, Y] float32: axial slices first."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(volume, -1, 0), dtype=np.float32))


def slice_stacks(axial: torch.Tensor, centres: torch.Tensor, context: int) -> torch.Tensor:
    """The model's input for each centre slice of [Z, X, Y] slices: [B, 2·context + 1, X, Y], edges repeated, channels-last."""
    index = (centres[:, None] + torch.arange(-context, context + 1)).clamp(0, axial.shape[0] - 1)
    return axial[index].contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def slice_code(model: Autoencoder, volume: np.ndarray, z: int) -> np.ndarray:
    """The code map [latent channels, X / s, Y / s] (s the model's downsampling) that the model forms of axial slice `z`
    of an [X, Y, Z] volume on a [0, 1] scale: what its decoder sees when it denoises that slice."""
    stack = slice_stacks(axial_slices(volume), torch.tensor([z]), context_slices(model.config))
    return model.encode(stack)[0].float().numpy()


@torch.inference_mode()
def denoise_unit(
    model: Autoencoder,
    volume: np.ndarray,
    zs: slice | None = None,
    batch: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """Denoise the axial slices `zs` (all by default) of an [X, Y, Z] volume on a [0, 1] scale.

    Each slice is the centre of a stack of `2·context + 1` neighbours (edges repeated);
    returns [X, Y, len(zs)].
    """
    axial = axial_slices(volume)
    centres = list(range(axial.shape[0]))[zs or slice(None)]
    out = np.empty((len(centres), *axial.shape[1:]), dtype=np.float32)
    bar = tqdm(total=len(centres), desc="denoising slices", unit="slice", file=sys.stderr, disable=not progress)
    for start in range(0, len(centres), batch):
        chunk = torch.tensor(centres[start : start + batch])
        recon = model(slice_stacks(axial, chunk, context_slices(model.config))).recon[:, 0]
        out[start : start + len(chunk)] = recon.float().numpy()
        bar.update(len(chunk))
    bar.close()
    return np.moveaxis(out, 0, -1)


def denoise_values(model: Autoencoder, data: np.ndarray, zs: slice | None = None, progress: bool = False) -> np.ndarray:
    """Denoise an [X, Y, Z] RAS volume in any units: min–max scaled to [0, 1] like the training
    volumes, denoised, scaled back and clipped to the input's own intensity range."""
    scaled, lo, hi = unit_scale(data)
    return np.clip(denoise_unit(model, scaled, zs, progress=progress) * (hi - lo) + lo, lo, hi)
