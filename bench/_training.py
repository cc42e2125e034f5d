"""Training speed against the machine's ceiling: FLOPs counted, epochs timed, candidates beside the committed setting.

FLOPs: `torch.utils.flop_counter.FlopCounterMode` over the forward and the backward pass of one
step at the step's batch size. It counts matrix products and convolutions (mm, addmm, bmm,
convolution and their backward ops), not elementwise work. The optimiser step is left out of the
count: AdamW is elementwise, about a dozen operations per parameter, against products whose count
grows with batch × positions (`parameters` is recorded beside `train_flops`, so the share can be
checked). Negligible in FLOPs is not negligible in time: AdamW makes several memory-bound passes
over every parameter, which is what the foreach and fused candidates measure.

Timing: this machine's speed drifts by ±25 % over minutes, so two settings timed one after the other
can differ by that much with no change of code. Each setting is therefore timed in alternation with a
fresh run of the committed setting: both train a fresh model, seeded and built as the train stage
builds it, on the same `steps × batch` samples of the domain's training set, in epochs of `steps`
steps in the trainer's sample order; after one untimed epoch each (it also compiles, for
`torch.compile`), the two alternate epoch by epoch for `pairs` pairs, the first of each pair swapped
every pair, each run with its own random-number stream, so it draws what it would draw alone. A
pair's two epochs run under the same drift; a setting's `ratio_vs_committed` is the median of its
pairs' samples/s ratios (with the smallest and largest), and its samples/s the median of its timed
epochs. Wall time, not CPU time: some candidates use more than one thread. Achieved FLOP/s is counted
FLOPs × steps / wall seconds, and its fraction is of the peak that `bench.machine.ceiling` measured
in the same run. The committed entry pools the committed epochs of every pairing.

The committed setting is what the train stage runs today: the shared trainer's own
`Training.train_epoch` (a DataLoader fetching and collating one sample at a time, a progress bar,
and the loss read back with `.item()` every step), and params.yaml's AdamW implementation, batch
size, thread count and compilation. The "filed" entry runs the trainer settings of issue 15's filing
(`FILED_THREADS`, torch's default AdamW, eager) on the same model and data, so that the speed-up since then
(`train_speedup_vs_filed`) is measured in the same run; it is paired like every candidate, and where
the committed setting is still the filing's, its spread is the bench's own noise. Each candidate changes one thing;
`combined` then takes every candidate that beat the committed setting by `WIN` or more (on a
conflict, the faster one's value), all but the batch size, which `combined_batch` adds on top.

Bit-identity: a setting with the committed batch size takes the same steps on the same samples
from the same RNG stream, so its final weights are compared with those of the committed run it was paired with,
bit for bit (`bit_identical`) and as the largest absolute difference.
"""
from __future__ import annotations

import abc
import copy
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, default_collate
from torch.utils.flop_counter import FlopCounterMode

from latente.shared.report import markdown_table
from latente.shared.params import ADAMW_KERNELS, TrainerConfig
from latente.shared.trainer import DistributedContext, Training, WeightAverage, adamw, compilation, epoch_order, forward, seed_everything

from bench._cases import TrainingCase
from bench.machine import ALL_CORES, fraction, with_threads

WIN = 1.05  # a candidate "wins" at 5 % or more above the committed setting: less is within a short run's noise
NO_AUTOCAST = dict(device_type="cpu", dtype=torch.bfloat16, enabled=False)


@dataclass(frozen=True)
class Setting:
    """How a training run is executed.

    loop: "trainer" is the shared trainer's `train_epoch`; "in_memory" stacks the samples once and
    gathers each batch by index, with the loss summed on-tensor and read once per epoch; "worker" is
    that lean loop fed by a persistent DataLoader with one worker process.
    adamw_kernel: the AdamW implementation, as `TrainerConfig.adamw_kernel` names it ("default" is torch's for-loop on the CPU).
    compile: "" (eager), "inductor" (torch.compile), or "inductor_eager_rng" (torch.compile with inductor's
    `fallback_random`: random numbers from the eager generator, without which compiled training cannot keep
    the weights of eager training in models that draw noise).
    """

    threads: int
    batch_size: int
    lr: float
    adamw_kernel: str = "default"
    channels_last: bool = False
    loop: str = "trainer"
    compile: str = ""


