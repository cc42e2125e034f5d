"""Trainer: determinism, resume equivalence, early stopping, schedule, DVCLive, DDP."""
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader, TensorDataset

from latente.shared import trainer
from latente.shared.models import build_model
from latente.shared.params import TrainerConfig
from latente.shared.trainer import DistributedContext, FitResult, WeightAverage, epoch_order, evaluate_loss, fit, learning_rate, seed_everything

MODEL = {"name": "conv_dae", "channels": [4, 8], "strides": [2, 2], "dropout": 0.1, "corruption": {"kind": "gaussian", "level": [0.05, 0.2]}}
DATA = torch.randn(40, 1, 32, generator=torch.Generator().manual_seed(0))
TRAIN, VAL = TensorDataset(DATA[:32]), TensorDataset(DATA[32:])


class Interrupted(Exception):
    pass


def train(folder: Path, epochs=4, stop_after=None, patience=None, data=(TRAIN, VAL), **kw):
    seed_everything(5)
    model = build_model(MODEL)

    def interrupt(epoch, row):
        if stop_after is not None and epoch == stop_after:
            raise Interrupted

    config = TrainerConfig(epochs=epochs, batch_size=8, seed=5, patience=patience, lr=0.01, **kw)
    result = fit(model, *data, config, folder / "ckpt", fingerprint={"model": MODEL}, on_epoch_end=interrupt, live_dir=folder / "live")
    return model, result


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_runs_are_deterministic(tmp_path):
    a, _ = train(tmp_path / "a")
    b, _ = train(tmp_path / "b")
    assert same(weights(a), weights(b))


def test_resume_ends_with_the_same_weights_as_an_uninterrupted_run(tmp_path):
    full, full_result = train(tmp_path / "full")
    with pytest.raises(Interrupted):
        train(tmp_path / "cut", stop_after=1)
    state = json.loads((tmp_path / "cut" / "ckpt" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed, result = train(tmp_path / "cut")
    assert result.resumed_from_epoch == 2 and result.epochs_run == 4
    assert same(weights(full), weights(resumed))
    assert result.history == full_result.history
    # the DVCLive curves are whole after the resume
    lines = (tmp_path / "cut" / "live" / "plots" / "metrics" / "val" / "loss.tsv").read_text().splitlines()
    assert len(lines) == 1 + 4


@pytest.mark.parametrize("setting", [{"adamw_kernel": "foreach"}, {"adamw_kernel": "fused"}, {"compile": True}],
                         ids=["foreach_adamw", "fused_adamw", "compiled"])
def test_every_trainer_implementation_is_deterministic_and_resumes_exactly(tmp_path, setting):
    full, full_result = train(tmp_path / "full", **setting)
    again, _ = train(tmp_path / "again", **setting)
    with pytest.raises(Interrupted):
        train(tmp_path / "cut", stop_after=1, **setting)
    resumed, result = train(tmp_path / "cut", **setting)
    assert result.resumed_from_epoch == 2
    assert same(weights(full), weights(again)) and same(weights(full), weights(resumed))
    assert result.history == full_result.history


def test_compiled_training_draws_the_eager_noise_and_never_resumes_an_eager_checkpoint(tmp_path):
    """The model draws corruption noise and dropout masks: compiled, it takes them from the eager generator, as many
    as eager training takes, so it trains on the samples eager training sees (its losses agree to float rounding).
    The weights are not compared with eager training's: this model's conv biases sit before a batch norm, which
    cancels them, so their gradient is rounding noise that AdamW scales up to full steps of either sign."""
    _, eager_result = train(tmp_path / "eager")
    eager_rng = torch.get_rng_state()
    _, compiled_result = train(tmp_path / "compiled", compile=True)
    assert torch.equal(torch.get_rng_state(), eager_rng)
    assert [row["train/loss"] for row in compiled_result.history] == pytest.approx([row["train/loss"] for row in eager_result.history], rel=1e-5)
    # the fingerprint holds the trainer's settings
    _, fresh = train(tmp_path / "eager", compile=True)
    assert fresh.resumed_from_epoch == 0


def test_every_adamw_kernel_takes_adamw_s_first_step_by_hand():
    """Adam's first step is lr · g / (|g| + eps) (bias-corrected moments of one gradient), after the decay p · (1 − lr · wd)."""
    from latente.shared.params import ADAMW_KERNELS

    assert tuple(trainer.ADAMW_KEYWORDS) == ADAMW_KERNELS
    start, grad = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, -0.25, 1e-3])
    lr, wd, eps = 0.1, 0.01, 1e-8
    expected = start * (1 - lr * wd) - lr * grad / (grad.abs() + eps)
    for kernel in ADAMW_KERNELS:
        p = torch.nn.Parameter(start.clone())
        optimizer = trainer.adamw([p], TrainerConfig(adamw_kernel=kernel, lr=lr, weight_decay=wd))
        assert (optimizer.defaults["foreach"], optimizer.defaults["fused"]) == {"default": (None, None), "foreach": (True, None),
                                                                              "fused": (None, True)}[kernel]
        p.grad = grad.clone()
        optimizer.step()
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-6)


