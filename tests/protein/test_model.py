"""The family VAE: folded output layer, prior term, ELBO sign/shape, sampling, save/load."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml

from latente.domains.protein.data import ALPHABET, one_hot
from latente.domains.protein.model import (
    FamilyVAE, OneHotLinear, SparseOutput, log_mean_exp, model_config, sample_sequences, sequence_draws,
)
from latente.domains.protein.params import DecoderParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.models import AutoencoderConfig, load_model, save_model
from latente.shared.models.autoencoders import VariationalAutoencoder
from latente.shared.params import stage_params

LENGTH = 12
MODEL = {"name": "dense_vae", "recon_loss": "categorical", "hidden": [32], "latent_dim": 4, "decoder_hidden": [8, 16], "act": "RELU"}


def tiny(decoder: dict | None = None, neff: float = 50.0, **model) -> FamilyVAE:
    """A small FamilyVAE over LENGTH columns; `model` overrides fields of MODEL."""
    torch.manual_seed(0)
    params = TrainParams.model_validate({"model": {**MODEL, **model}, "decoder": decoder or {"dictionary": 5, "patterns": 4}})
    model = FamilyVAE(model_config(params.model, LENGTH), params.decoder, neff=neff)
    with torch.no_grad():  # move the gates and temperature away from their initial values
        for name, p in model.named_parameters():
            if name.endswith(("gate", "temperature")):
                p.normal_()
    return model.eval()


def codes(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 21, (n, LENGTH)).astype(np.int8)


def test_model_config_fills_the_alignment_into_the_params_model(repo_root):
    """The hook gives the config the family VAE was always built from: the params' dense_vae sizes,
    a one-hot [21, L] input and nothing else changed (so the default training draws the same weights)."""
    params = stage_params("protein", "train", TrainParams, repo_root / "params.yaml")
    m = params.model
    # the construction of training.model_config before the params held an AutoencoderConfig
    expected = AutoencoderConfig(name="dense_vae", spatial_dims=1, in_channels=len(ALPHABET), input_size=(LENGTH,),
                                 hidden=m.hidden, latent_dim=m.latent_dim, decoder_hidden=m.decoder_hidden, act=m.act,
                                 recon_loss="categorical", beta=m.beta)
    assert model_config(m, LENGTH) == expected
    assert m.input_size is None and m.in_channels == 1  # the params themselves hold no alignment shape


@pytest.mark.parametrize("model, message", [
    ({"name": "dense_ae"}, "dense_vae with a categorical loss"),
    ({"recon_loss": "mse"}, "dense_vae with a categorical loss"),
    ({"input_size": [253]}, "input_size come from the alignment"),
    ({"in_channels": 21}, "in_channels come from the alignment"),
])
def test_train_params_refuse_another_model_or_an_alignment_shape(tmp_path, model, message):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"protein": {"train": {"model": {**MODEL, **model}}}}))
    with pytest.raises(UserError, match=rf"protein\.train\.model.*{message}"):
        stage_params("protein", "train", TrainParams, path)


def test_sparse_output_matches_its_definition():
    params = DecoderParams(patterns=2, dictionary=3)
    layer = SparseOutput(hidden=4, length=LENGTH, params=params)
    with torch.no_grad():
        layer.gate.normal_()
        layer.bias.normal_()
        layer.temperature.fill_(0.3)
    h = torch.randn(5, 4)
    gate = torch.sigmoid(torch.cat([layer.gate, layer.gate]))  # tiled over 2 patterns: unit h uses row h mod 2
    w = torch.einsum("hlk,ka->hla", layer.weight, layer.dictionary) * gate[..., None]
    expected = math.log1p(math.exp(0.3)) * (torch.einsum("bh,hla->bal", h, w) + layer.bias.t())
    assert torch.allclose(layer(h).reshape(5, len(ALPHABET), LENGTH), expected, atol=1e-5)
    weight, bias = layer.folded()
    assert torch.allclose(torch.nn.functional.linear(h, weight, bias), layer(h), atol=1e-5)


def test_one_hot_linear_matches_the_dense_layer():
    dense = torch.nn.Linear(21 * LENGTH, 7)
    layer = OneHotLinear(dense, 21)
    x = torch.from_numpy(one_hot(codes(5))).flatten(1)
    assert torch.allclose(layer(x), dense(x), atol=1e-5)
    soft = torch.rand(5, 21 * LENGTH)  # not one-hot: the dense product
    assert torch.allclose(layer(soft), dense(soft), atol=1e-5)


@pytest.mark.parametrize("decoder, model", [({"dictionary": 5, "patterns": 4}, {}),
                                            ({"dictionary": 0, "patterns": 2}, {"dropout": 0.3}),
                                            ({"sparse": False}, {})])
def test_plain_model_is_the_same_function(decoder, model):
    model = tiny(decoder, **model)
    plain = model.plain()
    assert type(plain) is VariationalAutoencoder
    x = torch.from_numpy(one_hot(codes(6)))
    z = torch.randn(6, 4)
    assert torch.allclose(model.decode(z), plain.decode(z), atol=1e-5)
    assert np.allclose(sequence_draws(model, codes(6), samples=8).elbo, sequence_draws(plain, codes(6), samples=8).elbo, atol=1e-4)
    assert torch.allclose(model(x).terms["kl"], plain(x).terms["kl"])


def test_prior_term_by_hand():
    model = tiny(neff=50.0)
    z = torch.zeros(3, 4)
    decoder = dict(model.decoder.named_parameters())
    gate = decoder.pop("net.0.4.gate")
    mu = math.sqrt(2.0) * 4.0 * -2.1851242  # erfinv(2 * 0.001 - 1) = -2.1851...
    expected = (0.5 * sum((p ** 2).sum() for p in decoder.values()) + ((gate - mu) ** 2).sum() / 32.0) / 50.0
    prior = model.penalty(z)["prior"]
    assert prior.shape == (3,)
    assert torch.allclose(prior, expected.expand(3), rtol=1e-4)
    assert torch.allclose(model.decode(z), model.plain().decode(z), atol=1e-5)


def test_elbo_sign_shape_and_reproducibility():
    model = tiny()
    values = sequence_draws(model, codes(7), samples=16, seed=3).elbo
    assert values.shape == (7, 16)
    assert (values < 0).all()  # log p(x|z) ≤ 0 and KL ≥ 0
    assert np.array_equal(values, sequence_draws(model, codes(7), samples=16, seed=3).elbo)
    assert not np.array_equal(values, sequence_draws(model, codes(7), samples=16, seed=4).elbo)
    # draws are per sequence and independent of how the sequences are batched
    assert np.allclose(values, sequence_draws(model, codes(7), samples=16, seed=3, rows=16).elbo, atol=1e-4)
    # a lower bound on log p(x) for 21 states per column: above the uniform guess is possible, above 0 is not
    assert values.max() < 0 and values.min() > -100 * LENGTH


def test_elbo_agrees_with_the_shared_forward_in_sampling_mode():
    model = tiny().plain()
    c = codes(3)
    x = torch.from_numpy(one_hot(c))
    torch.manual_seed(0)
    with torch.no_grad():
        draws = torch.stack([-(out.terms["recon"] + out.terms["kl"]) for out in (model(x, sample=True) for _ in range(3000))])
    assert np.allclose(sequence_draws(model, c, samples=3000).elbo.mean(1), draws.mean(0).numpy(), atol=0.15)


def test_importance_weighted_bound_nears_the_log_likelihood_by_quadrature():
    """With a 2-d latent, log p(x) = log ∫ p(x|z) p(z) dz is a sum over a fine grid. The encoder's means are
    pushed 1 away, so that the ELBO is loose; the importance-weighted bound from 4000 draws must recover
    nine tenths of the gap, within its Monte Carlo error: a wrong log p(z) − log q(z|x) would not."""
    model = tiny(latent_dim=2).plain()
    with torch.no_grad():
        model.encoder.net[1][2].bias[:2] += 1.0
    c = codes(3)
    step = 0.05
    axis = torch.arange(-8.0, 8.0 + step / 2, step)
    z = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        log_p = torch.log_softmax(model.decode(z), dim=1).double()  # [N, 21, L]
    columns = torch.arange(LENGTH)
    log_prior = -0.5 * (z.double() ** 2).sum(1) - math.log(2 * math.pi)
    exact = np.array([float(torch.logsumexp(log_p[:, torch.as_tensor(row, dtype=torch.long), columns].sum(1) + log_prior, 0))
                      + 2 * math.log(step) for row in c])
    draws = sequence_draws(model, c, samples=4000, seed=1)
    elbo, iwae = draws.elbo.mean(1), log_mean_exp(draws.log_weight, axis=1)
    assert (exact - elbo > 0.5).all()  # the pushed encoder leaves a real gap
    assert (np.abs(exact - iwae) < 0.1 * (exact - elbo)).all()
    # the log weights' mean is a Monte Carlo ELBO (the KL sampled, not in closed form)
    assert np.allclose(draws.log_weight.mean(1), elbo, atol=0.1)


def test_samples_shape_alphabet_and_seed():
    model = tiny()
    drawn = sample_sequences([model], 9, seed=1)
    assert drawn.shape == (9, LENGTH) and drawn.min() >= 0 and drawn.max() < len(ALPHABET)
    assert np.array_equal(drawn, sample_sequences([model], 9, seed=1))


def test_saved_folder_loads_as_the_shared_model(tmp_path):
    model = tiny()
    save_model(model.plain(), tmp_path / "m", domain="protein", preprocessing={}, data={})
    loaded = load_model(tmp_path / "m", domain="protein")
    assert np.allclose(sequence_draws(loaded.model, codes(4), samples=8).elbo, sequence_draws(model, codes(4), samples=8).elbo, atol=1e-4)
    with pytest.raises(UserError, match="is a 'protein' model, not a 'ecg' model"):
        load_model(tmp_path / "m", domain="ecg")


def test_bayesian_decoder_samples_while_training_and_folds_to_its_mean():
    model = tiny({"dictionary": 5, "patterns": 4, "bayesian": True}, neff=10.0)
    z = torch.randn(3, 4)
    model.train()
    assert not torch.allclose(model.decode(z), model.decode(z))  # weights drawn per call
    model.eval()
    assert torch.allclose(model.decode(z), model.plain().decode(z), atol=1e-5)
    # KL of every decoder weight's posterior to its prior, by hand for one tensor
    chain = model.decoder.net[0][0].parametrizations.weight
    sigma = torch.exp(chain[0].log_sigma)
    kl = (-torch.log(sigma) + (sigma ** 2 + chain.original ** 2) / 2 - 0.5).sum()
    prior = model.penalty(z)["prior"][0] * 10.0
    assert prior > kl > 0
