"""The family VAE: the shared dense_vae with a DeepSequence-style decoder output layer.

DeepSequence's decoder output (Riesselman et al. 2018) is a linear layer whose weight is
built from parts: a position × dictionary weight times a small dictionary over the 21
states ("convolved patterns"), scaled per hidden-unit group and position by a sigmoid
gate (group sparsity, tiled over `patterns` groups), with the logits times a learned
inverse temperature. All of it is a reparametrisation of one linear layer, and the
encoder's first layer is stored as an embedding table for speed on one-hot input; after
training both are folded back into the plain `dense_vae` weights, so the saved folder is
an ordinary shared model that `load_model` loads as is.

The decoder weights are regularised as in DeepSequence, by a `prior` loss term divided by
Neff per sequence: either MAP (its MLE variant: a Gaussian prior on the weights and a
logit-normal prior on the gates) or, with `bayesian`, a factorised Gaussian posterior over
every decoder weight whose KL to those priors is the term (its SVI variant). A Bayesian
decoder is saved as its posterior mean.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.special import erfinv
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from latente.domains.protein import DOMAIN
from latente.domains.protein.data import ALPHABET, one_hot
from latente.domains.protein.params import DecoderParams
from latente.shared.errors import UserError
from latente.shared.io import read_json
from latente.shared.models import AutoencoderConfig, LoadedModel, build_model, load_model
from latente.shared.models.autoencoders import VariationalAutoencoder


def model_config(model: AutoencoderConfig, length: int) -> AutoencoderConfig:
    """The params' dense_vae for an alignment of `length` focus columns: one-hot [21, length] input."""
    return AutoencoderConfig.model_validate(
        {**model.model_dump(), "spatial_dims": 1, "in_channels": len(ALPHABET), "input_size": (length,)})


