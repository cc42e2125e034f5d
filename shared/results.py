"""The one results JSON shape (CONVENTIONS.md) of `evaluate --json` and `reports/<domain>/metrics.json`.

metrics.json holds a list of rows (method, condition, metrics). DVC cannot compare numbers inside
a list, so `Results.write` also writes `summary.json` beside it: the same numbers, one per flat key
`method/metric/condition` (see `flat_key`), which `dvc metrics diff` and `dvc exp show` read.
The site's reports/summary.json uses the same keys, so there is one flat form of a result.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import pydantic

from latente.shared.errors import UserError
from latente.shared.io import read_json, write_json
from latente.shared.params import first_problem

SUMMARY_FILE = "summary.json"  # written beside every metrics.json


def _plain(value: Any) -> Any:
    """Turn numpy/torch scalars into JSON numbers; NaN becomes null (JSON has no NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def condition_key(condition: dict[str, Any]) -> str:
    """`operating_point=A,record=100`: a row's condition as text (empty for the overall row)."""
    return ",".join(f"{k}={v}" for k, v in condition.items())


def flat_key(method: str, metric: str, condition: dict[str, Any]) -> str:
    """`model/prd/operating_point=A`, or `model/f1` for the overall row.

    Slashes, not dots, separate the parts: condition values hold dots (`snr_db=10.0`) and DVC
    joins the keys of nested objects with dots, so a dotted key could not be read back.
    """
    return "/".join([method, metric, condition_key(condition)] if condition else [method, metric])


class Results:
    """Rows of (method, condition, metrics) for one domain, per CONVENTIONS.md."""

    def __init__(self, domain: str, source: str, items: list[str]):
        self.domain = domain
        self.data: dict[str, Any] = {"source": source, "items": list(items), "n": len(items)}
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

    def flat(self, skip_condition: Optional[str] = None) -> dict[str, float]:
        """{flat_key: value} of every number (nulls left out), in row order.

        Rows whose condition has the key `skip_condition` (e.g. `record`, the per-item rows)
        are left out; the site's summary keeps only the aggregate rows this way.
        """
        flat: dict[str, float] = {}
        for row in self.rows:
            if skip_condition is not None and skip_condition in row["condition"]:
                continue
            for metric, value in row["metrics"].items():
                if value is not None:
                    flat[flat_key(row["method"], metric, row["condition"])] = value
        return flat

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "data": self.data, "results": self.rows}

    def write(self, path: str | Path) -> None:
        """`path` (metrics.json) in the CONVENTIONS.md shape, and its flat numbers in summary.json beside it."""
        path = Path(path)
        write_json(path, self.to_dict())
        write_json(path.with_name(SUMMARY_FILE), self.flat())

    @classmethod
    def read(cls, path: str | Path, domain: Optional[str] = None) -> "Results":
        """A metrics.json as Results; any deviation from the shape is one UserError naming the file and key."""
        path = Path(path)
        raw = read_json(path)
        try:
            _ResultsShape.model_validate(raw)
        except pydantic.ValidationError as err:
            loc, problem = first_problem(err)
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
            raise UserError(f"{path}: {where}" if where else path, f"{problem} (not the results shape of CONVENTIONS.md)") from None
        if domain is not None and raw["domain"] != domain:
            raise UserError(f"{path}: domain", f"is {raw['domain']!r}, expected {domain!r}")
        results = cls(raw["domain"], raw["data"]["source"], raw["data"]["items"])
        results.data = raw["data"]
        results.rows = raw["results"]
        return results

    def print_json(self) -> None:
        json.dump(self.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")


def _number(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"must be a number or null, not {value!r}")
    return value


def _scalar(value: Any) -> Any:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"must be a string, number, boolean or null, not {value!r}")
    return value


class _Row(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    method: pydantic.StrictStr
    condition: dict[str, Annotated[Any, pydantic.PlainValidator(_scalar)]]
    metrics: dict[str, Annotated[Optional[float], pydantic.PlainValidator(_number)]]


class _Data(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")

    source: pydantic.StrictStr
    items: list[pydantic.StrictStr | pydantic.StrictInt]
    n: pydantic.StrictInt


class _ResultsShape(pydantic.BaseModel):
    """The shape of CONVENTIONS.md, checked when a metrics.json is read back."""

    model_config = pydantic.ConfigDict(extra="forbid")

    domain: pydantic.StrictStr
    data: _Data
    results: list[_Row]
