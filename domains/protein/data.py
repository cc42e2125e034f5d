"""The protein data: family alignments, sequence weights, DMS tables, and the prepared alignment.

Alignments (A2M/A3M FASTA or Stockholm) become integer-coded focus columns by DeepSequence's
rules: the focus (wild-type) sequence's upper-case positions are the columns; lower-case letters
and `.` (insertions, low-coverage columns) are dropped; sequences with a non-standard residue in
a focus column are removed and counted.

Sequence weights are DeepSequence's: 1 / number of neighbours within 1 − θ identity. Identity of
sequence i to j is (positions where both hold the same amino acid) divided by the number of
non-gap positions of i itself; j is a neighbour of i when that exceeds 1 − θ (i is always its own
neighbour). Neff is the sum of the weights.

Deep-mutational-scan tables hold `A23V` mutants (multi-mutants joined by `:`) numbered as the
focus sequence (the `/start-end` of its name gives the offset). Mutants are skipped and counted,
never silently dropped, for a wild-type letter that disagrees with the focus sequence, a position
outside the focus columns, a missing score, and a repeat of a mutant already read.

The prepare stage writes the weighted alignment: codes and weights (safetensors) plus ids and
focus (JSON).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from Bio import AlignIO, SeqIO
from safetensors.torch import load_file, save_file

from latente.domains.protein import DOMAIN
from latente.domains.protein.params import PrepareParams
from latente.shared.errors import UserError
from latente.shared.io import atomic_dir, read_json, write_json
from latente.shared.stage import DomainPaths

# --- alignments ---

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
GAP = "-"
ALPHABET = AMINO_ACIDS + GAP  # the 21 states of the model; the gap is state 20
GAP_CODE = len(AMINO_ACIDS)
RANGE_SUFFIX = re.compile(r"/(\d+)-(\d+)$")

_CODE = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(ALPHABET):
    _CODE[ord(_c)] = _i


@dataclass(frozen=True)
class Focus:
    """The focus (wild-type) sequence and its residue numbering.

    `residues` are all of the focus's residues in order (upper- and lower-case, as in the
    file); residue i has number `start + i`; `columns[i]` is its focus column, or -1 for a
    lower-case (non-focus) residue.
    """

    name: str
    start: int
    residues: str
    columns: tuple[int, ...]

    @property
    def sequence(self) -> str:
        """The wild-type letters of the focus columns."""
        return "".join(r for r, c in zip(self.residues, self.columns) if c >= 0)

    def locate(self, number: int) -> tuple[str, int] | None:
        """(wild-type letter, focus column or -1) of residue `number`; None if out of range."""
        i = number - self.start
        if not 0 <= i < len(self.residues):
            return None
        return self.residues[i].upper(), self.columns[i]

    def to_dict(self) -> dict:
        return {"name": self.name, "start": self.start, "residues": self.residues, "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, data: dict) -> "Focus":
        return cls(data["name"], int(data["start"]), data["residues"], tuple(int(c) for c in data["columns"]))


@dataclass(frozen=True)
class Alignment:
    """Sequences as codes into ALPHABET, shape [N, L]; row 0 is the focus."""

    ids: list[str]
    codes: np.ndarray
    focus: Focus
    n_removed: int
    source: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape  # type: ignore[return-value]

    def sequences(self) -> list[str]:
        return decode(self.codes)


def decode(codes: np.ndarray) -> list[str]:
    letters = np.array(list(ALPHABET))
    return ["".join(row) for row in letters[codes]]


def encode(sequence: str) -> np.ndarray:
    """Codes of a sequence of focus-column letters (20 amino acids and `-`)."""
    codes = _CODE[np.frombuffer(sequence.upper().encode("ascii", "replace"), dtype=np.uint8)]
    if (codes < 0).any():
        raise ValueError(f"letter {sequence[int(np.argmax(codes < 0))]!r} is not one of {ALPHABET}")
    return codes


def one_hot(codes: np.ndarray) -> np.ndarray:
    """[N, L] codes → [N, 21, L] float32 one-hot, the model's input layout."""
    eye = np.eye(len(ALPHABET), dtype=np.float32)
    return np.ascontiguousarray(eye[codes].transpose(0, 2, 1))