class SparseOutput(nn.Module):
    """logits[b, a, l] = softplus(τ) · (Σ_h act[b, h] · σ(S[h mod G, l]) · (W[h, l] · D)[a] + bias[a, l]).

    Computed position-major ([H, L·21]) so that no weight-sized tensor is permuted per step.
    """

    def __init__(self, hidden: int, length: int, params: DecoderParams):
        super().__init__()
        states = len(ALPHABET)
        if hidden % params.patterns:
            raise ValueError(f"the last decoder layer ({hidden}) must be a multiple of patterns ({params.patterns})")
        self.length, self.states, self.patterns = length, states, params.patterns
        width = params.dictionary or states
        self.weight = nn.Parameter(torch.randn(hidden, length, width) * math.sqrt(2.0 / (hidden + length * width)))
        self.dictionary = (nn.Parameter(torch.randn(width, states) * math.sqrt(2.0 / (width + states)))
                           if params.dictionary else None)
        self.gate = nn.Parameter(torch.zeros(hidden // params.patterns, length))
        self.temperature = nn.Parameter(torch.ones(()))
        self.bias = nn.Parameter(torch.full((length, states), 0.1))

    def position_major(self) -> torch.Tensor:
        """The gated weight [H, L·21], before the temperature."""
        w = self.weight if self.dictionary is None else self.weight @ self.dictionary  # [H, L, 21]
        w = w * torch.sigmoid(self.gate).repeat(self.patterns, 1)[..., None]
        return w.reshape(w.shape[0], -1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias.reshape(-1), h, self.position_major()) * F.softplus(self.temperature)
        return out.reshape(len(h), self.length, self.states).transpose(1, 2).reshape(len(h), -1)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight [21·L, H], bias [21·L]) of the equivalent plain linear layer (channel-major output)."""
        scale = F.softplus(self.temperature)
        w = (self.position_major() * scale).reshape(-1, self.length, self.states)
        return w.permute(2, 1, 0).reshape(-1, w.shape[0]), (self.bias * scale).t().reshape(-1)


class OneHotLinear(nn.Module):
    """The encoder's first linear layer, stored row-per-input as an embedding table.

    On one-hot input [B, 21·L] the product is a sum of L table rows (`embedding_bag`), about
    twice as fast to train as the dense product; any other input takes the dense product.
    """

    def __init__(self, linear: nn.Linear, states: int):
        super().__init__()
        self.states = states
        self.table = nn.Parameter(linear.weight.detach().t().contiguous())
        self.bias = nn.Parameter(linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.reshape(len(x), self.states, -1)
        if not bool(((grid == 0) | (grid == 1)).all() and (grid.sum(1) == 1).all()):
            return F.linear(x, self.table.t(), self.bias)
        length = grid.shape[2]
        index = grid.argmax(1) * length + torch.arange(length, device=x.device)
        return F.embedding_bag(index, self.table, mode="sum") + self.bias


class GaussianPosterior(nn.Module):
    """Parametrisation of a decoder weight: drawn from N(mean, σ²) while training, the mean otherwise."""

    def __init__(self, like: torch.Tensor, log_sigma: float = -5.0):
        super().__init__()
        self.log_sigma = nn.Parameter(torch.full_like(like, log_sigma))

    def forward(self, mean: torch.Tensor) -> torch.Tensor:
        return mean + torch.exp(self.log_sigma) * torch.randn_like(mean) if self.training else mean


def _gaussian_kl(mean: torch.Tensor, log_sigma: torch.Tensor, prior_mu: float, prior_sigma: float) -> torch.Tensor:
    """KL(N(mean, σ²) ‖ N(prior_mu, prior_sigma²)), summed."""
    return (math.log(prior_sigma) - log_sigma
            + (torch.exp(2 * log_sigma) + (mean - prior_mu) ** 2) / (2 * prior_sigma ** 2) - 0.5).sum()


class FamilyVAE(VariationalAutoencoder):
    """dense_vae whose decoder output layer is SparseOutput and whose loss adds the weight prior."""

    def __init__(self, config: AutoencoderConfig, params: DecoderParams, neff: float):
        super().__init__(config)
        self.encoder.net[1][0] = OneHotLinear(self.encoder.net[1][0], config.in_channels)
        layers = self.decoder.net[0]
        assert isinstance(layers[-1], nn.Linear) and config.input_size is not None
        if params.sparse:
            layers[-1] = SparseOutput(layers[-1].in_features, config.input_size[0], params)
        if params.bayesian:
            for module in list(self.decoder.modules()):
                for name, weight in list(module.named_parameters(recurse=False)):
                    parametrize.register_parametrization(module, name, GaussianPosterior(weight))
        self.params = params
        self.neff = neff
        # logit-normal prior of the gates, centred so that P(gate on) = params.gate_prior_p
        self.gate_mu = math.sqrt(2.0) * params.gate_prior_sigma * float(erfinv(2.0 * params.gate_prior_p - 1.0))

    def _prior(self, name: str) -> tuple[float, float]:
        """(mean, sd) of the Gaussian prior of a decoder weight: logit-normal gates, N(0, 1) otherwise."""
        return (self.gate_mu, self.params.gate_prior_sigma) if name == "gate" else (0.0, 1.0)

    def penalty(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        prior = torch.zeros(())
        for module in self.decoder.modules():
            if parametrize.is_parametrized(module):
                for name, chain in module.parametrizations.items():
                    prior = prior + _gaussian_kl(chain.original, chain[0].log_sigma, *self._prior(name))
            else:
                for name, p in module.named_parameters(recurse=False):
                    mu, sigma = self._prior(name)
                    weight = 1.0 if name == "gate" else self.params.l2
                    prior = prior + weight * ((p - mu) ** 2).sum() / (2.0 * sigma ** 2)
        return {"prior": (prior / self.neff).expand(z.shape[0])}

    def plain(self) -> VariationalAutoencoder:
        """The equivalent shared dense_vae (layers folded back, posterior means), in eval mode."""
        twin = copy.deepcopy(self).eval()
        for module in twin.decoder.modules():
            for name in list(getattr(module, "parametrizations", {})):
                parametrize.remove_parametrizations(module, name, leave_parametrized=False)
        first, output = twin.encoder.net[1][0], twin.decoder.net[0][-1]
        first_key, output_key = "encoder.net.1.0", f"decoder.net.0.{len(self.decoder.net[0]) - 1}"
        state = {k: v for k, v in twin.state_dict().items() if not k.startswith((first_key + ".", output_key + "."))}
        with torch.no_grad():
            state[f"{first_key}.weight"] = first.table.t().clone()
            state[f"{first_key}.bias"] = first.bias.clone()
            if isinstance(output, SparseOutput):
                state[f"{output_key}.weight"], state[f"{output_key}.bias"] = output.folded()
            else:
                state[f"{output_key}.weight"] = output.weight.clone()
                state[f"{output_key}.bias"] = output.bias.clone()
        model = build_model(self.config)
        model.load_state_dict(state)
        return model.eval()


@dataclass(frozen=True)
class Draws:
    """Per sequence [M] and latent draw z_s = μ + σ·ε_s [S], the terms of both bounds on log p(x) from the same
    decoder passes: the ELBO is the mean of `elbo` over the draws, the importance-weighted bound (IWAE, Burda et
    al. 2016) the log of the mean of exp(`log_weight`), never below the ELBO in expectation and tighter as S grows."""

    elbo: np.ndarray  # log p(x|z_s) − KL(q(z|x) ‖ p(z)), the KL in closed form
    log_weight: np.ndarray  # log p(x|z_s) + log p(z_s) − log q(z_s|x)


@torch.no_grad()
def sequence_draws(model: VariationalAutoencoder, codes: np.ndarray, samples: int, seed: int = 0, rows: int = 4096) -> Draws:
    """Both bounds' terms for each sequence [M, L] under each of `samples` draws: [M, samples] arrays.

    The same draws ε are used for every sequence (common random numbers), so differences
    between a mutant and the wild type carry far less sampling noise than independent draws.
    The encoder runs once per sequence; only the decoder runs per draw.
    """
    model.eval()
    latent = model.config.latent_dim
    eps = torch.randn(samples, latent, generator=torch.Generator().manual_seed(seed))
    per_batch = max(1, rows // samples)
    elbo = np.empty((len(codes), samples), dtype=np.float64)
    log_weight = np.empty_like(elbo)
    for lo in range(0, len(codes), per_batch):
        block = torch.as_tensor(codes[lo : lo + per_batch], dtype=torch.long)
        mu, logvar = model.encoder(torch.from_numpy(one_hot(codes[lo : lo + per_batch]))).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)  # as in the shared VariationalAutoencoder
        kl = 0.5 * (mu * mu + logvar.exp() - 1.0 - logvar).sum(1)
        z = mu[:, None] + eps[None] * torch.exp(0.5 * logvar)[:, None]  # [b, S, latent]
        # log N(z; 0, I) − log N(z; μ, σ²): the 2π terms cancel, and (z − μ)/σ is ε
        log_prior_ratio = 0.5 * (logvar[:, None] + eps[None] ** 2 - z ** 2).sum(2)
        log_p = F.log_softmax(model.decode(z.reshape(-1, latent)), dim=1)  # [b·S, 21, L]
        index = block.repeat_interleave(samples, dim=0)[:, None]  # the sequence's state per column
        recon = log_p.gather(1, index).sum((1, 2)).reshape(len(block), samples).double()
        elbo[lo : lo + len(block)] = (recon - kl[:, None].double()).numpy()
        log_weight[lo : lo + len(block)] = (recon + log_prior_ratio.double()).numpy()
    return Draws(elbo, log_weight)



@dataclass(frozen=True)
class Effects:
    """A bound's difference mutant − wild type under an ensemble: the mean over members of each member's
    estimate, its Monte Carlo standard error, and each member's own estimate ([members, mutants])."""

    mean: np.ndarray
    se: np.ndarray
    members: np.ndarray


def elbo_effect(elbo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ΔELBO of rows 1… against row 0 (the wild type) from [M, S] draws, and the variance of that estimate.

    With common draws the paired differences d_s are what is averaged: the mean over S draws has
    variance var(d)/S. With one draw there is no spread to measure: NaN.
    """
    d = elbo[1:] - elbo[:1]
    samples = d.shape[1]
    return d.mean(1), (d.var(1, ddof=1) / samples if samples > 1 else np.full(len(d), np.nan))


def iwae_effect(log_weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ΔIWAE of rows 1… against row 0 from [M, S] log importance weights, and its jackknife variance.

    The estimate is log mean_s w_s(mutant) − log mean_s w_s(wild type). A log of a mean has no
    per-draw terms to take the variance of, so the draws are left out one at a time (the same draw
    from both sequences, as they share it): var = (S − 1)/S · Σ_s (θ₋ₛ − mean θ₋)². One draw: NaN.
    """
    full = log_mean_exp(log_weight, axis=1)
    delta = full[1:] - full[:1]
    samples = log_weight.shape[1]
    if samples == 1:
        return delta, np.full(len(delta), np.nan)
    left_out = leave_one_out_log_mean_exp(log_weight)
    d = left_out[1:] - left_out[:1]
    return delta, (samples - 1) / samples * ((d - d.mean(1, keepdims=True)) ** 2).sum(1)


def leave_one_out_log_mean_exp(values: np.ndarray) -> np.ndarray:
    """[M, S] → [M, S]: log of the mean of exp over each row's other S − 1 values.

    Each row's exponentials are scaled by its largest; leaving out any other value subtracts at most
    an equal term from a sum ≥ 1, and the largest's own left-out sum is summed afresh, so no
    difference of nearly equal sums loses the small ones.
    """
    top = values.max(1, keepdims=True)
    scaled = np.exp(values - top)
    rest = scaled.sum(1, keepdims=True) - scaled
    largest = values.argmax(1)
    rows = np.arange(len(values))
    without_largest = scaled.copy()
    without_largest[rows, largest] = 0.0
    rest[rows, largest] = without_largest.sum(1)
    with np.errstate(divide="ignore"):
        return top + np.log(rest / (values.shape[1] - 1))


EFFECTS = {"elbo": lambda draws: elbo_effect(draws.elbo), "iwae": lambda draws: iwae_effect(draws.log_weight)}  # by BOUNDS


def combine_members(members: list[tuple[np.ndarray, np.ndarray]]) -> Effects:
    """The ensemble's effect from each member's (estimate, variance of the estimate).

    The members are independent, so the ensemble's mean Σ m_k / K has the standard error
    √(Σ_k var_k) / K: the error of the finite number of draws, which shrinks as 1/√S (the spread
    between members is what the ensemble averages, not an error of the estimate).
    """
    means = np.stack([mean for mean, _ in members])
    variances = np.stack([variance for _, variance in members])
    return Effects(means.mean(0), np.sqrt(variances.sum(0)) / len(members), means)


def ensemble_effects(models: list[VariationalAutoencoder], wild_type: np.ndarray, mutants: np.ndarray, samples: int,
                     seed: int = 0) -> dict[str, Effects]:
    """Every bound's difference mutant − wild type under every member, each member with the same `samples`
    draws for all sequences and both bounds from the same draws: {bound: Effects}."""
    codes = np.concatenate([wild_type[None], mutants])
    draws = [sequence_draws(model, codes, samples, seed) for model in models]
    return {bound: combine_members([effect(d) for d in draws]) for bound, effect in EFFECTS.items()}


def log_mean_exp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """log of the mean of exp(values) along `axis`, without overflow."""
    top = values.max(axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(values - top).mean(axis))


@torch.no_grad()
def sample_sequences(models: list[VariationalAutoencoder], n: int, seed: int = 0, temperature: float = 1.0,
                     latent_scale: float = 1.0) -> np.ndarray:
    """Codes [n, L] drawn from the ensemble's prior: sequence i from member i mod K, with
    z ~ N(0, latent_scale² I) and each state from softmax(logits / temperature) of its column.

    Both knobs below 1 trade diversity for typicality: a smaller latent scale keeps z where the
    encoder puts natural sequences, a lower temperature sharpens each column's distribution.
    """
    g = torch.Generator().manual_seed(seed)
    out = np.empty((n, models[0].config.input_size[0]), dtype=np.int8)
    for k, model in enumerate(models):
        rows = np.arange(k, n, len(models))
        if not len(rows):
            continue
        z = torch.randn(len(rows), model.config.latent_dim, generator=g) * latent_scale
        probs = torch.softmax(model.decode(z) / temperature, dim=1)  # [n_k, 21, L]
        flat = probs.permute(0, 2, 1).reshape(-1, probs.shape[1])
        out[rows] = torch.multinomial(flat, 1, generator=g).reshape(len(rows), -1).numpy()
    return out


@torch.no_grad()
def most_probable_sequences(model: VariationalAutoencoder, z: torch.Tensor) -> np.ndarray:
    """Codes [n, L]: every column's most probable state given each latent point (the decoder's mode, no sampling)."""
    model.eval()
    return model.decode(z).argmax(1).numpy().astype(np.int8)


@torch.no_grad()
def latent_means(model: VariationalAutoencoder, codes: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    return np.concatenate([model.encode(torch.from_numpy(one_hot(codes[lo : lo + batch])), sample=False).numpy()
                           for lo in range(0, len(codes), batch)])


ENSEMBLE = "ensemble.json"


@dataclass(frozen=True)
class FamilyEnsemble:
    """The members of one trained procedure, each an ordinary shared model folder.

    An ensemble folder holds `ensemble.json` (the procedure's seed, the member folders and their
    seeds, and, at the top of the train stage's output, the replicate procedures' folders) and
    `members/<k>/`. A plain model folder loads as an ensemble of one.
    """

    members: list[LoadedModel]
    seed: int | None
    folder: Path
    replicates: dict[int, Path]

    @property
    def models(self) -> list[VariationalAutoencoder]:
        return [member.model for member in self.members]

    @property
    def first(self) -> LoadedModel:
        """Member 0: its folder carries the focus, the training data record and the decoder options."""
        return self.members[0]


def load_family(folder: str | Path) -> FamilyEnsemble:
    """The ensemble (or the single model) saved in `folder`; every member through `load_model`."""
    folder = Path(folder)
    index = folder / ENSEMBLE
    if not index.is_file():
        return FamilyEnsemble([load_model(folder, domain=DOMAIN)], None, folder, {})
    try:
        meta = read_json(index)
        members, seed = [folder / str(rel) for rel in meta["members"]], int(meta["seed"])
        replicates = {int(s): folder / str(rel) for s, rel in meta.get("replicates", {}).items()}
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(index, f"not an ensemble index ({err})", "retrain the model") from None
    if not members:
        raise UserError(index, "lists no members", "retrain the model")
    return FamilyEnsemble([load_model(member, domain=DOMAIN) for member in members], seed, folder, replicates)
