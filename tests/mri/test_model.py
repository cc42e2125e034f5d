"""Slice stacking and scaling around the model, checked with models whose output is known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import MRI

from latente.domains.mri.data import FOREGROUND, PatchDataset, Prepared, split_slices
from latente.domains.mri.model import denoise_unit, denoise_values, model_config, prepare_for_inference
from latente.domains.mri.params import PatchParams, TrainParams
from latente.domains.mri.training import start_as_identity
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, build_model


def residual_model(in_channels: int):
    config = AutoencoderConfig(name="conv_dae", spatial_dims=2, in_channels=in_channels, out_channels=1, channels=(4, 4), strides=(2, 1),
                               latent_channels=4, residual=True, corruption={"kind": "rician", "level": [0.01, 0.1]})
    return prepare_for_inference(start_as_identity(build_model(config)))


def test_identity_start_returns_the_input_through_scaling_and_odd_sizes():
    rng = np.random.default_rng(0)
    volume = (rng.random((13, 11, 5)) * 300 + 20).astype(np.float32)  # odd sizes: the model pads and crops
    out = denoise_values(residual_model(3), volume)
    assert out.shape == volume.shape
    assert np.allclose(out, volume, atol=1e-3)
    assert np.allclose(denoise_unit(residual_model(1), volume / 320, slice(1, 3)), volume[..., 1:3] / 320, atol=1e-6)


class CentreProbe(torch.nn.Module):
    """Stands in for a model: records its input stack and returns the stack's centre slice."""

    def __init__(self, context: int):
        super().__init__()
        self.context = context
        self.config = AutoencoderConfig(name="conv_dae", spatial_dims=2, in_channels=2 * context + 1, out_channels=1)

    def forward(self, x):
        self.seen = x.clone()
        return type("Out", (), {"recon": x[:, self.context : self.context + 1]})()


def test_stacks_hold_neighbouring_slices_with_repeated_edges():
    volume = np.broadcast_to(np.arange(4, dtype=np.float32), (2, 3, 4)).copy()  # slice z holds the value z
    probe = CentreProbe(context=1)
    assert np.array_equal(denoise_unit(probe, volume, batch=8), volume)  # the centre channel is the slice itself
    assert probe.seen[:, :, 0, 0].tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 3]]


def test_validation_blocks_are_held_out_and_thin_slices_skipped():
    brain = np.zeros((60, 4, 4), dtype=bool)
    brain[5:55, :2] = True  # half of each slice is brain in slices 5–54
    train, val = split_slices(brain, min_fraction=0.25, val_fraction=0.2)
    assert sorted(train + val) == list(range(5, 55))
    assert val == list(range(25, 35))  # blocks of 10 slices, the middle one of every 5


def test_patches_are_a_function_of_their_index_and_centred_on_the_head():
    rng = np.random.default_rng(1)
    volume = np.zeros((12, 40, 50), dtype=np.float32)
    volume[:, 10:30, 20:45] = rng.uniform(0.2, 1.0, (12, 20, 25))  # a "head" in a dark field
    prepared = Prepared([volume], [volume > 0.5], {"train": [[0, z] for z in range(1, 11)], "brain_scale": [1.0]})
    params = PatchParams(size=16, per_epoch=50, brain_only=0.0, foreground=1.0, gain=(1.0, 1.0), blur_share=0.0)
    patches = PatchDataset(prepared, params, context=1, seed=3)
    assert patches[7].shape == (3, 16, 16) and torch.equal(patches[7], patches[7])
    assert not torch.equal(patches[7], PatchDataset(prepared, params, context=1, seed=4)[7])
    # the centre voxel lies on the head (rot90/flip move the centre by at most one voxel: check a 2×2 core)
    assert all(patches[i][1, 7:9, 7:9].max() > FOREGROUND for i in range(len(patches)))
    blurred = PatchDataset(prepared, params.model_copy(update={"blur_share": 1.0}), context=1, seed=3)
    assert blurred[7].std() < patches[7].std()


def test_model_config_is_the_declared_model_and_refuses_what_the_slice_stacks_cannot_feed():
    params = TrainParams.model_validate(MRI["train"])
    assert model_config(params) == params.model
    for change, key in (({"spatial_dims": 3}, "mri.train.model"), ({"out_channels": 3}, "mri.train.model.out_channels"),
                        ({"corruption": {"kind": "masking", "level": [0.1, 0.1]}}, "mri.train.model.corruption")):
        bad = TrainParams.model_validate({**MRI["train"], "model": {**MRI["train"]["model"], **change}})
        with pytest.raises(UserError, match=key):
            model_config(bad)
