"""One trainer for every domain: seeded, resumable, DVCLive-logged, DDP-ready.

A checkpoint (safetensors + JSON) is written atomically after every epoch. Rerunning an
interrupted training with the same fingerprint resumes from it and ends with the same
weights as an uninterrupted run: the shuffling order depends only on (seed, epoch), the
learning rate only on the epoch, and the global RNG state is saved with the weights.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.models.store import save_tensors
from latente.shared.params import StrictParams


class TrainerConfig(StrictParams):
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    scheduler: Literal["cosine", "constant"] = "cosine"
    warmup_epochs: int = 0
    patience: int | None = 10
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    bf16: bool = True
    threads: int | None = None
    ema_decay: float | None = Field(None, gt=0, lt=1)  # validate and keep an exponential moving average of the weights


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
    """

    def __init__(self, model: nn.Module, decay: float, updates: int = 0, average: dict[str, torch.Tensor] | None = None):
        self.decay, self.updates = decay, updates
        state = model.state_dict()
        self.names = [name for name, value in state.items() if value.dtype.is_floating_point]
        self.average = average if average is not None else {n: state[n].detach().clone() for n in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        weight = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        state = model.state_dict()
        torch._foreach_lerp_([self.average[n] for n in self.names], [state[n].detach() for n in self.names], weight)

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
    started, cpu_started = time.perf_counter(), time.process_time()
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    ctx = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    fingerprint = json.loads(json.dumps({**fingerprint, "trainer": config.model_dump(mode="json"), "world": ctx.world}))

    checkpoint = Checkpoint(Path(checkpoint_dir))
    start_epoch, best_val, best_epoch, bad_epochs, history = 0, math.inf, -1, 0, []
    seconds_before, cpu_seconds_before = 0.0, 0.0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if checkpoint.exists() and read_json(checkpoint.folder / "state.json").get("fingerprint") == fingerprint:
        state, best_state = checkpoint.load(model, optimizer)
        start_epoch, best_val, best_epoch = state["epoch"] + 1, state["best_val"], state["best_epoch"]
        bad_epochs, history = state["bad_epochs"], state["history"]
        seconds_before, cpu_seconds_before = state["seconds"], state["cpu_seconds"]
        if ctx.main:
            print(f"resuming from checkpoint {checkpoint.folder} after epoch {state['epoch'] + 1}", file=sys.stderr)
    model.to(device)
    for slots in optimizer.state.values():
        for key, value in slots.items():
            if torch.is_tensor(value) and key != "step":
                slots[key] = value.to(device)

    average = None
    if config.ema_decay is not None:
        resumed = start_epoch > 0 and (checkpoint.folder / "average.safetensors").is_file()
        average = checkpoint.load_average(model, config.ema_decay, device) if resumed else WeightAverage(model, config.ema_decay)
    net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if device.type == "cuda" else None) if ctx.world > 1 else model
    live = _open_live(Path(live_dir), history) if (live_dir is not None and ctx.main) else None
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.bf16)
    val_loader = DataLoader(val_set, batch_size=config.batch_size, shuffle=False)
    stopped_early = bool(config.patience is not None and bad_epochs >= config.patience)

    epoch = start_epoch
    for epoch in range(start_epoch, config.epochs):
        if stopped_early:
            break
        lr = learning_rate(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = epoch_order(len(train_set), config.seed, epoch, sample_weights, ctx)
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=order, drop_last=False)
        net.train()
        sums: dict[str, float] = {}
        seen = 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False, file=sys.stderr, disable=None if ctx.main else True)
        for batch in bar:
            x, target = _split(batch)
            x = x.to(device)
            target = target.to(device) if target is not None else None
            with torch.autocast(**autocast):
                out = net(x, target)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if average is not None:
                average.update(model)
            n = x.shape[0]
            seen += n
            sums["loss"] = sums.get("loss", 0.0) + out.loss.item() * n
            for name, term in out.terms.items():
                sums[name] = sums.get(name, 0.0) + term.detach().float().sum().item()
            bar.set_postfix(loss=f"{out.loss.item():.4g}")
        if average is None:
            val = evaluate_loss(model, val_loader, device, autocast)
            candidate = model.state_dict()
        else:
            candidate = average.state_dict(model)
            current = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(candidate)
            val = evaluate_loss(model, val_loader, device, autocast)
            model.load_state_dict(current)
        row = {"epoch": epoch + 1, "lr": lr, **{f"train/{k}": v / max(seen, 1) for k, v in sums.items()}, **{f"val/{k}": v for k, v in val.items()}}
        history.append(row)
        if val["loss"] < best_val:
            best_val, best_epoch, bad_epochs = val["loss"], epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in candidate.items()}
        else:
            bad_epochs += 1
        stopped_early = config.patience is not None and bad_epochs >= config.patience
        if ctx.main:
            tqdm.write(f"epoch {epoch + 1}: train {row['train/loss']:.5g}  val {val['loss']:.5g}  lr {lr:.3g}", file=sys.stderr)
            if live is not None:
                _log(live, row)
            checkpoint.save(model, best_state, optimizer, {
                "fingerprint": fingerprint, "epoch": epoch, "best_val": best_val, "best_epoch": best_epoch,
                "bad_epochs": bad_epochs, "history": history,
                "seconds": seconds_before + time.perf_counter() - started,
                "cpu_seconds": cpu_seconds_before + time.process_time() - cpu_started,
            }, average)
        if ctx.world > 1:
            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    if live is not None:
        live.end()
    model.load_state_dict(best_state)
    model.to("cpu").eval()
    return FitResult(
        epochs_run=len(history), best_val_loss=best_val, best_epoch=best_epoch + 1, stopped_early=stopped_early,
        resumed_from_epoch=start_epoch, seconds=seconds_before + time.perf_counter() - started,
        cpu_seconds=cpu_seconds_before + time.process_time() - cpu_started, history=history,
    )


@torch.no_grad()
def evaluate_loss(model: nn.Module, loader: DataLoader, device: torch.device, autocast: dict) -> dict[str, float]:
    """Mean loss and mean per-sample terms over a loader, in eval mode."""
    model.eval()
    sums: dict[str, float] = {}
    seen = 0
    for batch in loader:
        x, target = _split(batch)
        x = x.to(device)
        target = target.to(device) if target is not None else None
        with torch.autocast(**autocast):
            out = model(x, target)
        n = x.shape[0]
        seen += n
        sums["loss"] = sums.get("loss", 0.0) + out.loss.float().item() * n
        for name, term in out.terms.items():
            sums[name] = sums.get(name, 0.0) + term.float().sum().item()
    return {k: v / max(seen, 1) for k, v in sums.items()}