def _records(path: Path) -> tuple[list[tuple[str, str]], bool]:
    """(id, aligned text) pairs from a FASTA-style (A2M/A3M) or Stockholm file, and whether it was Stockholm."""
    try:
        with path.open("r", encoding="utf-8") as fh:
            head = fh.read(4096).lstrip()
    except FileNotFoundError:
        raise UserError(path, "alignment file not found") from None
    except (UnicodeDecodeError, IsADirectoryError) as err:
        raise UserError(path, f"not a text alignment file ({err.__class__.__name__})") from None
    if not head:
        raise UserError(path, "the alignment file is empty")
    try:
        if head.startswith("# STOCKHOLM"):
            records = [(r.id, str(r.seq)) for r in AlignIO.read(str(path), "stockholm")]
        elif head.startswith(">"):
            records = [(r.id, str(r.seq)) for r in SeqIO.parse(str(path), "fasta")]
        else:
            raise UserError(path, "not an alignment", "expected A2M/A3M FASTA ('>' headers) or Stockholm ('# STOCKHOLM 1.0')")
    except ValueError as err:
        raise UserError(path, f"could not be parsed ({err})") from None
    if not records:
        raise UserError(path, "the alignment holds no sequences")
    return records, head.startswith("# STOCKHOLM")


def _stockholm_as_a2m(records: list[tuple[str, str]], focus_index: int) -> list[tuple[str, str]]:
    """Biopython reads Stockholm's `.` as `-`, so the insert columns are lost; restore them
    A2M-style from the focus row: every column where it is not upper case is an insert
    column (letters lower-cased, gaps `.`), which leaves its upper-case columns as the focus.
    """
    inserts = [i for i, c in enumerate(records[focus_index][1]) if not c.isupper()]

    def as_a2m(text: str) -> str:
        chars = list(text)
        for i in inserts:
            chars[i] = "." if chars[i] == GAP else chars[i].lower()
        return "".join(chars)

    return [(seq_id, as_a2m(text)) for seq_id, text in records]


def _match_states(path: Path, seq_id: str, text: str) -> str:
    """The match-state letters of one aligned sequence: lower case and `.` removed."""
    bad = re.search(r"[^A-Za-z.\-]", text)
    if bad:
        raise UserError(path, f"unknown letter {bad.group()!r} in sequence {seq_id} at alignment column {bad.start() + 1}",
                        "alignments may hold letters, '-' and '.' only")
    return re.sub(r"[a-z.]", "", text)


def read_alignment(path: str | Path, focus: str | None = None) -> Alignment:
    """Parse an alignment into focus columns, removing sequences with non-standard residues."""
    path = Path(path)
    records, stockholm = _records(path)
    ids = [seq_id for seq_id, _ in records]
    if focus is None:
        focus_index = 0
    elif focus in ids:
        focus_index = ids.index(focus)
    else:
        raise UserError(path, f"focus sequence {focus!r} not found", f"the first ids are {', '.join(ids[:3])}")
    if stockholm:
        records = _stockholm_as_a2m(records, focus_index)
    matches = [_match_states(path, seq_id, text) for seq_id, text in records]
    width = len(matches[focus_index])
    for seq_id, match in zip(ids, matches):
        if len(match) != width:
            raise UserError(path, f"ragged alignment: sequence {seq_id} has {len(match)} match columns, "
                            f"the focus {ids[focus_index]} has {width}",
                            "every sequence needs the same number of upper-case/'-' columns")
    focus_match = matches[focus_index]
    focus_cols = [i for i, c in enumerate(focus_match) if c.isupper()]
    if not focus_cols:
        raise UserError(path, f"empty alignment after filtering: the focus {ids[focus_index]} has no upper-case (focus) positions")
    focus_info = _focus(path, ids[focus_index], records[focus_index][1], focus_cols)
    order = [focus_index] + [i for i in range(len(records)) if i != focus_index]
    rows = np.frombuffer("".join(matches[i] for i in order).encode("ascii"), dtype=np.uint8).reshape(len(order), width)
    codes = _CODE[rows[:, focus_cols]]
    valid = (codes >= 0).all(axis=1)
    if not valid[0]:
        col = int(np.argmax(codes[0] < 0))
        raise UserError(path, f"the focus sequence {ids[focus_index]} has the non-standard residue "
                        f"{chr(rows[0, focus_cols[col]])!r} in focus column {col + 1}", "choose another focus sequence")
    kept = [ids[i] for i, ok in zip(order, valid) if ok]
    return Alignment(ids=kept, codes=np.ascontiguousarray(codes[valid]), focus=focus_info,
                     n_removed=int((~valid).sum()), source=path.name)


