"""GPU benchmark: one prepared script for the few minutes of a lent GPU. `python -m bench.gpu`

For each domain's model (params.yaml's model and trainer, on random inputs of the training shapes:
bench/_cases.py `synthetic_case`, so no dataset is needed on the GPU machine):
- training throughput in fp32 and in bf16 autocast (the shared trainer's `bf16` path), at the
  committed batch size and at larger ones (`--scales`), each step on one batch already on the GPU
  (the model's step alone, no data loading), with the trainer's AdamW (`adamw_kernel`; torch's default on CUDA is foreach);
- counted FLOPs per step (FlopCounterMode, forward + backward) and the MFU: achieved FLOP/s over
  the nominal peak named in the output (H200: ~989 TFLOP/s dense bf16, NVIDIA's figure without
  sparsity; `--peak-tflops` for another card), for both precisions;
- the largest |difference| between one eval-mode forward pass on the CPU and on the GPU, fp32 with
  TF32 off, same weights and inputs;
then one epoch of the shared trainer's `fit` in 2 processes under DDP: NCCL, one GPU per rank when
there are two; with one GPU, NCCL refuses two ranks on it, which the output records before the same
step runs with gloo on that GPU. Both ranks must end with the same weights.

Without CUDA it prints one line and exits 0 (so `make bench` passes on a CPU machine).
`--device cpu --dry-run` runs every piece on the CPU with tiny step counts (DDP with gloo), so that a
GPU run cannot fail on a typo. A domain that fails is recorded and the others still run; the exit
status is then 1, as it is when no DDP attempt succeeds. Results: `--out` (default bench/results/gpu.json).
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from latente.shared.io import read_json, write_json
from latente.shared.report import markdown_table
from latente.shared.trainer import adamw, fit, forward, seed_everything

from bench._cases import DOMAINS, synthetic_case
from bench._training import NO_AUTOCAST, count_step_flops

RESULTS = Path(__file__).resolve().parent / "results"
NOMINAL_PEAK = ("H200 dense bf16", 989.0)  # (name, TFLOP/s): the MFU's denominator unless --peak-tflops names another
DDP_TIMEOUT_S = 120


def step_batch(case, batch_size: int, device: torch.device):
    """`batch_size` samples of the case (wrapping round), stacked, on `device`."""
    from torch.utils.data import default_collate

    batch = default_collate([case.train_set[i % len(case.train_set)] for i in range(batch_size)])
    return [t.to(device) for t in batch] if isinstance(batch, list) else batch.to(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_throughput(case, device: torch.device, bf16: bool, batch_size: int, steps: int, warm_up: int, peak_flops: float) -> dict:
    """Training samples per second of `case`'s model on `device`, fp32 or bf16 autocast, with its counted FLOPs and MFU."""
    seed_everything(case.trainer.seed)
    model = case.new_model().to(device)
    batch = step_batch(case, batch_size, device)
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
    flops = count_step_flops(model, batch, device, autocast)["step"]
    optimizer = adamw(model.parameters(), case.trainer)

    def step() -> None:
        out, _ = forward(model, batch, device, autocast)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    model.train()
    for _ in range(warm_up):
        step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - started
    achieved = flops * steps / seconds
    return {"precision": "bf16 autocast" if bf16 else "fp32", "batch_size": batch_size, "steps": steps,
            "samples_per_second": batch_size * steps / seconds, "step_flops": flops, "tflops": achieved / 1e12,
            "mfu": achieved / peak_flops}