@dataclass(frozen=True)
class Candidate:
    name: str
    change: str  # what differs from the committed setting, in words
    setting: Setting


def count_step_flops(model: nn.Module, batch, device: torch.device | str = "cpu", autocast: dict | None = None) -> dict[str, int]:
    """Counted FLOPs of one training step's forward and backward pass on `batch` (the model's grads are cleared after)."""
    autocast = autocast or dict(NO_AUTOCAST, device_type=torch.device(device).type)
    model.train()
    with FlopCounterMode(display=False) as forward_count:
        out, _ = forward(model, batch, torch.device(device), autocast)
    with FlopCounterMode(display=False) as backward_count:
        out.loss.backward()
    model.zero_grad(set_to_none=True)
    f, b = forward_count.get_total_flops(), backward_count.get_total_flops()
    return {"forward": f, "backward": b, "step": f + b}


def committed_setting(case: TrainingCase) -> Setting:
    """params.yaml's setting; a trainer without `threads` runs with torch's default, all cores."""
    probe = case.new_model()
    trainer = case.trainer
    return Setting(threads=trainer.threads or ALL_CORES, batch_size=trainer.batch_size, lr=trainer.lr, adamw_kernel=trainer.adamw_kernel,
                   channels_last=_is_channels_last(probe), compile="inductor_eager_rng" if trainer.compile else "")


# Each domain's `train.trainer.threads` in params.yaml when issue 15 was filed (at d368dd3^; None: torch's default,
# all cores). Then every domain trained eagerly, with torch's default AdamW, through the shared trainer's loop.
FILED_THREADS = {"ecg": 1, "mri": 1, "protein": 1, "speech": None, "anomaly": None}


def filed_setting(case: TrainingCase, committed: Setting) -> Setting:
    """The trainer settings of issue 15's filing on today's model, data and batch size: the "old" that the
    committed setting is measured against in the same run (`train_speedup_vs_filed`, the table's "× filed")."""
    return replace(committed, threads=FILED_THREADS[case.domain] or ALL_CORES, adamw_kernel="default", loop="trainer", compile="")


def _is_channels_last(model: nn.Module) -> bool:
    return any(p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters())


def _conv_dims(model: nn.Module) -> int:
    """The highest spatial rank of the model's convolutions (0: none)."""
    return max((m.weight.dim() - 2 for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), default=0)


def candidates(case: TrainingCase, committed: Setting) -> list[Candidate]:
    """One change at a time against `committed`."""
    other_threads = ALL_CORES if committed.threads == 1 else 1
    scale = 4
    out = [
        Candidate("in_memory", "samples stacked once, batches gathered by index, loss read once per epoch (no DataLoader, no per-step .item())",
                  replace(committed, loop="in_memory")),
        Candidate("loader_worker", "lean loop fed by a persistent DataLoader with 1 worker process", replace(committed, loop="worker")),
        *(Candidate(f"{kernel}_adamw", f"AdamW implementation {kernel!r}", replace(committed, adamw_kernel=kernel))
          for kernel in ADAMW_KERNELS if kernel != committed.adamw_kernel),
        Candidate(f"threads_{other_threads}", f"torch.set_num_threads({other_threads})", replace(committed, threads=other_threads)),
        Candidate(f"batch_x{scale}", f"batch {committed.batch_size * scale}, lr × {scale} (linear scaling)",
                  replace(committed, batch_size=committed.batch_size * scale, lr=committed.lr * scale)),
        *([Candidate("eager", "no torch.compile", replace(committed, compile=""))] if committed.compile else [
            Candidate("compile", "torch.compile (inductor, CPU)", replace(committed, compile="inductor")),
            Candidate("compile_eager_rng", "torch.compile, inductor's fallback_random (eager random numbers; the trainer's `compile`)",
                      replace(committed, compile="inductor_eager_rng"))]),
    ]
    if _conv_dims(case.new_model()) >= 2:
        flipped = not committed.channels_last
        out.append(Candidate("channels_last" if flipped else "contiguous",
                             "model in channels_last" if flipped else "model in the default (contiguous) memory format",
                             replace(committed, channels_last=flipped)))
    return out


