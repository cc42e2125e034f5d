"""One trainer for every domain: seeded, resumable, DVCLive-logged, DDP-ready.

A checkpoint (safetensors + JSON) is written atomically after every epoch. Rerunning an
interrupted training with the same fingerprint resumes from it and ends with the same
weights as an uninterrupted run: the shuffling order depends only on (seed, epoch), the
learning rate only on the epoch, and the global RNG state is saved with the weights.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.models.autoencoders import AEOutput
from latente.shared.models.store import save_tensors
from latente.shared.params import TrainerConfig


@dataclass
class FitResult:
    """The one training record every domain saves (`to_json`), whatever the model.

    `seconds` and `cpu_seconds` are cumulative over every run that built the weights, so a
    resumed training reports the time of the whole training, not of its last piece;
    `resumed_from_epoch` is the number of epochs already done when this run started (0: fresh).
    """

    epochs_run: int
    best_val_loss: float
    best_epoch: int
    stopped_early: bool
    resumed_from_epoch: int
    seconds: float
    cpu_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed every RNG and ask torch for deterministic kernels (CPU runs are bit-exact)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(name)


class WeightAverage:
    """Exponential moving average of a model's floating-point state (parameters and running statistics).

    The decay ramps up as (1 + n) / (10 + n) over the first updates, so early averages are not
    dominated by the random initialisation. Averaged weights are smoother and usually generalise
    better than the last step's, without a second training run.

    The model's floating-point tensors are looked up once: `update` runs every optimiser step and
    reads them in place, so the model must not be moved to another device while it is averaged.
    """

    def __init__(self, model: nn.Module, decay: float, updates: int = 0, average: dict[str, torch.Tensor] | None = None):
        self.decay, self.updates = decay, updates
        self.live = [(name, value) for name, value in model.state_dict().items() if value.dtype.is_floating_point]
        self.average = average if average is not None else {name: value.clone() for name, value in self.live}
        self.averaged = [self.average[name] for name, _ in self.live]

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the model's current weights (call after every optimiser step)."""
        self.updates += 1
        weight = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.averaged, [value for _, value in self.live], weight)

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The model's state with the averaged values in place of the current ones."""
        return {k: (self.average[k] if k in self.average else v).detach().cpu().clone() for k, v in model.state_dict().items()}


@dataclass
class DistributedContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group that torchrun describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# the keyword each `TrainerConfig.adamw_kernel` gives torch.optim.AdamW
ADAMW_KEYWORDS: dict[str, dict[str, bool]] = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def adamw(parameters, config: TrainerConfig) -> torch.optim.AdamW:
    """The one optimiser every domain trains with, in the implementation `config` names."""
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay, **ADAMW_KEYWORDS[config.adamw_kernel])


def learning_rate(config: TrainerConfig, epoch: int) -> float:
    """Learning rate for a 0-based epoch: linear warm-up, then constant or cosine decay."""
    if epoch < config.warmup_epochs:
        return config.lr * (epoch + 1) / config.warmup_epochs
    if config.scheduler == "constant":
        return config.lr
    span = max(1, config.epochs - config.warmup_epochs)
    progress = (epoch - config.warmup_epochs) / span
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, (list, tuple)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None


def forward(model: nn.Module, batch: Any, device: torch.device, autocast: dict[str, Any]) -> tuple[AEOutput, int]:
    """The one forward pass of training and validation: batch → device → autocast → model(x, target).

    Returns the model's output and the number of samples in the batch.
    """
    x, target = _split(batch)
    x = x.to(device)
    target = target.to(device) if target is not None else None
    with torch.autocast(**autocast):
        return model(x, target), x.shape[0]


class LossMeans:
    """Per-sample means of the loss and of each loss term over the batches of one pass."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.seen = 0

    def add(self, out: AEOutput, n: int) -> None:
        self.seen += n
        self.sums["loss"] = self.sums.get("loss", 0.0) + out.loss.detach().float().item() * n
        for name, term in out.terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + term.detach().float().sum().item()

    def means(self) -> dict[str, float]:
        return {k: v / max(self.seen, 1) for k, v in self.sums.items()}


def epoch_order(n: int, seed: int, epoch: int, weights: torch.Tensor | None, ctx: DistributedContext) -> list[int]:
    """Sample order for one epoch: a function of (seed, epoch) only, sharded across ranks."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if weights is None:
        order = torch.randperm(n, generator=g)
    else:
        order = torch.multinomial(weights.double(), n, replacement=True, generator=g)
    usable = n - n % ctx.world if ctx.world > 1 else n
    return order[:usable][ctx.rank :: ctx.world].tolist()


