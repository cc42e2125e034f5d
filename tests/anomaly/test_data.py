"""The reader: SKAB files, any multivariate CSV, and each data problem handled and reported."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from latente.domains.anomaly.data import Series, read_series, stream_series
from latente.domains.anomaly.params import ReaderConfig
from latente.shared.errors import UserError

SKAB = ReaderConfig()
HEADER = "datetime;a;b;anomaly;changepoint\n"


def write(tmp_path: Path, text: str, name: str = "x.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(*lines: str) -> str:
    return HEADER + "".join(line + "\n" for line in lines)


def streamed(path: Path, reader: ReaderConfig, sensors: list[str], step: float | None, chunk: int) -> tuple[Series, object]:
    chunks, report = stream_series(path, reader, sensors, step, chunk)
    parts = list(chunks)
    values = np.concatenate([p.values for p in parts])
    return Series(path, sensors, values, np.concatenate([p.rows for p in parts]), None, None, None, report), report


def test_reads_a_skab_file(mirror):
    series = read_series(mirror / "anomaly/skab/valve1/0.csv", SKAB, labels_required=True)
    assert series.sensors == ["Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
                              "Thermocouple", "Voltage", "Volume Flow RateRMS"]
    assert series.values.shape == (1147, 8)
    assert int(series.labels.sum()) == 401 and int(series.changepoints.sum()) == 4
    assert series.values[0, 0] == pytest.approx(0.0265878) and series.values[0, 7] == pytest.approx(32.0)
    assert series.report.step_s == 1.0
    assert series.report.gaps == 53 and series.report.largest_gap_s == 2.0  # SKAB logs some 2 s steps
    assert series.rows[0] == 1 and series.rows[-1] == 1147


def test_any_multivariate_csv(tmp_path):
    path = write(tmp_path, "id,t1,t2,status\nA,1.5,2,ok\nB,2.5,3,ok\nC,3.5,4,ok\n")
    reader = ReaderConfig(sep=",", timestamp=None, label=None, changepoint=None)
    series = read_series(path, reader)
    assert series.sensors == ["t1", "t2"]  # text columns are not sensors
    np.testing.assert_array_equal(series.values, [[1.5, 2], [2.5, 3], [3.5, 4]])
    assert series.timestamps is None and series.labels is None
    assert read_series(path, reader.model_copy(update={"sensors": ("t2",)})).values[:, 0].tolist() == [2, 3, 4]


def test_unsorted_timestamps_are_sorted_whole_and_refused_streaming(tmp_path):
    path = write(tmp_path, rows("2020-01-01 00:00:02;3;30;0;0", "2020-01-01 00:00:00;1;10;0;0",
                                "2020-01-01 00:00:01;2;20;0;0", "2020-01-01 00:00:03;4;40;0;0"))
    series = read_series(path, SKAB)
    assert series.values[:, 0].tolist() == [1, 2, 3, 4]
    assert series.rows.tolist() == [2, 3, 1, 4]  # file rows, so output can be traced back
    assert series.report.unsorted_rows == 3 and "3 rows out of timestamp order (sorted)" in series.report.problems("ffill")
    with pytest.raises(UserError, match=r"x.csv: row 2: timestamps go backwards here"):
        streamed(path, SKAB, ["a", "b"], 1.0, 2)


def test_duplicate_timestamps_keep_the_first_row(tmp_path):
    path = write(tmp_path, rows("2020-01-01 00:00:00;1;10;0;0", "2020-01-01 00:00:01;2;20;0;0",
                                "2020-01-01 00:00:01;9;90;0;0", "2020-01-01 00:00:02;3;30;0;0"))
    series = read_series(path, SKAB)
    assert series.values[:, 0].tolist() == [1, 2, 3] and series.report.duplicate_rows == 1
    stream, report = streamed(path, SKAB, ["a", "b"], 1.0, 2)  # the duplicate straddles two chunks
    assert stream.values[:, 0].tolist() == [1, 2, 3] and report.duplicate_rows == 1


def test_gaps_are_counted(tmp_path):
    path = write(tmp_path, rows(*(f"2020-01-01 00:00:{s:02d};{s};{s};0;0" for s in (0, 1, 2, 3, 10, 11, 12, 30))))
    series = read_series(path, SKAB)
    assert series.report.step_s == 1.0 and series.report.gaps == 2 and series.report.largest_gap_s == 18.0
    assert len(series) == 8  # kept as they are


NAN_ROWS = rows("2020-01-01 00:00:00;;10;0;0", "2020-01-01 00:00:01;2;20;0;0", "2020-01-01 00:00:02;nan;30;0;0",
                "2020-01-01 00:00:03;4;;0;0", "2020-01-01 00:00:04;5;50;0;0")


def test_nan_policy_ffill(tmp_path):
    path = write(tmp_path, NAN_ROWS)
    series = read_series(path, SKAB)
    # row 1 has nothing to carry and is dropped; row 3's a and row 4's b take the last values
    np.testing.assert_array_equal(series.values, [[2, 20], [2, 30], [4, 30], [5, 50]])
    assert series.report.nan_cells == 3 and series.report.nan_rows_dropped == 1
    for chunk in (1, 2):
        stream, _ = streamed(path, SKAB, ["a", "b"], 1.0, chunk)
        np.testing.assert_array_equal(stream.values, series.values)


def test_nan_policy_drop_and_error(tmp_path):
    path = write(tmp_path, NAN_ROWS)
    dropped = read_series(path, SKAB.model_copy(update={"nan_policy": "drop"}))
    np.testing.assert_array_equal(dropped.values, [[2, 20], [5, 50]])
    with pytest.raises(UserError, match=r"x.csv: column 'a', row 1: missing value \(NaN\)"):
        read_series(path, SKAB.model_copy(update={"nan_policy": "error"}))


@pytest.mark.parametrize("text, message", [
    ("", r"x.csv: the file is empty"),
    (HEADER, r"x.csv: has a header but no data rows"),
    (rows("2020-01-01 00:00:00;1;10;0;0", "2020-01-01 00:00:01;1,5;20;0;0"), r"x.csv: column 'a', row 2: '1,5' is not a number"),
    ("datetime;a;anomaly;changepoint\n2020-01-01 00:00:00;1;0;0\n", None),
    (rows("2020-01-01 00:00:00;1;10;2;0"), r"x.csv: column 'anomaly', row 1: label '2' is not 0 or 1"),
    (rows("yesterday;1;10;0;0"), r"x.csv: column 'datetime', row 1: 'yesterday' is not a timestamp"),
])
def test_bad_files_name_the_file_column_and_row(tmp_path, text, message):
    path = write(tmp_path, text)
    if message is None:
        assert read_series(path, SKAB).sensors == ["a"]
        return
    with pytest.raises(UserError, match=message):
        read_series(path, SKAB, labels_required=True)


def test_missing_columns_are_named(tmp_path):
    path = write(tmp_path, "datetime;a;b\n2020-01-01 00:00:00;1;2\n")
    with pytest.raises(UserError, match=r"x.csv: missing columns 'anomaly', 'changepoint' — the file has: datetime, a, b"):
        read_series(path, SKAB, labels_required=True)
    assert read_series(path, SKAB).labels is None  # labels are optional unless evaluating
    with pytest.raises(UserError, match=r"missing column 'c'"):
        read_series(path, SKAB.model_copy(update={"sensors": ("a", "c")}))