def _draw_like_dataloader() -> None:
    """The one draw from the global RNG that every fresh DataLoader iterator makes (its base seed):
    a loop without that iterator makes it anyway, so the model's own random numbers, and hence its
    weights, stay those of the trainer."""
    torch.empty((), dtype=torch.int64).random_()


class InMemory:
    """The samples stacked once (`seconds` it took); each epoch's batches gathered by index."""

    def __init__(self, samples: Dataset, batch_size: int):
        started = time.perf_counter()
        self.stacked = default_collate([samples[i] for i in range(len(samples))])
        self.seconds = time.perf_counter() - started
        self.batch_size = batch_size

    def epoch(self, order: list[int]):
        _draw_like_dataloader()
        for i in range(0, len(order), self.batch_size):
            index = torch.as_tensor(order[i : i + self.batch_size])
            yield [t[index] for t in self.stacked] if isinstance(self.stacked, list) else self.stacked[index]


class EpochOrder(torch.utils.data.Sampler):
    """The sample order of the current epoch, set before each pass."""

    def __init__(self) -> None:
        self.order: list[int] = []

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


class WorkerLoader:
    """A DataLoader with one worker process, kept across epochs; each epoch's order set before its pass."""

    def __init__(self, samples: Dataset, batch_size: int):
        self.sampler = EpochOrder()
        self.loader = DataLoader(samples, batch_size=batch_size, sampler=self.sampler, num_workers=1, persistent_workers=True)
        self.passes = 0

    def epoch(self, order: list[int]):
        self.sampler.order = order
        if self.passes:  # the persistent iterator draws its base seed on the first pass only
            _draw_like_dataloader()
        self.passes += 1
        return iter(self.loader)


def training_samples(case: TrainingCase, batch_size: int, steps: int) -> tuple[Dataset, torch.Tensor | None]:
    """The first `steps × batch_size` samples of the trainer's epoch-0 order (wrapping round a smaller set), and their weights."""
    order = epoch_order(len(case.train_set), case.trainer.seed, 0, case.sample_weights, DistributedContext())
    picked = [order[i % len(order)] for i in range(steps * batch_size)]
    weights = case.sample_weights[picked] if case.sample_weights is not None else None
    return Subset(case.train_set, picked), weights


class Alternating(abc.ABC):
    """A training advanced an epoch at a time by `epoch()`, under its setting's threads and inductor settings
    (`inductor`), with its own random-number stream (restored before and kept after each epoch), so that two
    trainings can alternate and each draws what it would draw alone. `_timed_epoch()` trains one epoch and returns
    its wall seconds."""

    setting: Setting
    inductor: TrainerConfig
    seconds: list[float]
    rng: torch.Tensor

    def epoch(self) -> None:
        torch.set_rng_state(self.rng)
        with compilation(self.inductor):
            self.seconds.append(with_threads(self.setting.threads, self._timed_epoch))
        self.rng = torch.get_rng_state()

    @abc.abstractmethod
    def _timed_epoch(self) -> float: ...


