"""ECG codec ablations on the validation split of the training records (never on the test records).

`python -m bench.ecg_ablation [--arms hyperprior,factorized] [--steps 2600] [--threads 1]
[--held-out 104,116] [--train-records 105,106] [--probe-gains 1,0.5]`

Each arm is the train stage's codec (params.yaml's `ecg.train`, variant A's rate weight) with one
change, trained for the same number of steps on random windows of the prepared training signals
(seeded, so a run repeats), then used to code the held-out last 10 % of each training record
whole, normalised as the codec normalises it. Its rate is what the integer tables would write
(`table_bits`), its distortion the PRDN of the decoded ADC values; the wavelet codec is run at the
same CR on the same segment. The `blocks` column codes the same validation segments cut into
independent windows of the training window's length, to show what coding the whole record (no
block edges) is worth.

With `--held-out`, the named training records are left out of training altogether and are coded
whole instead: that asks what the test asks (does the codec hold on a record it never saw?), which
held-out segments of trained records cannot. `--train-records` trains on those records only (the others, not
held out, are left unused): run with a growing list and the same `--held-out`, it draws the curve of how
well the codec holds on unseen records against how many records it trained on. `--probe-gains` also codes each validation signal
scaled by those gains (re-rounded to ADC units): record 100 is an MLII lead at half the amplitude
of the training records' MLII leads, and a gain of 0.5 asks what that does to an arm.

Arms: `hyperprior` (the design), `factorized` (one learned Gaussian scale per latent channel,
no side information: the prior the codec had before), `side8` (8 instead of 16 side channels),
`wide` (channels ×1.5), `unnormalised` (every lead trained and coded at its own amplitude, as the
codec did before format 3: the squared error then weighs a large record more than a small one,
which PRDN does not), and two augmentations of the training windows, which ask whether synthetic
variety stands in for more records: `gain` (each window scaled by a factor log-uniform in `GAIN`:
another amplitude) and `warp` (each window cut `f` times as long, `f` log-uniform in `WARP`, and
resampled to the window: another heart rate and QRS width).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latente.domains.ecg import baselines
from latente.domains.ecg.data import Lead, load_signals, normalising_gain
from latente.domains.ecg.metrics import compression_ratio, prdn
from latente.domains.ecg.model import EcgCodec, transform_config
from latente.domains.ecg.params import PrepareParams, TrainParams
from latente.shared.io import read_json, write_json
from latente.shared.models.entropy import bin_bits, gaussian_cdf, table_bits
from latente.shared.params import stage_params
from bench._cases import _prepared

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "ecg_ablation.json"
ADC_GAIN, ADC_BASELINE = 200.0, 1024  # MIT-BIH: 200 units per mV around 1024


class FactorizedCodec(EcgCodec):
    """The ablation arm without side information: one learned scale-table position per latent channel.

    The position is 8 × a parameter, so Adam's steps of about lr move it across the table within
    the run (a channel the encoder leaves unused must fall from the middle to the bottom)."""

    SPEED = 8.0

    def __init__(self, *args):
        super().__init__(*args)
        middle = (self.hyperprior.config.levels - 1) / 2
        self.channel_position = torch.nn.Parameter(torch.full((self.transform.config.latent_channels,), middle / self.SPEED))

    def index(self) -> torch.Tensor:
        return (self.SPEED * self.channel_position).clamp(0, self.hyperprior.config.levels - 1).view(1, -1, 1)

    def forward(self, x, target=None):
        from latente.shared.models import AEOutput

        y = self.transform.encoder(self.pad(x))
        y_hat = y + torch.rand_like(y) - 0.5
        scale = self.hyperprior.config.scale_min * torch.exp(self.hyperprior.log_step * self.index())
        rate = bin_bits(gaussian_cdf, y_hat, scale).flatten(1).sum(1)
        recon = self.synthesise(y_hat, x.shape[-1])
        se = ((recon - x) ** 2).flatten(1).sum(1)
        return AEOutput(recon=recon, z=y, loss=(se + self.rate_weight * rate).mean(), terms={"recon": se, "rate": rate})


def build(arm: str, params: TrainParams) -> EcgCodec:
    transform, hyper = transform_config(params.model), params.hyperprior
    rate_weight = next(iter(params.variants.values())).rate_weight
    if arm == "side8":
        hyper = hyper.model_copy(update={"channels": 8})
    if arm == "wide":
        transform = transform.model_copy(update={"channels": tuple(int(c * 1.5) for c in transform.channels)})
    return (FactorizedCodec if arm == "factorized" else EcgCodec)(transform, hyper, rate_weight)


GAIN = (0.5, 2.0)  # the `gain` arm's amplitude factors
WARP = (0.8, 1.25)  # the `warp` arm's time factors: about 60 bpm read as 48 to 75


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))


def training_window(signal: torch.Tensor, window: int, rng: np.random.Generator, arm: str) -> torch.Tensor:
    """A random window of `signal`. Only the `warp` and `gain` arms draw a factor, so every other arm takes the
    same windows as before they existed."""
    span = int(round(window * log_uniform(rng, WARP))) if arm == "warp" else window
    start = rng.integers(len(signal) - span)
    cut = signal[start : start + span]
    if arm == "warp":
        cut = torch.from_numpy(np.interp(np.linspace(0, span - 1, window), np.arange(span), cut.numpy())).to(signal.dtype)
    return cut * log_uniform(rng, GAIN) if arm == "gain" else cut


def train(codec: EcgCodec, signals: list[torch.Tensor], params: TrainParams, steps: int, seed: int, arm: str) -> float:
    """Adam with the trainer's lr on a cosine schedule, random windows (augmented as `arm` says); returns seconds."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimiser = torch.optim.Adam(codec.parameters(), lr=params.trainer.lr)
    started = time.perf_counter()
    codec.train()
    for step in range(steps):
        for group in optimiser.param_groups:
            group["lr"] = params.trainer.lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        batch = []
        for _ in range(params.trainer.batch_size):
            batch.append(training_window(signals[rng.integers(len(signals))], params.window, rng, arm))
        loss = codec(torch.stack(batch).unsqueeze(1)).loss
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(codec.parameters(), params.trainer.grad_clip or 1.0)
        optimiser.step()
    codec.eval()
    return time.perf_counter() - started