def forward_difference(case, device: torch.device, batch_size: int) -> dict:
    """max |CPU − device| of one eval-mode forward pass in fp32 (TF32 off), same weights and inputs.

    The weights are those after one training step on the CPU: some models start with a zeroed layer
    (the MRI denoiser starts as the identity), which would make the comparison trivially exact.
    """
    seed_everything(case.trainer.seed)
    model = case.new_model()
    batch = step_batch(case, batch_size, torch.device("cpu"))
    optimizer = adamw(model.parameters(), case.trainer)
    forward(model.train(), batch, torch.device("cpu"), NO_AUTOCAST)[0].loss.backward()
    optimizer.step()
    model.eval()
    x = batch[0] if isinstance(batch, list) else batch
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            on_cpu = model(x).recon
            on_device = copy.deepcopy(model).to(device)(x.to(device)).recon.cpu()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags
    difference = (on_cpu.double() - on_device.double()).abs().max().item()
    return {"max_abs_difference": difference, "max_abs_output": on_cpu.abs().max().item(), "batch_size": batch_size}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failure_reason(lines: list[str]) -> str:
    """The last line of a failed rank's log that names an error, with the line after it when it only announces one.

    NCCL ends with "Last error:" and gives the reason (e.g. two ranks on one GPU) on the next line.
    """
    for index in reversed(range(len(lines))):
        if "error" in lines[index].lower():
            reason = lines[index].strip()
            if reason.endswith(":") and index + 1 < len(lines):
                reason += " " + lines[index + 1].split("]: ", 1)[-1].strip()
            return reason
    return "\n".join(lines[-3:]).strip()


