"""Family alignments (A2M/A3M FASTA or Stockholm) → integer-coded focus columns.

The rules follow DeepSequence: the focus (wild-type) sequence's upper-case positions are
the columns; lower-case letters and `.` (insertions, low-coverage columns) are dropped;
sequences with a non-standard residue in a focus column are removed and counted.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from Bio import AlignIO, SeqIO

from latente.shared.errors import UserError

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
GAP = "-"
ALPHABET = AMINO_ACIDS + GAP  # the 21 states of the model; the gap is state 20
GAP_CODE = len(AMINO_ACIDS)
NON_STANDARD = set("BJOUXZ")  # IUPAC letters that are not one of the 20 amino acids
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