@torch.no_grad()
def code(codec: EcgCodec, mv: np.ndarray, gain: float) -> tuple[float, np.ndarray]:
    """(bits, decoded ADC) of one segment coded whole, at shift 0, after scaling it by `gain`."""
    hyper, cfg = codec.hyperprior, codec.hyperprior.config
    x = codec.pad(torch.from_numpy((gain * mv).astype(np.float32)).view(1, 1, -1))
    y, z = codec.analyse(x)
    symbols = torch.round(y).clamp(-cfg.symbol_bound, cfg.symbol_bound)
    tables = hyper.tables()
    if isinstance(codec, FactorizedCodec):
        indices = torch.round(codec.index()).to(torch.int64).expand_as(symbols)
        side = 0.0
    else:
        z_symbols = torch.round(z).clamp(-cfg.side_bound, cfg.side_bound).to(torch.int64)
        indices = hyper.indices(z_symbols, y.shape[-1])
        channels = np.broadcast_to(np.arange(z_symbols.shape[1]).reshape(1, -1, 1), z_symbols.shape)
        side = table_bits(z_symbols.numpy(), channels, tables["z_frequencies"].numpy().astype(np.int64), cfg.side_bound)
    bits = side + table_bits(symbols.to(torch.int64).numpy(), indices.numpy(), tables["y_frequencies"].numpy().astype(np.int64), cfg.symbol_bound)
    decoded = codec.synthesise(symbols, len(mv))[0, 0].double().numpy() / gain
    return bits, np.rint(decoded * ADC_GAIN + ADC_BASELINE).astype(np.int64)


def score(codec: EcgCodec, validation: dict[str, np.ndarray], window: int, reference_sd_mv: float | None,
          probe_gains: list[float]) -> dict:
    """Each validation lead (in mV) coded whole, normalised to `reference_sd_mv` (None: at its own amplitude)."""
    rows = {}
    for (name, signal), probe in ((item, g) for item in sorted(validation.items()) for g in probe_gains):
        adc = np.rint(probe * signal * ADC_GAIN + ADC_BASELINE).astype(np.int64)
        mv = (adc - ADC_BASELINE) / ADC_GAIN
        lead = Lead(name, "", adc, 360.0, ADC_GAIN, ADC_BASELINE, "mV")
        gain = 1.0 if reference_sd_mv is None else normalising_gain(lead, reference_sd_mv)  # one per lead, as the header has it
        bits, decoded = code(codec, mv, gain)
        cr = compression_ratio(len(adc), math.ceil(bits / 8))
        step = baselines.step_for(lambda s: compression_ratio(len(adc), len(baselines.encode(adc, ADC_BASELINE, s))), cr)
        wavelet = prdn(adc, baselines.decode(baselines.encode(adc, ADC_BASELINE, step)))
        block_bits, block_decoded = 0.0, []
        for start in range(0, len(mv), window):
            b, d = code(codec, mv[start : start + window], gain)
            block_bits += b
            block_decoded.append(d)
        rows[name if probe == 1 else f"{name}×{probe:g}"] = {"cr": cr, "prdn": prdn(adc, decoded), "wavelet_prdn": wavelet,
                      "blocks_cr": compression_ratio(len(adc), math.ceil(block_bits / 8)),
                      "blocks_prdn": prdn(adc, np.concatenate(block_decoded))}
    mean = {k: float(np.mean([r[k] for r in rows.values()])) for k in next(iter(rows.values()))}
    mean["prdn_over_wavelet"] = float(np.mean([r["prdn"] / r["wavelet_prdn"] for r in rows.values()]))
    return {"records": rows, "mean": mean}