def ddp_step(device: torch.device, backend: str) -> dict:
    """One epoch of the shared trainer's `fit` in 2 processes (`--ddp-worker`), backend `backend`; the ranks' weights compared."""
    ranks_with_gpu = torch.cuda.device_count() if device.type == "cuda" else 0
    with tempfile.TemporaryDirectory(prefix="latente-bench-ddp-") as tmp:
        folder, port = Path(tmp), _free_port()
        workers = []
        for rank in range(2):
            env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2", "RANK": str(rank),
                   "LOCAL_RANK": str(rank if ranks_with_gpu >= 2 else 0)}
            command = [sys.executable, "-m", "bench.gpu", "--ddp-worker", tmp, "--device", device.type, "--ddp-backend", backend]
            with (folder / f"rank{rank}.log").open("w") as log:
                workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + DDP_TIMEOUT_S
        try:
            for worker in workers:
                worker.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for worker in workers:
                worker.kill()
                worker.wait()
            return {"backend": backend, "ok": False, "error": f"timed out after {DDP_TIMEOUT_S} s"}
        if any(worker.returncode for worker in workers):
            lines = [line for rank in range(2) for line in (folder / f"rank{rank}.log").read_text().splitlines()]
            return {"backend": backend, "ok": False, "error": failure_reason(lines)}
        ranks = [read_json(folder / f"rank{rank}.json") for rank in range(2)]
    placement = "CPU" if device.type == "cpu" else "one GPU per rank" if ranks_with_gpu >= 2 else "both ranks on one GPU"
    return {"backend": backend, "ok": True, "world": 2, "placement": placement,
            "replicas_identical": ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"], "ranks": ranks}


def ddp_worker(folder: Path, device: str, backend: str) -> None:
    """One rank of `ddp_step`: the anomaly detector (small) for one epoch of `fit`, its weights' digest written to `folder`."""
    import torch.distributed as dist

    if device == "cuda" and backend == "gloo":
        dist.init_process_group("gloo")  # the trainer's init_distributed keeps a group that is already there
    case = synthetic_case("anomaly", samples=512)
    trainer = case.trainer.model_copy(update={"epochs": 1, "device": device, "patience": None})
    seed_everything(trainer.seed)
    model = case.new_model()
    started = time.perf_counter()
    result = fit(model, case.train_set, case.train_set[:64], trainer, folder / "checkpoint", fingerprint={"bench": "gpu ddp"})
    seconds = time.perf_counter() - started
    rank = dist.get_rank()
    digest = hashlib.sha256(b"".join(v.detach().cpu().contiguous().numpy().tobytes() for v in model.state_dict().values()))
    write_json(folder / f"rank{rank}.json", {"rank": rank, "backend": dist.get_backend(), "seconds": seconds,
                                             "val_loss": result.best_val_loss, "weights_sha256": digest.hexdigest()})
    dist.destroy_process_group()


def measure_domain(domain: str, device: torch.device, steps: int, warm_up: int, scales: list[int], peak_flops: float) -> dict:
    """fp32 and bf16 training throughput at each batch scale, and the CPU-vs-device forward difference; one line per run as it comes."""
    case = synthetic_case(domain)
    batch = case.trainer.batch_size
    runs = []
    for scale in scales:
        fp32, bf16 = (train_throughput(case, device, half, batch * scale, steps, warm_up, peak_flops) for half in (False, True))
        bf16["bf16_over_fp32"] = bf16["samples_per_second"] / fp32["samples_per_second"]
        runs += [fp32, bf16]
        print(f"{domain} batch {batch * scale}: fp32 {fp32['samples_per_second']:.0f}/s, bf16 {bf16['samples_per_second']:.0f}/s "
              f"(×{bf16['bf16_over_fp32']:.2f}), MFU bf16 {bf16['mfu']:.4f}", file=sys.stderr)
    return {"model": case.model, "training": runs, "cpu_vs_device_forward": forward_difference(case, device, batch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--dry-run", action="store_true", help="tiny step counts: check every piece, measure nothing")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per setting")
    parser.add_argument("--scales", default="1,16", help="batch sizes as multiples of the committed one")
    parser.add_argument("--domains", default=",".join(DOMAINS))
    parser.add_argument("--peak-tflops", type=float, default=None, help=f"the MFU's denominator (default: {NOMINAL_PEAK[0]}, {NOMINAL_PEAK[1]:g})")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--ddp-worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ddp-backend", default="nccl", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp_worker is not None:
        ddp_worker(args.ddp_worker, args.device, args.ddp_backend)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"bench.gpu: no CUDA device (torch {torch.__version__}): skipped")
        return

    device = torch.device(args.device)
    steps, warm_up, scales = (2, 1, [1]) if args.dry_run else (args.steps, 3, [int(s) for s in args.scales.split(",")])
    peak_name, peak_tflops = ("--peak-tflops", args.peak_tflops) if args.peak_tflops else NOMINAL_PEAK
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)" if args.dry_run else "CPU"
    print(f"device: {card}; MFU against the nominal peak {peak_name}: {peak_tflops:g} TFLOP/s", file=sys.stderr)
    started = time.perf_counter()
    domains: dict[str, dict] = {}
    for domain in args.domains.split(","):
        try:
            domains[domain] = measure_domain(domain, device, steps, warm_up, scales, peak_tflops * 1e12)
        except Exception as error:  # noqa: BLE001 — one domain's failure must not cost the others' minutes on the GPU
            domains[domain] = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
        print(f"{domain}: {domains[domain].get('error', 'done')} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    ddp = [ddp_step(device, "nccl" if device.type == "cuda" else "gloo")]
    if device.type == "cuda" and not ddp[0]["ok"]:
        ddp.append(ddp_step(device, "gloo"))

    rows = [[d, run["batch_size"], run["precision"], f"{run['samples_per_second']:.0f}", f"{run.get('bf16_over_fp32', 1.0):.2f}",
             f"{run['tflops']:.2f}", f"{run['mfu']:.4f}"] for d, r in domains.items() for run in r.get("training", [])]
    print(markdown_table(["domain", "batch", "precision", "samples/s", "÷ fp32", "TFLOP/s", f"MFU (of {peak_tflops:g} TFLOP/s, {peak_name})"], rows))
    print(markdown_table(["domain", "max |CPU − device| forward (fp32, TF32 off)", "max |output|"],
                         [[d, f"{r['cpu_vs_device_forward']['max_abs_difference']:.3g}", f"{r['cpu_vs_device_forward']['max_abs_output']:.3g}"]
                          for d, r in domains.items() if "error" not in r]))
    for run in ddp:
        state = f"ok, replicas identical: {run['replicas_identical']}" if run["ok"] else f"failed: {run['error']}"
        print(f"DDP, 2 processes, {run['backend']}: {state}")
    out = args.out or RESULTS / ("gpu_dry_run.json" if args.dry_run else "gpu.json")
    write_json(out, {"device": card, "dry_run": args.dry_run, "torch": torch.__version__, "peak": {"name": peak_name, "tflops": peak_tflops},
                     "fp32_tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
                     "steps": steps, "warm_up_steps": warm_up, "domains": domains, "ddp": ddp, "seconds": time.perf_counter() - started})
    print(f"wrote {out} in {time.perf_counter() - started:.0f} s")
    failed = [d for d, r in domains.items() if "error" in r] + ([] if any(run["ok"] for run in ddp) else ["DDP"])
    if failed:  # after the results are written: what did run is kept, and a dry run still fails on a typo
        sys.exit(f"bench.gpu: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
