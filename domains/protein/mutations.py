"""Deep-mutational-scan tables: `A23V` mutants (multi-mutants joined by `:`) → focus columns.

Positions use the focus sequence's numbering (the `/start-end` of its name gives the offset).
Two kinds of mutant are skipped and counted, never silently dropped: a wild-type letter that
disagrees with the focus sequence, and a position outside the focus columns.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from latente.domains.protein.alignment import AMINO_ACIDS, Focus, encode
from latente.shared.errors import UserError

MUTANT = re.compile(rf"^([{AMINO_ACIDS}])(-?\d+)([{AMINO_ACIDS}])$")


@dataclass(frozen=True)
class Substitution:
    wild_type: str
    number: int
    mutant: str


def parse_mutant(text: str) -> list[Substitution]:
    """`A23V` or `A23V:G45D` → substitutions; ValueError when the string does not parse."""
    subs = []
    for part in str(text).strip().split(":"):
        match = MUTANT.match(part.strip())
        if match is None:
            raise ValueError(f"mutant {text!r} does not parse: expected e.g. A23V or A23V:G45D (20 amino acids)")
        subs.append(Substitution(match.group(1), int(match.group(2)), match.group(3)))
    return subs


@dataclass
class MutationSet:
    """The scorable mutants of a DMS table, as mutated focus sequences, with the skip counts."""

    mutants: list[str]
    scores: np.ndarray
    codes: np.ndarray  # [M, L] mutated focus sequences
    n_mutations: np.ndarray  # [M] substitutions per mutant
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def warning(self) -> str | None:
        """A stderr line naming what was skipped, with one example of each kind."""
        if not self.n_skipped:
            return None
        parts = [f"{n} {kind.replace('_', ' ')} (e.g. {self.examples[kind]})" for kind, n in self.skipped.items() if n]
        return "skipped mutants: " + "; ".join(parts)


def read_mutations(path: str | Path, focus: Focus, mutant_column: str = "mutant", score_column: str = "score") -> MutationSet:
    """Read a DMS CSV and map each mutant onto the focus columns."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={mutant_column: str})
    except FileNotFoundError:
        raise UserError(path, "mutations file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise UserError(path, f"not a readable CSV ({str(err).strip().splitlines()[0]})") from None
    for role, column in (("mutant", mutant_column), ("score", score_column)):
        if column not in table.columns:
            raise UserError(path, f"{role} column {column!r} is missing",
                            f"the columns are {', '.join(map(str, table.columns))}; pass --{role}-column")
    scores = pd.to_numeric(table[score_column], errors="coerce").to_numpy(dtype=np.float64)
    wild_type = encode(focus.sequence)
    skipped = {"wild_type_mismatch": 0, "outside_focus_columns": 0, "missing_score": 0}
    examples: dict[str, str] = {}
    kept_mutants, kept_scores, rows, counts = [], [], [], []
    for row, (text, score) in enumerate(zip(table[mutant_column], scores), start=2):
        if pd.isna(text):
            raise UserError(path, f"row {row}: column {mutant_column!r} is empty")
        try:
            subs = parse_mutant(text)
        except ValueError as err:
            raise UserError(path, f"row {row}: {err}") from None
        reason, mutated = _apply(subs, focus, wild_type)
        if reason is None and not np.isfinite(score):
            reason = "missing_score"
        if reason is not None:
            skipped[reason] += 1
            examples.setdefault(reason, str(text))
            continue
        kept_mutants.append(str(text))
        kept_scores.append(score)
        rows.append(mutated)
        counts.append(len(subs))
    if not rows:
        raise UserError(path, f"no scorable mutants in {len(table)} rows ({', '.join(f'{k}: {v}' for k, v in skipped.items() if v)})",
                        f"check the numbering: the focus {focus.name} starts at residue {focus.start}")
    return MutationSet(kept_mutants, np.asarray(kept_scores), np.stack(rows), np.asarray(counts),
                       {k: v for k, v in skipped.items()}, examples)


def _apply(subs: list[Substitution], focus: Focus, wild_type: np.ndarray) -> tuple[str | None, np.ndarray | None]:
    """The mutated focus codes, or the reason the mutant cannot be scored."""
    mutated = wild_type.copy()
    for sub in subs:
        located = focus.locate(sub.number)
        if located is None:
            return "outside_focus_columns", None
        letter, column = located
        if letter != sub.wild_type:
            return "wild_type_mismatch", None
        if column < 0:
            return "outside_focus_columns", None
        mutated[column] = AMINO_ACIDS.index(sub.mutant)
    return None, mutated