class Checkpoint:
    """Folder with weights, best weights, optimizer state, RNG state and progress."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def exists(self) -> bool:
        return (self.folder / "state.json").is_file()

    def save(self, model: nn.Module, best: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, state: dict,
             average: WeightAverage | None = None) -> None:
        opt = optimizer.state_dict()
        tensors, scalars = {}, {}
        for pid, slots in opt["state"].items():
            for key, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"{pid}.{key}"] = value
                else:
                    scalars[f"{pid}.{key}"] = value
        with atomic_dir(self.folder) as tmp:
            save_tensors(model.state_dict(), tmp / "weights.safetensors")
            save_tensors(best, tmp / "best.safetensors")
            save_tensors(tensors or {"_empty": torch.zeros(0)}, tmp / "optimizer.safetensors")
            save_tensors({"cpu": torch.get_rng_state()}, tmp / "rng.safetensors")
            if average is not None:
                save_tensors(average.average, tmp / "average.safetensors")
                state = {**state, "average_updates": average.updates}
            write_json(tmp / "state.json", {**state, "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars}})

    def load_average(self, model: nn.Module, decay: float, device: torch.device) -> WeightAverage:
        updates = read_json(self.folder / "state.json")["average_updates"]
        average = {k: v.to(device) for k, v in load_file(str(self.folder / "average.safetensors")).items()}
        return WeightAverage(model, decay, updates, average)

    def load(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict[str, torch.Tensor]]:
        state = read_json(self.folder / "state.json")
        model.load_state_dict(load_file(str(self.folder / "weights.safetensors")))
        tensors = load_file(str(self.folder / "optimizer.safetensors"))
        slots: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key != "_empty":
                pid, name = key.split(".", 1)
                slots.setdefault(int(pid), {})[name] = value
        for key, value in state["optimizer"]["scalars"].items():
            pid, name = key.split(".", 1)
            slots.setdefault(int(pid), {})[name] = value
        optimizer.load_state_dict({"state": slots, "param_groups": state["optimizer"]["param_groups"]})
        torch.set_rng_state(load_file(str(self.folder / "rng.safetensors"))["cpu"])
        return state, load_file(str(self.folder / "best.safetensors"))


def _open_live(live_dir: Path | None, history: list[dict[str, float]]):
    """A fresh DVCLive run; the epochs already done are replayed so curves stay whole."""
    if live_dir is None:
        return None
    from dvclive import Live

    live = Live(dir=str(live_dir), resume=False, report=None, save_dvc_exp=False, dvcyaml=False)
    for row in history:
        _log(live, row)
    return live


def _log(live, row: dict[str, float]) -> None:
    for key, value in row.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()


class Training:
    """One `fit` call: the device, optimiser, checkpoint and progress that its steps share.

    The steps are `resume`, then per epoch `train_epoch`, `validate` and `end_epoch`, then
    `result`; `fit` runs them in that order.
    """

    def __init__(self, model: nn.Module, config: TrainerConfig, checkpoint_dir: Path, fingerprint: dict[str, Any]):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        if config.threads:
            torch.set_num_threads(config.threads)
        device = resolve_device(config.device)
        self.ctx = init_distributed(device)
        self.device = torch.device("cuda", self.ctx.local_rank) if device.type == "cuda" else device
        self.model, self.config = model.to(self.device), config
        self.optimizer = adamw(model.parameters(), config)
        self.fingerprint = json.loads(json.dumps({**fingerprint, "trainer": config.model_dump(mode="json"), "world": self.ctx.world}))
        self.checkpoint = Checkpoint(checkpoint_dir)
        self.autocast = dict(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda" and config.bf16)
        self.average: WeightAverage | None = None
        # progress; `best_epoch` is 0-based, and the seconds are those of the runs before this one
        self.start_epoch, self.best_val, self.best_epoch, self.bad_epochs = 0, math.inf, -1, 0
        self.history: list[dict[str, float]] = []
        self.seconds_before, self.cpu_seconds_before = 0.0, 0.0
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @property
    def stopped_early(self) -> bool:
        return bool(self.config.patience is not None and self.bad_epochs >= self.config.patience)

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_seconds_before + time.process_time() - self.cpu_started

    def resume(self) -> None:
        """Restore weights, optimiser, RNG, progress and weight average from a checkpoint of this run.

        A checkpoint with another fingerprint is ignored, so a changed experiment never resumes from a
        stale one; without one the weight average (if any) starts from the current weights.
        """
        model, checkpoint = self.model, self.checkpoint
        if checkpoint.exists() and read_json(checkpoint.folder / "state.json").get("fingerprint") == self.fingerprint:
            state, self.best_state = checkpoint.load(model, self.optimizer)
            self.start_epoch, self.best_val, self.best_epoch = state["epoch"] + 1, state["best_val"], state["best_epoch"]
            self.bad_epochs, self.history = state["bad_epochs"], state["history"]
            self.seconds_before, self.cpu_seconds_before = state["seconds"], state["cpu_seconds"]
            if self.ctx.main:
                print(f"resuming from checkpoint {checkpoint.folder} after epoch {state['epoch'] + 1}", file=sys.stderr)
        model.to(self.device)
        for slots in self.optimizer.state.values():
            for key, value in slots.items():
                if torch.is_tensor(value) and key != "step":
                    slots[key] = value.to(self.device)
        decay = self.config.ema_decay
        if decay is not None:
            resumed = self.start_epoch > 0 and (checkpoint.folder / "average.safetensors").is_file()
            self.average = checkpoint.load_average(model, decay, self.device) if resumed else WeightAverage(model, decay)

    def train_epoch(self, net: nn.Module, train_set: Dataset, epoch: int, lr: float, sample_weights: torch.Tensor | None) -> dict[str, float]:
        """One optimisation pass over the epoch's sample order (`net` is the model or its DDP wrapper);
        returns the mean training loss and terms."""
        config = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        order = epoch_order(len(train_set), config.seed, epoch, sample_weights, self.ctx)
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=order, drop_last=False)
        net.train()
        means = LossMeans()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, file=sys.stderr, disable=None if self.ctx.main else True)
        for batch in bar:
            out, n = forward(net, batch, self.device, self.autocast)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
            means.add(out, n)
            bar.set_postfix(loss=f"{out.loss.item():.4g}")
        return means.means()

    def validate(self, loader: DataLoader) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        """Validation loss and terms of the epoch's candidate weights (the average's, if one is kept),
        and those weights."""
        model = self.model
        if self.average is None:
            return evaluate_loss(model, loader, self.device, self.autocast), model.state_dict()
        candidate = self.average.state_dict(model)
        current = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(candidate)
        val = evaluate_loss(model, loader, self.device, self.autocast)
        model.load_state_dict(current)
        return val, candidate

    def end_epoch(self, epoch: int, lr: float, train: dict[str, float], val: dict[str, float],
                  candidate: dict[str, torch.Tensor], live: Any) -> dict[str, float]:
        """Record the epoch, keep the candidate if it is the best so far, log and checkpoint; the history row."""
        row = {"epoch": epoch + 1, "lr": lr, **{f"train/{k}": v for k, v in train.items()}, **{f"val/{k}": v for k, v in val.items()}}
        self.history.append(row)
        if val["loss"] < self.best_val:
            self.best_val, self.best_epoch, self.bad_epochs = val["loss"], epoch, 0
            self.best_state = {k: v.detach().cpu().clone() for k, v in candidate.items()}
        else:
            self.bad_epochs += 1
        if self.ctx.main:
            tqdm.write(f"epoch {epoch + 1}: train {row['train/loss']:.5g}  val {val['loss']:.5g}  lr {lr:.3g}", file=sys.stderr)
            if live is not None:
                _log(live, row)
            self.checkpoint.save(self.model, self.best_state, self.optimizer, {
                "fingerprint": self.fingerprint, "epoch": epoch, "best_val": self.best_val, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "history": self.history, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds,
            }, self.average)
        if self.ctx.world > 1:
            dist.barrier()
        return row

    def result(self) -> FitResult:
        """Put the best weights back in the model (on the CPU, in eval mode) and return the record."""
        self.model.load_state_dict(self.best_state)
        self.model.to("cpu").eval()
        return FitResult(
            epochs_run=len(self.history), best_val_loss=self.best_val, best_epoch=self.best_epoch + 1,
            stopped_early=self.stopped_early, resumed_from_epoch=self.start_epoch, seconds=self.seconds,
            cpu_seconds=self.cpu_seconds, history=self.history,
        )


def compilation(config: TrainerConfig):
    """The inductor settings a compiled training runs under (`TrainerConfig.compile`): random numbers from the
    eager generator, so that a compiled model draws the noise and dropout masks an eager one draws. Compilation
    happens at the first step, so the settings must hold for the whole training loop."""
    if not config.compile:
        return contextlib.nullcontext()
    import torch._inductor.config

    return torch._inductor.config.patch(fallback_random=True)


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    config: TrainerConfig,
    checkpoint_dir: str | Path,
    *,
    fingerprint: dict[str, Any],
    live_dir: str | Path | None = None,
    sample_weights: torch.Tensor | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train `model` in place; on return it holds the weights of the best validation epoch.

    `fingerprint` identifies the run (params, data); a checkpoint with another fingerprint
    is ignored, so a changed experiment never resumes from a stale one.
    """
    training = Training(model, config, Path(checkpoint_dir), fingerprint)
    training.resume()
    ctx = training.ctx
    net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if training.device.type == "cuda" else None) if ctx.world > 1 else model
    live = _open_live(Path(live_dir), training.history) if (live_dir is not None and ctx.main) else None
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
    with compilation(config):
        net = torch.compile(net) if config.compile else net
        for epoch in range(training.start_epoch, config.epochs):
            if training.stopped_early:
                break
            lr = learning_rate(config, epoch)
            train = training.train_epoch(net, train_set, epoch, lr, sample_weights)
            val, candidate = training.validate(val_loader)
            row = training.end_epoch(epoch, lr, train, val, candidate, live)
            if on_epoch_end is not None:
                on_epoch_end(epoch, row)
    if live is not None:
        live.end()
    return training.result()


@torch.no_grad()
def evaluate_loss(model: nn.Module, loader: DataLoader, device: torch.device, autocast: dict) -> dict[str, float]:
    """Mean loss and mean per-sample terms over a loader, in eval mode."""
    model.eval()
    means = LossMeans()
    for batch in loader:
        means.add(*forward(model, batch, device, autocast))
    return means.means()
