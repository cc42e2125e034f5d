"""The one results JSON shape used by `evaluate --json` and `reports/<domain>/metrics.json`."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from latente.shared.io import write_json


def _plain(value: Any) -> Any:
    """Turn numpy/torch scalars into JSON numbers; NaN becomes null (JSON has no NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Results:
    """Rows of (method, condition, metrics) for one domain, per CONVENTIONS.md."""

    def __init__(self, domain: str, source: str, items: list[str]):
        self.domain = domain
        self.data = {"source": source, "items": list(items), "n": len(items)}
        self.rows: list[dict[str, Any]] = []

    def add(self, method: str, metrics: dict[str, Any], **condition: Any) -> None:
        self.rows.append(
            {
                "method": method,
                "condition": {k: _plain(v) for k, v in condition.items()},
                "metrics": {k: _plain(v) for k, v in metrics.items()},
            }
        )

    def find(self, method: str, **condition: Any) -> dict[str, Any]:
        """The metrics of the row with exactly this method and condition."""
        for row in self.rows:
            if row["method"] == method and row["condition"] == condition:
                return row["metrics"]
        raise KeyError(f"no row {method} {condition}")

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "data": self.data, "results": self.rows}

    def write(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    def print_json(self) -> None:
        json.dump(self.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