def test_same_seed_gives_identical_weights_and_history_with_averaging_and_early_stopping(tmp_path):
    a, result_a = train(tmp_path / "a", epochs=30, patience=1, ema_decay=0.9)
    b, result_b = train(tmp_path / "b", epochs=30, patience=1, ema_decay=0.9)
    assert result_a.stopped_early and result_a.epochs_run < 30
    assert same(weights(a), weights(b))
    assert result_a.history == result_b.history and len(result_a.history) == result_a.epochs_run
    timing = {"seconds", "cpu_seconds"}
    assert {k: v for k, v in result_a.to_json().items() if k not in timing} == {k: v for k, v in result_b.to_json().items() if k not in timing}


class FakeClock:
    """Wall and CPU clocks that move only when a sample is read: 1 s wall and 0.25 s CPU per sample."""

    def __init__(self):
        self.wall, self.cpu = 1000.0, 500.0

    def read(self):
        self.wall += 1.0
        self.cpu += 0.25


class ClockedSamples(torch.utils.data.Dataset):
    def __init__(self, samples: TensorDataset, clock: FakeClock):
        self.samples, self.clock = samples, clock

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        self.clock.read()
        return self.samples[index]


def test_seconds_and_cpu_seconds_add_up_over_an_interrupted_then_resumed_training(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(trainer, "time", SimpleNamespace(perf_counter=lambda: clock.wall, process_time=lambda: clock.cpu))
    data = (ClockedSamples(TRAIN, clock), ClockedSamples(VAL, clock))
    # an epoch reads the 32 training and the 8 validation samples once: 40 s wall and 10 s CPU
    with pytest.raises(Interrupted):
        train(tmp_path / "cut", stop_after=1, data=data)
    state = json.loads((tmp_path / "cut" / "ckpt" / "state.json").read_text())
    assert (state["seconds"], state["cpu_seconds"]) == (80.0, 20.0)  # epochs 1 and 2
    _, resumed = train(tmp_path / "cut", data=data)  # epochs 3 and 4 take 80 s and 20 s themselves
    assert resumed.resumed_from_epoch == 2
    assert (resumed.seconds, resumed.cpu_seconds) == (160.0, 40.0)
    _, full = train(tmp_path / "full", data=data)
    assert (full.resumed_from_epoch, full.seconds, full.cpu_seconds) == (0, 160.0, 40.0)


def test_fit_result_json_has_exactly_the_documented_keys(tmp_path):
    _, result = train(tmp_path / "run", epochs=1)
    documented = ["epochs_run", "best_val_loss", "best_epoch", "stopped_early", "resumed_from_epoch", "seconds", "cpu_seconds", "history"]
    assert [f.name for f in fields(FitResult)] == documented
    saved = json.loads(json.dumps(result.to_json()))
    assert list(saved) == documented
    assert saved["history"] == result.history and saved["epochs_run"] == 1 and saved["seconds"] == result.seconds


def test_changed_params_do_not_resume_a_stale_checkpoint(tmp_path):
    train(tmp_path / "run", epochs=2)
    _, result = train(tmp_path / "run", epochs=3)
    assert result.resumed_from_epoch == 0 and result.epochs_run == 3


def test_returns_best_validation_weights_and_stops_early(tmp_path):
    model, result = train(tmp_path / "es", epochs=30, patience=2)
    assert result.stopped_early == (result.epochs_run < 30)
    best = min(row["val/loss"] for row in result.history)
    assert result.best_val_loss == best
    val = evaluate_loss(model, DataLoader(VAL, batch_size=8), torch.device("cpu"), {"device_type": "cpu", "enabled": False})
    assert val["loss"] == pytest.approx(best, rel=1e-5)


def test_weight_average_matches_hand_computed_updates():
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    average = WeightAverage(layer, decay=0.5)
    for value in (3.0, 5.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
    # decays: min(0.5, 2/11) = 2/11, then min(0.5, 3/12) = 1/4
    first = 2 / 11 * 1.0 + 9 / 11 * 3.0
    assert average.state_dict(layer)["weight"].item() == pytest.approx(0.25 * first + 0.75 * 5.0)
    assert layer.weight.item() == 5.0


def test_weight_average_resumes_and_is_what_validation_and_the_result_use(tmp_path):
    full, full_result = train(tmp_path / "full", ema_decay=0.9)
    with pytest.raises(Interrupted):
        train(tmp_path / "cut", stop_after=1, ema_decay=0.9)
    resumed, result = train(tmp_path / "cut", ema_decay=0.9)
    assert result.resumed_from_epoch == 2 and same(weights(full), weights(resumed))
    assert result.history == full_result.history
    val = evaluate_loss(full, DataLoader(VAL, batch_size=8), torch.device("cpu"), {"device_type": "cpu", "enabled": False})
    assert val["loss"] == pytest.approx(full_result.best_val_loss, rel=1e-5)
    plain, _ = train(tmp_path / "plain")
    assert not same(weights(plain), weights(full))


def test_learning_rate_schedule():
    cfg = TrainerConfig(epochs=10, lr=1.0, warmup_epochs=2, scheduler="cosine")
    assert learning_rate(cfg, 0) == pytest.approx(0.5)
    assert learning_rate(cfg, 1) == pytest.approx(1.0)
    assert learning_rate(cfg, 2) == pytest.approx(1.0)
    assert learning_rate(cfg, 6) == pytest.approx(0.5)
    assert learning_rate(TrainerConfig(lr=0.3, scheduler="constant"), 7) == 0.3


def test_epoch_order_depends_on_seed_and_epoch_and_shards():
    ctx = DistributedContext()
    assert epoch_order(10, 1, 0, None, ctx) == epoch_order(10, 1, 0, None, ctx)
    assert epoch_order(10, 1, 0, None, ctx) != epoch_order(10, 1, 1, None, ctx)
    assert sorted(epoch_order(10, 1, 0, None, ctx)) == list(range(10))
    shards = [epoch_order(11, 1, 0, None, DistributedContext(r, 2, r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 5 and not set(shards[0]) & set(shards[1])
    weighted = epoch_order(1000, 1, 0, torch.tensor([0.0, 1.0, 3.0]).repeat_interleave(torch.tensor([1, 1, 998])).float(), ctx)
    assert 0 not in weighted


@pytest.mark.slow  # two torchrun processes: over 10 s
def test_two_process_ddp_on_gloo(tmp_path, repo_root):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo_root)}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=0", "--rdzv_backend=c10d",
         "--rdzv_endpoint=127.0.0.1:0", str(repo_root / "tests" / "shared" / "ddp_train.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("LOSSES"))
    first, last, world = float(line.split()[1]), float(line.split()[2]), int(line.split()[4])
    assert world == 2 and last < first
    w0, w1 = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert same(w0, w1)  # gradients were all-reduced: both ranks hold the same model
    assert (tmp_path / "ckpt" / "state.json").is_file()