def _focus(path: Path, name: str, text: str, focus_cols: list[int]) -> Focus:
    """Residue numbering of the focus: `/start-end` in its name gives the first number."""
    match = RANGE_SUFFIX.search(name)
    start = int(match.group(1)) if match else 1
    residues, columns = [], []
    col = upper = 0
    focus_set = set(focus_cols)
    for char in text:
        if char == ".":
            continue
        if char.islower():
            residues.append(char)
            columns.append(-1)
            continue
        # an upper-case letter or '-' is a match state
        if char != GAP:
            residues.append(char)
            columns.append(upper if col in focus_set else -1)
            upper += col in focus_set
        col += 1
    if match and int(match.group(2)) - start + 1 != len(residues):
        raise UserError(path, f"focus name {name} gives {int(match.group(2)) - start + 1} residues "
                        f"but the sequence has {len(residues)}")
    return Focus(name=name, start=start, residues="".join(residues), columns=tuple(columns))


# --- sequence weights ---

# bfloat16 holds integers up to 256 exactly, so a product over at most 256 positions
# gives exact match counts at several times the float32 speed.
EXACT_POSITIONS = 256


def _residue_one_hot(codes: np.ndarray) -> list[torch.Tensor]:
    """bfloat16 one-hot of the amino acids (gaps all zero), in chunks of ≤ 256 positions."""
    x = torch.nn.functional.one_hot(torch.as_tensor(codes, dtype=torch.long), GAP_CODE + 1)[..., : len(AMINO_ACIDS)]
    return [x[:, lo : lo + EXACT_POSITIONS].reshape(len(codes), -1).to(torch.bfloat16)
            for lo in range(0, codes.shape[1], EXACT_POSITIONS)]


def identities(query: np.ndarray, reference: np.ndarray, block: int = 1024):
    """Yield (row offset, [b, N_ref] identity of each query row to each reference row), blocked.

    Identity = same-residue positions / non-gap positions of the query sequence.
    """
    q_chunks, r_chunks = _residue_one_hot(query), _residue_one_hot(reference)
    lengths = torch.as_tensor((query != GAP_CODE).sum(1), dtype=torch.float64).clamp(min=1)
    with torch.no_grad():
        for lo in range(0, len(query), block):
            matches = sum((q[lo : lo + block] @ r.T).double() for q, r in zip(q_chunks, r_chunks))
            yield lo, matches / lengths[lo : lo + block, None]


def sequence_weights(codes: np.ndarray, theta: float = 0.2, block: int = 1024) -> np.ndarray:
    """Weights of every sequence, by blocked one-hot matrix products (exact integer counts)."""
    neighbours = np.empty(len(codes), dtype=np.int64)
    for lo, identity in identities(codes, codes, block):
        neighbours[lo : lo + len(identity)] = (identity > 1 - theta).sum(1).clamp(min=1).numpy()
    return 1.0 / neighbours


def sequence_weights_loop(codes: np.ndarray, theta: float = 0.2) -> np.ndarray:
    """The straightforward row-by-row NumPy reference that tests and the benchmark compare against."""
    residue = codes != GAP_CODE
    weights = np.empty(len(codes), dtype=np.float64)
    for i in range(len(codes)):
        matches = ((codes == codes[i]) & residue[i]).sum(1)
        identity = matches / max(int(residue[i].sum()), 1)
        weights[i] = 1.0 / max(int((identity > 1 - theta).sum()), 1)
    return weights


# --- the prepared alignment ---

TENSORS = "alignment.safetensors"
META = "alignment.json"


