"""The design ablations: arms are the trained params with some keys changed, trained and scored without the test speakers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tiny import SPEECH

from latente.domains.speech import DOMAIN
from latente.domains.speech.data import Corpus
from latente.domains.speech.evaluation import ablation, ablation_settings, arm_settings, without_speakers
from latente.domains.speech.params import FSDD_PATTERN, EvaluateParams, FeatureParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.params import validate

DESIGN = validate(TrainParams, SPEECH["train"], f"{DOMAIN}.train")


def test_an_arm_changes_only_the_keys_it_names():
    train, features = arm_settings(DESIGN, FeatureParams(), {"augment": {"shift": 0}, "features": {"align": "voice"}}, "speech.evaluate.ablation.a")
    assert train.augment.shift == 0 and train.augment.speed == (0.9, 1.1) and train.augment.copies == 1  # the rest of the section stays
    assert train.model_dump(exclude={"augment"}) == DESIGN.model_dump(exclude={"augment"})
    assert features.align == "voice" and features.model_dump(exclude={"align"}) == FeatureParams().model_dump(exclude={"align"})
    assert DESIGN.augment.shift == 2  # the design itself is left as it was
    seed, _ = arm_settings(DESIGN, FeatureParams(), {"trainer": {"seed": 9}}, "speech.evaluate.ablation.s")
    assert seed.trainer.seed == 9 and seed.trainer.epochs == DESIGN.trainer.epochs


@pytest.mark.parametrize("changes, key, problem", [
    ({"augment": {"shfit": 0}}, "speech.evaluate.ablation.a.augment.shfit", "unknown key"),
    ({"trainer": {"epochs": "many"}}, "speech.evaluate.ablation.a.trainer.epochs", "valid integer"),
    ({"features": {"align": "left"}}, "speech.evaluate.ablation.a.features.align", "'center', 'start' or 'voice'"),
    ({"features": {"voice_smoothing": 4}}, "speech.evaluate.ablation.a.features.voice_smoothing", "must be odd"),
])
def test_a_bad_arm_is_named_by_its_key(changes, key, problem):
    with pytest.raises(UserError, match=problem) as error:
        ablation_settings(DESIGN, FeatureParams(), EvaluateParams(ablation={"a": changes}))
    assert f"params.yaml: {key}:" in str(error.value)


def test_arm_names_and_sections_are_checked_with_the_params():
    for bad, problem in ((({"design": {"augment": {"shift": 0}}}), "'design' is the unchanged model"),
                         ({"a": {"augment": {}}}, "changes nothing"), ({"a": {"optimizer": {"lr": 1}}}, "Input should be 'augment'")):
        with pytest.raises(ValueError, match=problem):
            EvaluateParams(ablation=bad)


def test_the_test_speakers_never_enter_an_arm(three_speakers):
    """theo's recordings poisoned with NaN change nothing: every arm is what it is on a corpus that never held theo."""
    corpus = three_speakers
    poisoned = Corpus(corpus.names, [torch.full_like(r, float("nan")) if s == "theo" else r for r, s in zip(corpus.recordings, corpus.speakers)],
                      corpus.labels, corpus.speakers)
    params = EvaluateParams(snr_db=(10.0,), ablation={"no_shift": {"augment": {"shift": 0}}})
    settings = ablation_settings(DESIGN, FeatureParams(), params)
    arms = ablation(poisoned, settings, FSDD_PATTERN, params)
    again = ablation(without_speakers(corpus, ["theo"]), settings, FSDD_PATTERN, params)
    assert [a.name for a in arms] == ["design", "no_shift"] and arms[1].changes == {"augment": {"shift": 0}}
    for arm, other in zip(arms, again):
        assert arm.comparison.speakers() == ["lucas", "yweweler"]
        assert arm.comparison.per_speaker == other.comparison.per_speaker
        assert all(np.isfinite(m["accuracy"]) for m in arm.comparison.per_speaker.values())


def test_an_ablation_needs_two_speakers_besides_the_test_speakers(three_speakers):
    two = without_speakers(three_speakers, ["lucas"])
    params = EvaluateParams(ablation={"no_shift": {"augment": {"shift": 0}}})
    with pytest.raises(UserError, match="needs two or more speakers besides theo; the corpus has 1"):
        ablation(two, ablation_settings(DESIGN, FeatureParams(), params), FSDD_PATTERN, params)
