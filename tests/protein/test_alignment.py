"""Alignment parsing: focus columns, offsets, filtering, formats and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from latente.domains.protein.data import ALPHABET, decode, encode, one_hot, read_alignment
from latente.shared.errors import UserError

# Focus with lower-case first/last residues (non-focus), an insert column ('.' / lower case)
# in the middle, a sequence with 'X' in a focus column and one with 'X' in a dropped column.
A2M = """>WT/10-17
mKLV.AGyr
>s1/3-8
.KIVdAG..
>s2/1-6
.RLX.AGh.
>s3/5-11
aKL-.SGwd
>s4/1-5
.-LVxCG..
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_real_alignment_is_8355_by_253(blat_alignment):
    # DeepSequence's notebook prints "Data Shape = (8355, 253, 20)" for this file, whose 8403 records
    # (grep -c '>') lose 48 to non-standard residues; the focus name /24-286 gives 263 residues
    # (datasets/protein/SOURCE.md)
    a = read_alignment(blat_alignment)
    assert a.shape == (8355, 253)
    assert a.n_removed == 48
    assert a.ids[0] == "BLAT_ECOLX/24-286"
    assert a.focus.start == 24 and len(a.focus.residues) == 263
    assert a.focus.sequence.startswith("VKVKDAEDQLGARVGYIELD") and len(a.focus.sequence) == 253
    assert decode(a.codes[:1])[0] == a.focus.sequence


def test_focus_columns_offsets_and_filtering(tmp_path):
    a = read_alignment(write(tmp_path, "toy.a2m", A2M))
    assert a.shape == (4, 5)
    assert a.ids == ["WT/10-17", "s1/3-8", "s3/5-11", "s4/1-5"]
    assert a.n_removed == 1  # s2 has X in a focus column; s4's 'x' is lower case and dropped
    assert a.sequences() == ["KLVAG", "KIVAG", "KL-SG", "-LVCG"]
    focus = a.focus
    assert (focus.start, focus.residues) == (10, "mKLVAGyr")
    assert focus.locate(10) == ("M", -1)  # lower case: outside the focus columns
    assert focus.locate(11) == ("K", 0)
    assert focus.locate(15) == ("G", 4)
    assert focus.locate(17) == ("R", -1)
    assert focus.locate(9) is None and focus.locate(18) is None


def test_a3m_and_stockholm_give_the_same_columns(tmp_path):
    a3m = ">WT/10-17\nmKLVAGyr\n>s1\nKIVdAG\n>s3\naKL-SGwd\n"
    a = read_alignment(write(tmp_path, "toy.a3m", a3m))
    assert a.sequences() == ["KLVAG", "KIVAG", "KL-SG"]
    sto = "# STOCKHOLM 1.0\nWT/10-17 mKLV.AGyr\ns1/3-8   .KIVdAG..\ns3/5-11  aKL-.SGwd\n//\n"
    b = read_alignment(write(tmp_path, "toy.sto", sto))
    assert b.sequences() == a.sequences()
    assert b.focus == a.focus


def test_focus_parameter_selects_another_sequence(tmp_path):
    a = read_alignment(write(tmp_path, "toy.a2m", A2M), focus="s1/3-8")
    assert a.ids[0] == "s1/3-8"
    assert a.focus.start == 3 and a.focus.sequence == "KIVAG"


def test_one_hot_layout():
    codes = encode("AC-")[None]
    x = one_hot(codes)
    assert x.shape == (1, 21, 3)
    assert x[0, ALPHABET.index("A"), 0] == 1 and x[0, ALPHABET.index("C"), 1] == 1 and x[0, 20, 2] == 1
    assert np.allclose(x.sum(1), 1)


@pytest.mark.parametrize("text, fragments", [
    (">WT\nKLV*G\n>s\nKLVAG\n", ["unknown letter '*'", "WT", "column 4"]),
    (">WT\nKLVAG\n>s1\nKL1AG\n", ["unknown letter '1'", "s1"]),
    (">WT\nKLVAG\n>s1\nKLVA\n", ["ragged alignment", "s1", "4 match columns", "5"]),
    (">WT\nklvag\n>s1\nKLVAG\n", ["ragged"]),
    (">WT\nklvag\n>s1\nklvag\n", ["empty alignment after filtering", "no upper-case"]),
    (">WT\nKLXAG\n>s1\nKLVAG\n", ["non-standard residue 'X'", "focus column 3"]),
    ("", ["the alignment file is empty"]),
    (">WT\n>s1\n", ["empty alignment after filtering"]),
    ("KLVAG\n", ["not an alignment"]),
])
def test_bad_alignments_name_the_problem(tmp_path, text, fragments):
    path = write(tmp_path, "bad.a2m", text)
    with pytest.raises(UserError) as err:
        read_alignment(path)
    line = err.value.line()
    assert str(path) in line
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_missing_focus_and_file(tmp_path):
    with pytest.raises(UserError, match="focus sequence 'nope' not found"):
        read_alignment(write(tmp_path, "toy.a2m", A2M), focus="nope")
    with pytest.raises(UserError, match="alignment file not found"):
        read_alignment(tmp_path / "missing.a2m")


def test_name_range_must_match_the_residues(tmp_path):
    with pytest.raises(UserError, match="gives 9 residues but the sequence has 5"):
        read_alignment(write(tmp_path, "toy.a2m", ">WT/1-9\nKLVAG\n>s\nKLVAG\n"))