class Run(Alternating):
    """One setting's training on the first `steps × batch` samples, from the train stage's seeded model."""

    def __init__(self, case: TrainingCase, setting: Setting, folder: Path, steps: int):
        self.setting = setting
        self.samples, self.sample_weights = training_samples(case, setting.batch_size, steps)
        self.samples_per_epoch = len(self.samples)
        trainer = case.trainer.model_copy(update={"threads": setting.threads, "batch_size": setting.batch_size, "lr": setting.lr,
                                                  "device": "cpu", "adamw_kernel": setting.adamw_kernel})
        self.trainer = trainer
        # "inductor_eager_rng" runs under the trainer's own settings; plain "inductor" under inductor's defaults
        self.inductor = trainer.model_copy(update={"compile": setting.compile == "inductor_eager_rng"})
        self.seconds: list[float] = []
        self.stacking_seconds: float | None = None
        seed_everything(trainer.seed)
        self.model = case.new_model().to(memory_format=torch.channels_last if setting.channels_last else torch.contiguous_format)
        self.net = torch.compile(self.model) if setting.compile else self.model
        if setting.loop == "trainer":
            self.training = Training(self.model, trainer, folder, fingerprint={})
            self.training.resume()
        else:
            self.optimizer = adamw(self.model.parameters(), trainer)
            self.average = WeightAverage(self.model, trainer.ema_decay) if trainer.ema_decay is not None else None
            if setting.loop == "in_memory":
                self.source = InMemory(self.samples, setting.batch_size)
                self.stacking_seconds = self.source.seconds
            else:
                self.source = WorkerLoader(self.samples, setting.batch_size)
        self.rng = torch.get_rng_state()

    def _timed_epoch(self) -> float:
        epoch, started = len(self.seconds), time.perf_counter()
        if self.setting.loop == "trainer":
            self.training.train_epoch(self.net, self.samples, epoch, self.setting.lr, self.sample_weights)
            return time.perf_counter() - started
        order = epoch_order(len(self.samples), self.trainer.seed, epoch, self.sample_weights, DistributedContext())
        self.model.train()
        total = torch.zeros(())
        for batch in self.source.epoch(order):
            out, n = forward(self.net, batch, torch.device("cpu"), NO_AUTOCAST)
            self.optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if self.trainer.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.trainer.grad_clip)
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
            total += out.loss.detach() * n
        total.item()
        return time.perf_counter() - started

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()


class EnsembleRun(Alternating):
    """`members` models of a setting trained at once: parameters stacked (torch.func.stack_module_state), one vmapped
    forward + backward per step, one AdamW over the stacked tensors (elementwise, so each member's update is its own).
    Each member draws its own samples (its own seed's order) and its own random numbers. For a training set of single
    tensors and a trainer without gradient clipping (that would need each member's own norm). Eager."""

    def __init__(self, case: TrainingCase, setting: Setting, members: int, steps: int):
        from torch.func import functional_call, grad_and_value, stack_module_state, vmap

        if case.trainer.grad_clip:
            raise ValueError(f"{case.domain}: the vmapped ensemble does not clip gradients")
        self.setting, self.members, self.seed = setting, members, case.trainer.seed
        self.inductor = case.trainer.model_copy(update={"compile": False})
        models = []
        for k in range(members):
            seed_everything(case.trainer.seed + k)
            models.append(case.new_model().train())
        self.params, self.buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")

        def loss(p, b, x):
            return functional_call(base, (p, b), (x,)).loss

        self.step_grads = vmap(grad_and_value(loss), randomness="different")
        self.optimizer = adamw(self.params.values(), case.trainer.model_copy(update={"lr": setting.lr}))
        samples, _ = training_samples(case, setting.batch_size, steps)
        self.stacked = default_collate([samples[i] for i in range(len(samples))])
        self.samples_per_epoch = members * len(samples)
        self.seconds: list[float] = []
        self.rng = torch.get_rng_state()

    def _timed_epoch(self) -> float:
        n, batch = len(self.stacked), self.setting.batch_size
        orders = [torch.as_tensor(epoch_order(n, self.seed + k, len(self.seconds), None, DistributedContext())) for k in range(self.members)]
        started = time.perf_counter()
        total = torch.zeros(())
        for i in range(0, n, batch):
            x = self.stacked[torch.stack([order[i : i + batch] for order in orders])]
            grads, losses = self.step_grads(self.params, self.buffers, x)
            for name, p in self.params.items():
                p.grad = grads[name]
            self.optimizer.step()
            total += losses.detach().sum()
        total.item()
        return time.perf_counter() - started