def record_list(parser: argparse.ArgumentParser, option: str, text: str, among: dict, what: str) -> list[str]:
    """The comma-separated records of `option`, each one a key of `among` (else the parser's error, exit 2)."""
    records = [r for r in text.split(",") if r]
    unknown = sorted(set(records) - set(among))
    if unknown:
        parser.error(f"{option}: {', '.join(unknown)} not among {what} ({', '.join(sorted(among))})")
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="hyperprior,factorized")
    parser.add_argument("--steps", type=int, default=2600)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--held-out", default="", help="training records left out of training and coded whole")
    parser.add_argument("--train-records", default="", help="train on these records only (default: every record not held out)")
    parser.add_argument("--probe-gains", default="1", help="gains each validation signal is also coded at")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = stage_params("ecg", "train", TrainParams)
    mirror = Path(os.environ.get("LATENTE_MIRROR", REPO.parent / "shared" / "datasets"))
    with tempfile.TemporaryDirectory() as tmp:
        prepared = _prepared("ecg", mirror, stage_params("ecg", "prepare", PrepareParams), Path(tmp)).prepared
        normalised = load_signals(prepared / "train.safetensors")
        validation_normalised = load_signals(prepared / "validation.safetensors")
        meta = read_json(prepared / "prepared.json")
    # the prepare stage's signals are normalised (its reference is the mean over all the training
    # records: a scale constant, also with --held-out); scoring starts from the leads in mV
    gains = {name: m["normalising_gain"] for name, m in meta["records"].items()}
    validation = {name: s / gains[name] for name, s in validation_normalised.items()}
    held_out = record_list(parser, "--held-out", args.held_out, normalised, "the training records")
    if held_out:
        validation = {r: torch.cat([normalised.pop(r) / gains[r], validation[r]]) for r in held_out}
    trained_on = record_list(parser, "--train-records", args.train_records, normalised, "the records left for training")
    if trained_on:
        normalised = {r: normalised[r] for r in trained_on}
    probe_gains = [float(g) for g in args.probe_gains.split(",")]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}  # arms run earlier stay
    for arm in args.arms.split(","):
        torch.manual_seed(args.seed)
        codec = build(arm, params)
        reference_sd_mv = None if arm == "unnormalised" else meta["reference_sd_mv"]
        signals = [s if reference_sd_mv else s / gains[r] for r, s in sorted(normalised.items())]
        seconds = train(codec, signals, params, args.steps, args.seed, arm)
        key = arm if not held_out else f"{arm} (held out {','.join(held_out)})"
        if trained_on:
            key += f" (trained on {','.join(trained_on)})"
        results[key] = {"steps": args.steps, "trained_on": sorted(normalised), "batch_size": params.trainer.batch_size, "window": params.window,
                        "threads": args.threads, "train_seconds": seconds,
                        **score(codec, {r: v.double().numpy() for r, v in validation.items()}, params.window, reference_sd_mv, probe_gains)}
        m = results[key]["mean"]
        for name, r in results[key]["records"].items():
            print(f"  {name:10s} CR {r['cr']:.1f} PRDN {r['prdn']:.2f} (wavelet {r['wavelet_prdn']:.2f}, ratio {r['prdn'] / r['wavelet_prdn']:.3f})")
        print(f"{key:11s} CR {m['cr']:.1f} PRDN {m['prdn']:.2f} (wavelet {m['wavelet_prdn']:.2f}, ratio {m['prdn_over_wavelet']:.3f}) "
              f"| blocks CR {m['blocks_cr']:.1f} PRDN {m['blocks_prdn']:.2f} | {seconds:.0f} s", flush=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
