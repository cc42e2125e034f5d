"""The report describes the model that was trained: its text follows the saved config, not a typed sentence."""
from __future__ import annotations

from latente.domains.anomaly.model import model_config
from latente.domains.anomaly.params import DetectorConfig, EvaluateParams
from latente.domains.anomaly.report import method_labels, model_description


def test_default_model_is_described_from_its_config():
    config = DetectorConfig()
    network = model_config(config.model, sensors=8, window=config.window)
    text = model_description(network, (8, 15), config)  # 60 rows halved by two stride-2 convolutions: 15 steps
    assert "`conv_ae` from `shared/` (1-D, one input channel per sensor) over windows of 60 rows" in text
    assert "convolutions 8→32→16 channels (kernel 7, strides 2·2, RELU, dropout 0.2), a 8-channel code of 15 steps" in text
    assert ("AdamW (weight decay 0) at a constant learning rate 0.001, batch 32, at most 100 epochs with early stopping "
            "(patience 5) on the last 10 % of the training windows; seed 0, device `cpu`.") in text


def test_changed_params_change_the_description():
    config = DetectorConfig.model_validate({
        "window": 30, "val_fraction": 0.2,
        "model": {"name": "dense_vae", "hidden": [64, 16], "latent_dim": 4, "beta": 0.5, "act": "RELU"},
        "trainer": {"epochs": 7, "batch_size": 8, "scheduler": "cosine", "grad_clip": 1.0, "patience": None},
    })
    network = model_config(config.model, sensors=3, window=config.window)
    text = model_description(network, (4,), config)
    assert "`dense_vae`" in text and "over windows of 30 rows: dense layers 3×30→64→16 (RELU), a 4-unit code" in text
    assert "variational, β = 0.5" in text
    assert "cosine-decayed learning rate" in text and "batch 8, at most 7 epochs" in text
    assert "the best epoch on the last 20 % of the training windows kept, gradients clipped at norm 1" in text
    labels = method_labels(network, config.model_copy(update={"sensor_weights": "uniform"}),
                           EvaluateParams.model_validate({"pca_t2q": {"q_limit": "jackson_mudholkar"}}), None, None)
    assert labels["model"] == "latente `dense_vae` (SKAB's uniform sensor weights)"
    assert labels["pca_t2q"] == "PCA T²+Q (Jackson–Mudholkar Q limit)" and "model_global" not in labels
