"""Reading `reports/<domain>/metrics.json` (the shape of CONVENTIONS.md) and flattening it for DVC."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import pydantic

from latente.shared.errors import UserError
from latente.shared.io import read_json

def _number(value: Any) -> Any:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ValueError(f"must be a number or null, not {value!r}")
    return value


def _scalar(value: Any) -> Any:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"must be a string, number, boolean or null, not {value!r}")
    return value


Number = Annotated[Optional[float], pydantic.PlainValidator(_number)]
ConditionValue = Annotated[Any, pydantic.PlainValidator(_scalar)]


class Row(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    method: pydantic.StrictStr
    condition: dict[str, ConditionValue]
    metrics: dict[str, Number]


class Data(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow", frozen=True)

    source: pydantic.StrictStr
    items: list[pydantic.StrictStr | pydantic.StrictInt]
    n: pydantic.StrictInt


class ResultsFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    domain: pydantic.StrictStr
    data: Data
    results: list[Row]

    def find(self, method: str, condition: dict[str, Any]) -> Optional[dict[str, Number]]:
        for row in self.results:
            if row.method == method and row.condition == condition:
                return row.metrics
        return None


def load_results(path: Path, domain: str) -> ResultsFile:
    """Validate a metrics.json; any deviation is one UserError naming the file and the key."""
    try:
        results = ResultsFile.model_validate(read_json(path))
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        problem = {"missing": "required key is missing", "extra_forbidden": "unknown key"}.get(
            first["type"], first["msg"].removeprefix("Value error, "))
        raise UserError(f"{path}: {where}" if where else path, f"{problem} (not the results shape of CONVENTIONS.md)") from None
    if results.domain != domain:
        raise UserError(f"{path}: domain", f"is {results.domain!r}, expected {domain!r}")
    return results


def condition_key(condition: dict[str, Any]) -> str:
    """`operating_point=A,record=100`; the overall row (empty condition) is `overall`."""
    return ",".join(f"{k}={v}" for k, v in condition.items()) or "overall"


def summarise(results: ResultsFile, items: Optional[str]) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {condition: {metric: value}}} of the aggregate rows (no `items` key in the condition).

    This is what `reports/summary.json` holds per domain: DVC flattens nested objects into
    `ecg.model.operating_point=A.prd`, so `dvc metrics diff` and `dvc exp show` can read it
    (they cannot read the list of rows in metrics.json).
    """
    out: dict[str, dict[str, dict[str, float]]] = {}
    for row in results.results:
        if items is not None and items in row.condition:
            continue
        values = {k: v for k, v in row.metrics.items() if v is not None}
        if values:
            out.setdefault(row.method, {}).setdefault(condition_key(row.condition), {}).update(values)
    return out


def flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """{"model.overall.f1": 0.8, ...}: the keys DVC shows for a nested metrics file."""
    flat: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = value
    return flat