def alternate(first: Alternating, second: Alternating, pairs: int) -> None:
    """One untimed epoch each (it compiles, for `torch.compile`), then `pairs` pairs of epochs, the first of each
    pair swapped every pair."""
    first.epoch()
    second.epoch()
    for pair in range(pairs):
        for run in (first, second) if pair % 2 == 0 else (second, first):
            run.epoch()


def _difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point()), default=0.0)


class Bench:
    """The training section of one domain bench: FLOP counts per batch size, then entries of (candidate, speed), each
    timed in alternation with a fresh run of the committed setting."""

    def __init__(self, case: TrainingCase, machine: dict, steps: int, pairs: int):
        self.case, self.machine, self.steps, self.pairs = case, machine, steps, pairs
        self.committed = committed_setting(case)
        self.flops: dict[int, dict[str, int]] = {}
        self.entries: dict[str, dict] = {}
        self.committed_seconds: list[float] = []  # the timed epochs of the committed runs of every pairing

    def step_flops(self, batch_size: int) -> dict[str, int]:
        if batch_size not in self.flops:
            samples, _ = training_samples(self.case, batch_size, 1)
            torch.manual_seed(0)
            self.flops[batch_size] = count_step_flops(self.case.new_model(), default_collate([samples[i] for i in range(len(samples))]))
        return self.flops[batch_size]

    def speed(self, setting: Setting, seconds: list[float], samples_per_epoch: int, step_flops: int) -> dict:
        """Samples/s and achieved FLOP/s at the median of the timed epochs `seconds`."""
        median = statistics.median(seconds)
        gflops = step_flops * self.steps / median / 1e9
        return {
            "setting": asdict(setting), "samples_per_second": samples_per_epoch / median, "steps_per_second": self.steps / median,
            "epoch_seconds": seconds, "gflops": gflops, "train_flops_fraction": fraction(gflops, self.machine),
            "fraction_of_matmul_at_same_threads": fraction(gflops, self.machine, setting.threads)
            if str(setting.threads) in self.machine["matmul_gflops_by_threads"] else None,
        }

    def paired(self, name: str, change: str, other, step_flops: int, extra=None) -> dict:
        """Time `other` (a `Run` or `EnsembleRun`, built from inside `other(folder)`) in alternation with a fresh run of
        the committed setting, and record it as entry `name`; `extra(committed_run, other_run)` adds keys."""
        import torch._dynamo

        threads = torch.get_num_threads()  # the trainer sets its own at construction; each epoch sets it again
        try:
            with tempfile.TemporaryDirectory(prefix="latente-bench-") as tmp:
                torch._dynamo.reset()  # each pairing compiles from nothing, as a fresh training process would
                committed = Run(self.case, self.committed, Path(tmp) / "committed", self.steps)
                candidate = other(Path(tmp) / "candidate")
                alternate(committed, candidate, self.pairs)
        finally:
            torch.set_num_threads(threads)
        committed_timed, timed = committed.seconds[1:], candidate.seconds[1:]
        self.committed_seconds += committed_timed
        ratios = [(candidate.samples_per_epoch / s) / (committed.samples_per_epoch / c) for c, s in zip(committed_timed, timed)]
        entry = {
            "change": change, **self.speed(candidate.setting, timed, candidate.samples_per_epoch, step_flops),
            "warm_up_seconds": candidate.seconds[0], "pair_ratios": ratios,
            "ratio_vs_committed": statistics.median(ratios), "ratio_smallest": min(ratios), "ratio_largest": max(ratios),
            **(extra(committed, candidate) if extra else {}),
        }
        self.entries[name] = entry
        return entry

    def run(self, candidate: Candidate) -> dict:
        setting = candidate.setting

        def identity(committed: Run, run: Run) -> dict:
            if setting.batch_size == self.committed.batch_size:
                difference = _difference(run.weights(), committed.weights())
                extra = {"bit_identical": difference == 0.0, "max_abs_weight_difference": difference}
            else:
                extra = {"bit_identical": None, "note": "another batch size: other arithmetic by design"}
            if run.stacking_seconds is not None:
                extra["stacking_seconds_per_sample"] = run.stacking_seconds / run.samples_per_epoch  # once per training, not per epoch
            return extra

        return self.paired(candidate.name, candidate.change, lambda folder: Run(self.case, setting, folder, self.steps),
                           self.step_flops(setting.batch_size)["step"], identity)

    def run_all(self, only: set[str] | None = None, log=print) -> None:
        """The filed setting, then each candidate (`only`: those named), then the combinations of the winners, each
        paired with the committed setting."""
        filed = filed_setting(self.case, self.committed)
        change = ("the trainer settings when issue 15 was filed (threads, default AdamW, eager)" if filed != self.committed
                  else "the trainer settings when issue 15 was filed, which are still the committed ones: the spread is the bench's noise")
        self.attempt("filed", change, lambda: self.run(Candidate("filed", change, filed)), log)
        for candidate in candidates(self.case, self.committed):
            if only is None or candidate.name in only:
                self.attempt(candidate.name, candidate.change, lambda c=candidate: self.run(c), log)
        for candidate in self.combinations():
            self.attempt(candidate.name, candidate.change, lambda c=candidate: self.run(c), log)

    def attempt(self, name: str, change: str, run, log=print) -> None:
        """`run()` one entry; one that fails (e.g. inductor without a working compiler) is recorded with its error.
        The filing's entry, which the speed-up needs and which pairs the committed setting with the plainest one,
        is not allowed to fail."""
        try:
            entry = run()
        except Exception as error:  # noqa: BLE001
            if name == "filed":
                raise
            self.entries[name] = {"change": change, "error": f"{type(error).__name__}: {error}".splitlines()[0]}
            log(f"  {name}: failed ({self.entries[name]['error']})")
            return
        log(f"  {name}: {entry['samples_per_second']:.0f} samples/s, ×{entry['ratio_vs_committed']:.2f} "
            f"({entry['ratio_smallest']:.2f}–{entry['ratio_largest']:.2f})")

    def combinations(self) -> list[Candidate]:
        """`combined`: every winning change but the batch size; `combined_batch`: the same with the winning batch size.
        Each is described by the candidates whose values it took."""
        winners = sorted((e["ratio_vs_committed"], name) for name, e in self.entries.items()
                         if name != "filed" and e.get("ratio_vs_committed", 0.0) >= WIN and "setting" in e)
        changes, source = {}, {}
        for _, name in winners:  # ascending: the faster candidate's value wins a conflict
            for key, value in self.entries[name]["setting"].items():
                if value != getattr(self.committed, key):
                    changes[key], source[key] = value, name
        batch = {key: changes.pop(key) for key in ("batch_size", "lr") if key in changes}
        taken = list(dict.fromkeys(source[key] for key in changes))
        out = []
        if len(taken) > 1:
            out.append(Candidate("combined", " + ".join(taken), replace(self.committed, **changes)))
        if batch and taken:
            out.append(Candidate("combined_batch", " + ".join([*taken, source["batch_size"]]), replace(self.committed, **changes, **batch)))
        return out

    def result(self) -> dict:
        """The domain JSON's training keys: `train_*` for the committed setting (today's code; `train_flops` per
        step at its batch size), its speed-up over issue 15's filing (the median of their pairs' ratios), and
        `train_candidates` with every entry, the committed one first."""
        flops = self.flops[self.committed.batch_size]
        committed = {"change": "params.yaml's setting through the shared trainer, the committed runs of every pairing",
                     **self.speed(self.committed, self.committed_seconds, self.committed.batch_size * self.steps, flops["step"])}
        filed = self.entries["filed"]
        return {
            "train_flops": flops["step"],
            "train_flops_per_sample": flops["step"] / self.committed.batch_size,
            "train_samples_per_second": committed["samples_per_second"],
            "train_samples_per_second_filed": filed["samples_per_second"],
            "train_speedup_vs_filed": statistics.median(1 / r for r in filed["pair_ratios"]),
            "train_gflops": committed["gflops"],
            "train_flops_fraction": committed["train_flops_fraction"],
            "train_candidates": {
                "model": self.case.model, "parameters": sum(p.numel() for p in self.case.new_model().parameters()),
                "committed": asdict(self.committed), "steps_per_epoch": self.steps, "timed_pairs": self.pairs,
                "clock": "wall seconds; each setting alternated epoch by epoch with a fresh committed run after one warm-up epoch each; "
                         "samples/s at the median timed epoch, ratios the median of the pairs'",
                "flop_counter": "torch.utils.flop_counter.FlopCounterMode, forward + backward of one step (matmul and conv ops; "
                                "the optimizer's elementwise step is not counted)",
                "flops_by_batch_size": {str(b): f for b, f in sorted(self.flops.items())},
                "win_threshold": WIN, "entries": {"committed": committed, **self.entries},
            },
        }