@dataclass(frozen=True)
class WeightedAlignment:
    alignment: Alignment
    weights: np.ndarray
    theta: float

    @property
    def neff(self) -> float:
        return float(self.weights.sum())


def weigh(path: str | Path, focus: str | None, theta: float) -> WeightedAlignment:
    """Parse an alignment and compute its sequence weights."""
    alignment = read_alignment(path, focus)
    return WeightedAlignment(alignment, sequence_weights(alignment.codes, theta), theta)


def subsample(data: WeightedAlignment, n: int, seed: int) -> WeightedAlignment:
    """A shallower alignment of `n` sequences built from this one: the focus, plus n − 1 others drawn
    without replacement with probability proportional to their weight, then weighed afresh.

    Drawing by weight samples the family's diversity the way Neff counts it: a uniform draw from a
    deep alignment would mostly repeat its most populated clusters, which no shallow family looks like.
    With n at or above the alignment's size, the alignment itself is returned.
    """
    a = data.alignment
    if n >= a.shape[0]:
        return data
    others = data.weights[1:] / data.weights[1:].sum()
    picked = np.random.default_rng(seed).choice(np.arange(1, a.shape[0]), size=n - 1, replace=False, p=others)
    rows = np.concatenate([[0], np.sort(picked)])
    shallow = Alignment(ids=[a.ids[i] for i in rows], codes=a.codes[rows], focus=a.focus, n_removed=a.n_removed,
                        source=f"{a.source} (subsample of {n}, seed {seed})")
    return WeightedAlignment(shallow, sequence_weights(shallow.codes, data.theta), data.theta)


def save_prepared(data: WeightedAlignment, folder: Path) -> None:
    a = data.alignment
    with atomic_dir(folder) as tmp:
        save_file({"codes": torch.from_numpy(a.codes), "weights": torch.from_numpy(data.weights)}, str(tmp / TENSORS))
        write_json(tmp / META, {
            "source": a.source, "ids": a.ids, "focus": a.focus.to_dict(), "n_removed": a.n_removed,
            "theta": data.theta, "neff": data.neff,
        })


def load_prepared(folder: Path) -> WeightedAlignment:
    if not (folder / TENSORS).is_file():
        raise UserError(folder, "no prepared alignment", f"run `dvc repro prepare@{DOMAIN}` first")
    tensors = load_file(str(folder / TENSORS))
    meta = read_json(folder / META)
    alignment = Alignment(ids=meta["ids"], codes=tensors["codes"].numpy(), focus=Focus.from_dict(meta["focus"]),
                          n_removed=meta["n_removed"], source=meta["source"])
    return WeightedAlignment(alignment, tensors["weights"].numpy(), meta["theta"])


# --- DMS tables ---

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
    if table.empty:
        raise UserError(path, "has a header but no mutant rows")
    scores = pd.to_numeric(table[score_column], errors="coerce").to_numpy(dtype=np.float64)
    wild_type = encode(focus.sequence)
    skipped = {"wild_type_mismatch": 0, "outside_focus_columns": 0, "missing_score": 0, "duplicate": 0}
    examples: dict[str, str] = {}
    kept_mutants, kept_scores, rows, counts = [], [], [], []
    seen: set[bytes] = set()
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
        if reason is None and mutated.tobytes() in seen:
            reason = "duplicate"  # the same mutated sequence again (also A23V:G45D after G45D:A23V): the first row counts
        if reason is not None:
            skipped[reason] += 1
            examples.setdefault(reason, str(text))
            continue
        seen.add(mutated.tobytes())
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


def prepare(params: PrepareParams, paths: DomainPaths) -> None:
    """The prepare stage: the raw alignment → focus-column codes and sequence weights. The weighing's time goes
    to the log only: in the prepared data it would change their hash on every re-run, and train would look stale."""
    started = time.perf_counter()
    data = weigh(paths.raw / params.alignment, params.focus, params.theta)
    weight_seconds = time.perf_counter() - started
    save_prepared(data, paths.prepared)
    n, length = data.alignment.shape
    print(f"{n} sequences × {length} focus columns ({data.alignment.n_removed} removed for non-standard residues); "
          f"Neff {data.neff:.1f} (θ = {params.theta}), weighed in {weight_seconds:.1f} s")
