"""Start-up time of the `latente` command: `--help` must not pay for importing torch and MONAI.

Wall time of `latente --help` and `latente <domain> --help` for every domain, each in a fresh
process, against two baselines measured in the same run: `python -c pass` (the interpreter alone)
and `python -c "import torch, monai"` (the cost the commands avoid by importing them only inside the
commands that compute). Runs are interleaved, after one untimed warm-up round, and each figure is
the median of R runs. `python -m bench.startup [--repeats R]`
"""
from __future__ import annotations

import argparse
import pkgutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import latente.domains
from latente.shared.io import write_json
from latente.shared.report import markdown_table

RESULTS = Path("bench/results/startup.json")
BASELINES = {"python -c pass": ["-c", "pass"], "python -c 'import torch, monai'": ["-c", "import torch, monai"]}


def latente_command() -> list[str]:
    """The `latente` script installed beside this interpreter (what a user runs), else its module."""
    script = Path(sys.executable).parent / "latente"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "latente.domains.cli"]


def wall_seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    command = latente_command()
    domains = sorted(m.name for m in pkgutil.iter_modules(latente.domains.__path__) if m.ispkg)
    commands = {name: [sys.executable, *argv] for name, argv in BASELINES.items()}
    commands["latente --help"] = [*command, "--help"]
    commands |= {f"latente {d} --help": [*command, d, "--help"] for d in domains}
    for argv in commands.values():  # warm-up: file cache and .pyc files
        wall_seconds(argv)
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, argv in commands.items():
            runs[name].append(wall_seconds(argv))
    median = {name: statistics.median(times) for name, times in runs.items()}

    bare, heavy = median["python -c pass"], median["python -c 'import torch, monai'"]
    ratios = {name: {"vs_import_torch_monai": median[name] / heavy, "share_of_torch_monai_import": (median[name] - bare) / (heavy - bare)}
              for name in commands if name.startswith("latente")}
    rows = [(name, f"{median[name]:.3f}", f"{ratios[name]['vs_import_torch_monai']:.2f}" if name in ratios else "",
             f"{ratios[name]['share_of_torch_monai_import']:.2f}" if name in ratios else "") for name in commands]
    print(f"median of {args.repeats} runs each, wall time; latente = {' '.join(command)}", file=sys.stderr)
    print(markdown_table(["command", "seconds", "÷ import torch, monai", "(t − bare python) ÷ (torch, monai − bare python)"], rows))
    write_json(RESULTS, {
        "repeats": args.repeats, "statistic": "median wall seconds", "latente": command,
        "seconds": median, "runs": runs, "ratios": ratios,
    })


if __name__ == "__main__":
    main()
