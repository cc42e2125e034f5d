"""Mutant parsing, numbering offsets, skip counts and bad DMS tables."""
from __future__ import annotations

import numpy as np
import pytest

from latente.domains.protein.data import Substitution, encode, parse_mutant, read_alignment, read_mutations
from latente.shared.errors import UserError

# focus residues m K L V A G y r numbered 10..17; focus columns K L V A G (11..15)
A2M = ">WT/10-17\nmKLV.AGyr\n>s1\n.KIVdAG..\n>s2\n.RLVeSG..\n"


@pytest.fixture
def focus(tmp_path):
    path = tmp_path / "toy.a2m"
    path.write_text(A2M)
    return read_alignment(path).focus


def csv(tmp_path, text, name="dms.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_parse_mutant():
    assert parse_mutant("A23V") == [Substitution("A", 23, "V")]
    assert parse_mutant("A23V:G45D") == [Substitution("A", 23, "V"), Substitution("G", 45, "D")]
    for bad in ("A23", "23V", "a23v", "A23B", "A2.3V", "A23V;G45D", "", "WT"):
        with pytest.raises(ValueError, match="does not parse"):
            parse_mutant(bad)


def test_offsets_skips_and_mutated_sequences(tmp_path, focus):
    path = csv(tmp_path, "mutant,fit\nK11A,0.5\nG15W,-1.0\nK11R:V13I,0.1\nM10A,2.0\nR17A,2.0\n"
                         "K12A,3.0\nA14C,\nL99A,1.0\nL12A:A14V,0.0\n")
    m = read_mutations(path, focus, "mutant", "fit")
    assert m.mutants == ["K11A", "G15W", "K11R:V13I", "L12A:A14V"]
    assert np.allclose(m.scores, [0.5, -1.0, 0.1, 0.0])
    assert m.n_mutations.tolist() == [1, 1, 2, 2]
    wild_type = encode("KLVAG")
    assert (m.codes[0] != wild_type).sum() == 1 and m.codes[0][0] == encode("A")[0]
    assert m.codes[1][4] == encode("W")[0]
    assert m.codes[2].tolist() == encode("RLIAG").tolist()
    assert m.codes[3].tolist() == encode("KAVVG").tolist()
    # M10 and R17 are lower case in the focus, L99 is beyond it; K12 disagrees with L12
    assert m.skipped == {"wild_type_mismatch": 1, "outside_focus_columns": 3, "missing_score": 1, "duplicate": 0}
    assert "1 wild type mismatch (e.g. K12A)" in m.warning()


def test_real_dms_gives_4807_scorable_singles(blat_alignment, blat_dms):
    # DeepSequence's notebook scores N = 4807: the DMS's 4997 singles less 190 at lower-case (non-focus)
    # positions (datasets/protein/SOURCE.md)
    m = read_mutations(blat_dms, read_alignment(blat_alignment).focus, "mutant", "2500")
    assert len(m.mutants) == 4807
    assert m.skipped == {"wild_type_mismatch": 0, "outside_focus_columns": 190, "missing_score": 0, "duplicate": 0}
    assert (m.n_mutations == 1).all()


def test_missing_score_column(tmp_path, focus):
    path = csv(tmp_path, "mutant,fit\nK11A,0.5\n")
    with pytest.raises(UserError) as err:
        read_mutations(path, focus, "mutant", "2500")
    assert str(path) in err.value.line() and "score column '2500' is missing" in err.value.line()
    assert "the columns are mutant, fit" in err.value.line()


def test_unparsable_mutant_names_the_row(tmp_path, focus):
    path = csv(tmp_path, "mutant,fit\nK11A,0.5\nK11-A,0.2\n")
    with pytest.raises(UserError, match=r"row 3: mutant 'K11-A' does not parse"):
        read_mutations(path, focus, "mutant", "fit")


def test_all_mismatched_is_an_error_with_counts(tmp_path, focus):
    path = csv(tmp_path, "mutant,fit\nA11V,0.5\nQ12A,0.2\n")
    with pytest.raises(UserError, match="no scorable mutants in 2 rows .wild_type_mismatch: 2.*starts at residue 10"):
        read_mutations(path, focus, "mutant", "fit")