def table(result: dict) -> str:
    """The training section of a domain's result (`Bench.result()`) as a markdown table; "× filed" chains each
    entry's paired ratio with the committed setting's paired speed-up over the filing."""
    entries, speedup = result["train_candidates"]["entries"], result["train_speedup_vs_filed"]
    rows = []
    for name, e in entries.items():
        if "error" in e:
            rows.append([name, e["change"], "failed", "", "", "", "", e["error"][:60]])
            continue
        identical = e.get("bit_identical")
        same = "—" if name == "committed" else ("n/a" if identical is None else ("yes" if identical else f"no ({e['max_abs_weight_difference']:.1e})"))
        ratio = e.get("ratio_vs_committed", 1.0)
        spread = f" ({e['ratio_smallest']:.2f}–{e['ratio_largest']:.2f})" if "ratio_smallest" in e else ""
        rows.append([name, e["change"], f"{e['samples_per_second']:.0f}", f"{ratio:.2f}{spread}",
                     f"{ratio * speedup:.2f}", f"{e['gflops']:.1f}", f"{e['train_flops_fraction']:.3f}", same])
    return markdown_table(["setting", "change", "samples/s", "× committed (pairs)", "× filed", "GFLOP/s", "of peak", "bit-identical"], rows)


def run_ensemble(bench: Bench, members: int, log=print) -> None:
    """`members` models of the committed setting trained at once (`EnsembleRun`), as entry `ensemble_<members>`."""
    name, setting = f"ensemble_{members}", bench.committed
    change = f"{members} models at once: stack_module_state + vmap(grad), one AdamW over the stacked parameters"
    note = {"bit_identical": None, "note": "each member draws its own dropout masks under vmap; samples/s counts every member's"}
    bench.attempt(name, change, lambda: bench.paired(name, change, lambda folder: EnsembleRun(bench.case, setting, members, bench.steps),
                                             members * bench.step_flops(setting.batch_size)["step"], lambda *_: note), log)


def add_arguments(parser) -> None:
    parser.add_argument("--train-steps", type=int, default=20, help="training steps per timed epoch")
    parser.add_argument("--train-pairs", type=int, default=5, help="timed pairs of epochs per setting, each alternated with the committed setting")
    parser.add_argument("--candidates", default=None, help="comma-separated candidate names to run (default: all)")


def measure(case: TrainingCase, machine: dict, args, log=print) -> Bench:
    """The filing and the candidates that `args` select, each paired with the committed setting; `Bench.result()` is the JSON section."""
    bench = Bench(case, machine, args.train_steps, args.train_pairs)
    log(f"training {case.domain} ({case.model}), {args.train_steps} steps per epoch, {args.train_pairs} alternated pairs per setting:")
    bench.run_all(set(args.candidates.split(",")) if args.candidates else None, log)
    return bench
