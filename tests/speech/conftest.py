"""Recordings the speech training and ablation tests share."""
from __future__ import annotations

import pytest

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import Corpus, labelled_folder
from latente.domains.speech.params import FSDD_PATTERN


@pytest.fixture(scope="session")
def three_speakers(mirror) -> Corpus:
    """Takes 0–2 of every digit by lucas, theo and yweweler (90 clips at 8 kHz): theo plays the held-out speaker."""
    items = [u for u in labelled_folder(mirror / DOMAIN / "recordings", FSDD_PATTERN)
             if u.speaker in ("lucas", "theo", "yweweler") and int(u.path.stem.split("_")[2]) < 3]
    return Corpus.read(items, 8000)
