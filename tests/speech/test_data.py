"""Labelled datasets, speaker-disjoint splits and the prepared folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import torch

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import (
    audio_files, fold_name, held_out_mask, labelled_folder, load_audio, load_dataset, parse_name, prepare, read_prepared, speaker_folds,
    validation_split,
)
from latente.domains.speech.params import FSDD_PATTERN, DatasetParams, FeatureParams, PrepareParams
from latente.shared.errors import UserError
from latente.shared.params import validate
from latente.shared.stage import DomainPaths


def test_fsdd_folder_labels(mirror):
    items = labelled_folder(mirror / DOMAIN / "recordings", FSDD_PATTERN)
    assert len(items) == 2500  # FSDD v1.0.10 as fetched: 5 speakers × 10 digits × 50 takes
    speakers = [u.speaker for u in items]
    assert sorted(set(speakers)) == ["jackson", "lucas", "nicolas", "theo", "yweweler"]
    assert all(speakers.count(s) == 500 for s in set(speakers))
    assert sorted(set(u.label for u in items)) == [str(d) for d in range(10)]
    first = next(u for u in items if u.path.name == "7_theo_31.wav")
    assert (first.label, first.speaker) == ("7", "theo")


def test_name_outside_the_pattern_names_file_and_pattern():
    with pytest.raises(UserError) as err:
        parse_name(Path("/data/seven-theo.wav"), FSDD_PATTERN)
    line = err.value.line()
    assert "seven-theo.wav" in line and FSDD_PATTERN in line


def test_pattern_needs_label_and_speaker_groups():
    with pytest.raises(UserError) as err:
        validate(DatasetParams, {"pattern": r"(?P<label>\d)_.*\.wav"}, f"{DOMAIN}.prepare.dataset")
    assert f"{DOMAIN}.prepare.dataset.pattern" in err.value.line() and "speaker" in err.value.line()
    with pytest.raises(UserError, match="not a valid regular expression"):
        validate(DatasetParams, {"pattern": "(?P<label>"}, f"{DOMAIN}.prepare.dataset")


def test_labels_from_csv(tmp_path, mirror):
    src = mirror / DOMAIN / "recordings"
    for name in ("1_jackson_0.wav", "2_theo_0.wav"):
        shutil.copy(src / name, tmp_path / f"clip_{name}")
    table = tmp_path / "labels.csv"
    table.write_text("file,label,speaker\nclip_1_jackson_0.wav,one,jackson\nclip_2_theo_0.wav,two,theo\n")
    items = labelled_folder(tmp_path, FSDD_PATTERN, table)
    assert [(u.path.name, u.label, u.speaker) for u in items] == [("clip_1_jackson_0.wav", "one", "jackson"), ("clip_2_theo_0.wav", "two", "theo")]
    table.write_text("file,label\nclip_1_jackson_0.wav,one\n")
    with pytest.raises(UserError, match="missing speaker"):
        labelled_folder(tmp_path, FSDD_PATTERN, table)
    table.write_text("file,label,speaker\nmissing.wav,one,jackson\n")
    with pytest.raises(UserError, match="line 2"):
        labelled_folder(tmp_path, FSDD_PATTERN, table)


def test_speech_commands_layout(tmp_path, mirror):
    src = mirror / DOMAIN / "recordings"
    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    for word, speaker, name in (("yes", "0a7c2a8d", "1_jackson_0.wav"), ("no", "0a7c2a8d", "2_jackson_0.wav"), ("yes", "1b4c9b89", "3_theo_0.wav")):
        (base / word).mkdir(parents=True, exist_ok=True)
        shutil.copy(src / name, base / word / f"{speaker}_nohash_0.wav")
    (base / "_background_noise_").mkdir()
    shutil.copy(src / "4_theo_0.wav", base / "_background_noise_" / "white_noise.wav")
    items = load_dataset(DatasetParams(kind="speechcommands", root=str(tmp_path)))
    assert sorted((u.label, u.speaker) for u in items) == [("no", "0a7c2a8d"), ("yes", "0a7c2a8d"), ("yes", "1b4c9b89")]
    only_yes = load_dataset(DatasetParams(kind="speechcommands", root=str(tmp_path), labels=("yes",)))
    assert {u.label for u in only_yes} == {"yes"} and all(u.path.is_file() for u in only_yes)
    with pytest.raises(UserError, match="no Speech Commands data"):
        load_dataset(DatasetParams(kind="speechcommands", root=str(tmp_path / "elsewhere")))


def test_audio_files_expand_folders(tmp_path, mirror):
    (tmp_path / "sub").mkdir()
    shutil.copy(mirror / DOMAIN / "recordings" / "0_theo_0.wav", tmp_path / "sub" / "a.WAV")
    (tmp_path / "readme.txt").write_text("x")
    assert audio_files([tmp_path]) == [tmp_path / "sub" / "a.WAV"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .wav files"):
        audio_files([tmp_path / "empty"])
    with pytest.raises(UserError, match="file not found"):
        audio_files([tmp_path / "nope.wav"])


SPEAKERS = ["jackson"] * 3 + ["lucas"] * 2 + ["nicolas"] * 4 + ["theo"] * 3 + ["yweweler"] * 2


def test_loso_folds_are_speaker_disjoint_and_cover_everyone():
    folds = speaker_folds(SPEAKERS, ("theo",), loso=True)
    assert folds == [("theo",), ("jackson",), ("lucas",), ("nicolas",), ("yweweler",)]
    tested = np.zeros(len(SPEAKERS), dtype=int)
    for fold in folds:
        test = held_out_mask(SPEAKERS, fold)
        train_speakers = {s for s, t in zip(SPEAKERS, test) if not t}
        test_speakers = {s for s, t in zip(SPEAKERS, test) if t}
        assert train_speakers.isdisjoint(test_speakers) and train_speakers | test_speakers == set(SPEAKERS)
        fit, val = validation_split(np.flatnonzero(~test), 0.25, seed=0)
        assert set(fit).isdisjoint(val) and set(fit) | set(val) == set(np.flatnonzero(~test))
        assert not test[fit].any() and not test[val].any()
        tested += test
    assert (tested == 1).all()  # every clip is scored exactly once


def test_single_holdout_and_bad_speakers():
    assert speaker_folds(SPEAKERS, ("lucas", "theo"), loso=False) == [("lucas", "theo")]
    assert fold_name(("lucas", "theo")) == "lucas+theo"
    with pytest.raises(UserError, match="no recordings of george"):
        speaker_folds(SPEAKERS, ("george",), loso=False)
    with pytest.raises(UserError, match="nothing is left to train on"):
        speaker_folds(["a", "b"], ("a", "b"), loso=False)


def test_prepare_stage_keeps_every_recording_at_its_own_length(tmp_path, mirror):
    names = ["0_jackson_0.wav", "1_theo_3.wav", "9_nicolas_49.wav"]
    source = tmp_path / "recordings"
    source.mkdir()
    for name in names:
        shutil.copy(mirror / DOMAIN / "recordings" / name, source / name)
    paths = DomainPaths(DOMAIN, tmp_path)
    features = FeatureParams(duration=0.5)
    prepare(PrepareParams(dataset=DatasetParams(root=str(source)), features=features), paths)
    prepared = read_prepared(paths.prepared)
    assert prepared.corpus.names == names and prepared.features == features and prepared.label_pattern == FSDD_PATTERN
    assert prepared.corpus.labels.tolist() == ["0", "1", "9"] and prepared.corpus.speakers.tolist() == ["jackson", "theo", "nicolas"]
    for name, samples in zip(names, prepared.corpus.recordings):
        assert torch.equal(samples, load_audio(source / name, features.sample_rate)[0])  # not padded or cropped
    with pytest.raises(UserError, match=f"prepare@{DOMAIN}"):
        read_prepared(tmp_path / "elsewhere")
