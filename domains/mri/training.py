"""Train the noise-blind residual denoiser on patches of the training volumes, and adapt it to one
noisy volume by self-supervised fine-tuning on that volume alone."""
from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from latente.shared.models import Autoencoder, build_model, save_model
from latente.shared.sources import file_sha256
from latente.shared.stage import DomainPaths
from latente.shared.trainer import FitResult, fit, seed_everything

from latente.domains.mri import DOMAIN
from latente.domains.mri.data import SPLIT_FILE, TENSOR_FILE, PatchDataset, Prepared, ValidationDataset, head_mask, intrinsic_noise
from latente.domains.mri.model import PREPROCESSING, context_slices, model_config, prepare_for_inference
from latente.domains.mri.params import AdaptParams, TrainParams


def start_as_identity(model: Autoencoder) -> Autoencoder:
    """Zero the output convolution: the residual model starts by predicting no noise (the identity).

    Otherwise the freshly initialised network adds large random noise of its own, and on CPU
    budgets much of the training goes into undoing that (measured: in-brain error reaches
    0.41× the noisy input's after 400 steps instead of 0.62×).
    """
    last = model.decoder.layers[-1].conv
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    return model


def train(params: TrainParams, paths: DomainPaths) -> None:
    """Fit the model and save it with its best-validation weights: what `latente mri denoise` applies."""
    config = model_config(params)
    prepared = Prepared.load(paths.prepared)
    context = context_slices(config)
    seed = params.trainer.seed
    train_set = PatchDataset(prepared, params.patches, context, seed)
    val_set = ValidationDataset(prepared, params.patches, context, config.corruption.kind, seed)
    seed_everything(seed)
    model = start_as_identity(build_model(config)).to(memory_format=torch.channels_last)
    fingerprint = {
        "params": params.model_dump(mode="json"),
        "data": {name: file_sha256(paths.prepared / name) for name in (TENSOR_FILE, SPLIT_FILE)},
    }
    result = fit(model, train_set, val_set, params.trainer, paths.checkpoint, fingerprint=fingerprint, live_dir=paths.training_log)
    save(prepare_for_inference(model), paths, prepared, result)


def save(model: Autoencoder, paths: DomainPaths, prepared: Prepared, result: FitResult) -> None:
    """The model folder: config.json (the model's config, how to feed it, its data, its training record) and weights."""
    save_model(
        model, paths.model, domain=DOMAIN, preprocessing=PREPROCESSING,
        data={
            "train_volumes": prepared.split["volumes"],
            "test_volumes": prepared.split["test_volumes"],
            "train_slices": len(prepared.split["train"]),
            "val_slices": len(prepared.split["val"]),
        },
        info=result.to_json(),
    )


# every offset a hidden voxel may borrow its value from, by reach (the voxel itself excluded)
def _offsets(reach: int) -> torch.Tensor:
    return torch.tensor([(dx, dy) for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1) if dx or dy])


