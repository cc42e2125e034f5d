"""Encoder/decoder pairs for any number of spatial dims, built from MONAI blocks."""
from __future__ import annotations

import math

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from monai.networks.layers.factories import Act
from torch import nn

from latente.shared.models.config import AutoencoderConfig


def _conv_block(cfg: AutoencoderConfig, cin: int, cout: int, stride: int, transposed: bool) -> nn.Module:
    if cfg.num_res_units > 0 and not transposed:
        return ResidualUnit(
            cfg.spatial_dims, cin, cout, strides=stride, kernel_size=cfg.kernel_size,
            subunits=cfg.num_res_units, act=cfg.act, norm=cfg.norm, dropout=cfg.dropout or None,
        )
    return Convolution(
        cfg.spatial_dims, cin, cout, strides=stride, kernel_size=cfg.kernel_size,
        act=cfg.act, norm=cfg.norm, dropout=cfg.dropout or None, is_transposed=transposed,
    )


def _pointwise(cfg: AutoencoderConfig, cin: int, cout: int) -> nn.Module:
    return Convolution(cfg.spatial_dims, cin, cout, kernel_size=1, conv_only=True)


class ConvEncoder(nn.Module):
    """Strided convolutions down to a code map, or to a flat code when latent_dim is set."""

    def __init__(self, cfg: AutoencoderConfig, code_width: int):
        super().__init__()
        layers, cin = [], cfg.in_channels
        for cout, stride in zip(cfg.channels, cfg.strides):
            layers.append(_conv_block(cfg, cin, cout, stride, transposed=False))
            cin = cout
        self.features = nn.Sequential(*layers)
        if cfg.latent_dim is None:
            self.head: nn.Module = _pointwise(cfg, cin, code_width)
        else:
            flat = cin * math.prod(_code_grid(cfg))
            self.head = nn.Sequential(nn.Flatten(), nn.Linear(flat, code_width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder with transposed convolutions; last layer is linear."""

    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        top = cfg.channels[-1]
        if cfg.latent_dim is None:
            self.stem: nn.Module = _pointwise(cfg, cfg.latent_channels, top)
        else:
            grid = _code_grid(cfg)
            self.stem = nn.Sequential(nn.Linear(cfg.latent_dim, top * math.prod(grid)), nn.Unflatten(1, (top, *grid)))
        ups = list(cfg.channels[::-1][1:]) + [cfg.channels[0]]
        layers, cin = [], top
        for cout, stride in zip(ups, cfg.strides[::-1]):
            layers.append(_conv_block(cfg, cin, cout, stride, transposed=True))
            cin = cout
        layers.append(Convolution(cfg.spatial_dims, cin, cfg.outputs, kernel_size=cfg.kernel_size, conv_only=True))
        self.layers = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(z))


def _code_grid(cfg: AutoencoderConfig) -> tuple[int, ...]:
    assert cfg.input_size is not None
    return tuple(math.ceil(s / cfg.downsampling) for s in cfg.input_size)


def _mlp(sizes: list[int], act: str, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(Act[act]())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig, code_width: int):
        super().__init__()
        assert cfg.input_size is not None
        flat = cfg.in_channels * math.prod(cfg.input_size)
        self.net = nn.Sequential(nn.Flatten(), _mlp([flat, *cfg.hidden, code_width], cfg.act, cfg.dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DenseDecoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        assert cfg.input_size is not None and cfg.latent_dim is not None
        hidden = cfg.decoder_hidden if cfg.decoder_hidden is not None else cfg.hidden[::-1]
        flat = cfg.outputs * math.prod(cfg.input_size)
        self.net = nn.Sequential(
            _mlp([cfg.latent_dim, *hidden, flat], cfg.act, cfg.dropout),
            nn.Unflatten(1, (cfg.outputs, *cfg.input_size)),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_backbone(cfg: AutoencoderConfig, code_width: int) -> tuple[nn.Module, nn.Module]:
    """Encoder producing `code_width` code channels/units, and the matching decoder."""
    if cfg.flat_code and cfg.input_size is None:
        raise ValueError(f"{cfg.name} with a flat code needs input_size (the domain's model_config hook fills it from the data)")
    if cfg.architecture == "conv":
        return ConvEncoder(cfg, code_width), ConvDecoder(cfg)
    return DenseEncoder(cfg, code_width), DenseDecoder(cfg)