def blind_spot(stacks: torch.Tensor, fraction: float, reach: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide a random `fraction` of the centre slice's voxels of each [B, C, X, Y] stack (Krull et al., Noise2Void, CVPR 2019).

    Each hidden voxel takes the noisy value of a random visible voxel of the same slice at most
    `reach` away (mirrored at the border), so no hidden voxel's own value is anywhere in the
    input and the network's output there cannot depend on its noise: predicting its noisy value
    is only possible from the signal, and the loss on hidden voxels trains a denoiser with no
    clean reference. The neighbouring slices carry independent noise and stay as they are.
    Returns the masked stacks and the hidden voxels' boolean map [B, X, Y].
    """
    b, c, h, w = stacks.shape
    centre = c // 2
    hidden = torch.rand((b, h, w), generator=generator) < fraction
    where = hidden.nonzero()
    offsets = _offsets(reach)
    step = offsets[torch.randint(len(offsets), (len(where),), generator=generator)]
    sources = where[:, 1:] + step
    limits = torch.tensor([h, w])
    outside = (sources < 0) | (sources >= limits)
    sources = torch.where(outside, where[:, 1:] - step, sources)
    # a hidden voxel whose source is hidden too stays visible: no hidden voxel's own value is left anywhere in the input
    borrowed = hidden[where[:, 0], sources[:, 0], sources[:, 1]]
    hidden[tuple(where[borrowed].T)] = False
    where, sources = where[~borrowed], sources[~borrowed]
    masked = stacks.clone()
    masked[where[:, 0], centre, where[:, 1], where[:, 2]] = stacks[where[:, 0], centre, sources[:, 0], sources[:, 1]]
    return masked, hidden


class VolumePatches:
    """Random 2.5-D patches of one [X, Y, Z] volume on a [0, 1] scale, centred on voxels of `head`,
    with the head voxels of each patch's centre slice."""

    def __init__(self, volume: np.ndarray, head: np.ndarray, context: int, size: int, seed: int):
        self.axial = np.ascontiguousarray(np.moveaxis(volume, -1, 0), dtype=np.float32)  # [Z, X, Y]
        self.head = np.ascontiguousarray(np.moveaxis(head, -1, 0))
        self.context = context
        self.size = (min(size, self.axial.shape[1]), min(size, self.axial.shape[2]))
        self.centres = np.argwhere(self.head)
        if not len(self.centres):
            self.centres = np.argwhere(np.ones_like(self.head))
        self.rng = np.random.default_rng(seed)

    def batch(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        depth, sx, sy = self.axial.shape[0], *self.size
        out = np.empty((count, 2 * self.context + 1, sx, sy), dtype=np.float32)
        inside = np.empty((count, sx, sy), dtype=bool)
        for n in range(count):
            z, x, y = self.centres[self.rng.integers(len(self.centres))]
            x0 = int(np.clip(x - sx // 2, 0, self.axial.shape[1] - sx))
            y0 = int(np.clip(y - sy // 2, 0, self.axial.shape[2] - sy))
            zs = np.clip(np.arange(z - self.context, z + self.context + 1), 0, depth - 1)
            patch, head = self.axial[zs, x0 : x0 + sx, y0 : y0 + sy], self.head[z, x0 : x0 + sx, y0 : y0 + sy]
            flip = self.rng.random() < 0.5
            out[n], inside[n] = (patch[:, ::-1], head[::-1]) if flip else (patch, head)
        return torch.from_numpy(out).contiguous(memory_format=torch.channels_last), torch.from_numpy(inside)


def adapt(model: Autoencoder, volume: np.ndarray, params: AdaptParams, progress: bool = False) -> tuple[Autoencoder, dict]:
    """A copy of `model` fine-tuned on the noisy [X, Y, Z] volume itself (on a [0, 1] scale), with no
    clean reference; the trained model is left as it was.

    `recorrupted` (Pang et al., Recorrupted-to-Recorrupted, CVPR 2021): with the volume's noise σ
    estimated inside its head (`intrinsic_noise`), each patch y becomes the input y + αz and the
    target y − z/α, z ~ N(0, σ²): their noises are independent, so the loss is, up to a constant,
    the supervised loss at noise σ·√(1 + α²). `blind_spot` (Noise2Void) hides a few voxels and
    predicts their noisy values from their neighbours (`blind_spot`). Both losses count the head
    voxels only (`head_mask`): both learn the mean of the noisy magnitude, and on the background,
    where Rician noise has a mean of 1.25σ, that mean is far from the signal (zero).

    A fine-tune with noisy targets can also make a good model worse (it does at moderate noise on
    validation data). So the same loss is measured on a fixed batch of `val_patches` patches with
    fixed recorruptions (or masks) before the first step and every `check_every` steps, an
    estimate of the denoising error that needs no reference. Weights replace the trained model's
    only where that error fell by more than two standard errors of its per-patch change (paired
    patches); of those, the lowest is kept, and the trained model itself when none qualifies.

    The copy trains in eval mode: the model's own corruption is off (the only noise is the
    volume's) and batch-norm statistics stay those of training. Returns it with a record: the
    method, σ, steps, the step kept, the estimated error at the start and kept, and seconds.
    """
    tuned = copy.deepcopy(model).eval()
    head = head_mask(volume)
    sigma = intrinsic_noise(volume, head)
    patches = VolumePatches(volume, head, context_slices(tuned.config), params.patch_size, params.seed)
    generator = torch.Generator().manual_seed(params.seed)

    def draw(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(input, target, where the loss counts: head voxels only) for one batch of stacks."""
        stacks, inside = batch
        centre = stacks[:, stacks.shape[1] // 2]
        if params.method == "recorrupted":
            noise = sigma * torch.randn(stacks.shape, generator=generator)
            target = centre - noise[:, stacks.shape[1] // 2] / params.alpha
            return (stacks + params.alpha * noise).contiguous(memory_format=torch.channels_last), target, inside
        masked, hidden = blind_spot(stacks, params.masked_fraction, params.neighbourhood, generator)
        return masked, centre, hidden & inside

    def loss_of(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        inputs, target, counted = batch
        return torch.mean((tuned(inputs).recon[:, 0][counted] - target[counted]) ** 2)

    check = draw(patches.batch(params.val_patches))

    def patch_errors() -> torch.Tensor:
        """The loss of each fixed check patch (its own mean over its counted voxels)."""
        inputs, target, counted = check
        with torch.no_grad():
            squared = (tuned(inputs).recon[:, 0] - target) ** 2 * counted
        return squared.sum((1, 2)) / counted.sum((1, 2)).clamp(min=1)

    start = patch_errors()
    best = (float(start.mean()), 0, copy.deepcopy(tuned.state_dict()))
    optimiser = torch.optim.Adam(tuned.parameters(), lr=params.lr)
    started = time.perf_counter()
    for step in tqdm(range(1, params.steps + 1), desc="adapting to the volume", unit="step", file=sys.stderr, disable=not progress):
        loss = loss_of(draw(patches.batch(params.batch_size)))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if step % params.check_every == 0 or step == params.steps:
            errors = patch_errors()
            change = errors - start  # paired by patch: the noise of the targets mostly cancels
            significant = float(change.mean()) < -2 * float(change.std()) / len(change) ** 0.5
            if significant and float(errors.mean()) < best[0]:
                best = (float(errors.mean()), step, copy.deepcopy(tuned.state_dict()))
    tuned.load_state_dict(best[2])
    record = {"method": params.method, "sigma": sigma, "steps": params.steps, "kept_step": best[1],
              "error_start": float(start.mean()), "error_kept": best[0], "seconds": time.perf_counter() - started}
    return tuned, record
