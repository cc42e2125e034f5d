"""Tiny params for every domain, in one place: the tests' stage runs, the site's fixture runs and the
end-to-end `dvc repro` tests all shrink a domain with these, so a tiny model is declared once.

Each entry is `{stage: params}` in the shape of `params.yaml`'s `<domain>.<stage>` sections.
"""

# Speech: 3 speakers × 8 takes of each digit (240 clips), leave-one-speaker-out with 3 tiny supervised
# autoencoders of 2 epochs (one speed-perturbed noisy copy per clip), scored clean and at 10 dB.
# `fetch.source` and `prepare.dataset.root` name the test's folders.
SPEECH = {
    "fetch": {"speakers": ["jackson", "nicolas", "theo"], "takes": 8},
    "train": {
        "test_speakers": ["theo"], "loso": True, "augment": {"copies": 1, "speed": [0.9, 1.1], "shift": 2},
        "supervision": {"digit_weight": 10.0, "invariance_weight": 1.0},
        "model": {"name": "conv_ae", "spatial_dims": 2, "channels": [8, 16], "strides": [2, 2], "latent_dim": 16},
        "trainer": {"epochs": 2, "batch_size": 32, "threads": 1, "device": "cpu", "seed": 3},
    },
    "evaluate": {"snr_db": [10.0], "examples": 2, "interpolation": {"start": "3_theo_0.wav", "end": "8_theo_0.wav", "steps": 5},
                 "ablation": {"seed4": {"trainer": {"seed": 4}}, "voice": {"features": {"align": "voice"}, "augment": {"shift": 0}}}},
}

# MRI: a 2-level 8-channel residual 2.5-D denoiser trained 3 epochs on 480 patches of 32×32, scored at
# 3 % and 9 % Rician noise on the 4 central axial slices. Every key of each section is given.
MRI = {
    "prepare": {
        "train_volumes": ["colin27_ch2_t1.nii.gz"], "train_masks": ["colin27_ch2bet_t1_brain.nii.gz"],
        "test_volumes": ["mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", "MR_Gd.nii.gz"], "min_brain_fraction": 0.05,
        "val_fraction": 0.2,
    },
    "train": {
        "model": {"name": "conv_dae", "spatial_dims": 2, "in_channels": 3, "out_channels": 1, "channels": [8, 8], "strides": [2, 1],
                  "latent_channels": 8, "residual": True, "corruption": {"kind": "rician", "level": [0.01, 0.1]}},
        "patches": {"size": 32, "per_epoch": 480, "brain_only": 0.5, "foreground": 0.9, "gain": [0.5, 1.0], "blur_share": 0.5},
        "trainer": {"epochs": 3, "batch_size": 16, "lr": 0.003, "ema_decay": None, "patience": None, "seed": 0, "device": "cpu", "threads": 1},
    },
    "evaluate": {"noise": [0.03, 0.09], "kind": "rician", "seed": 0, "slices": 4, "mask_threshold": 0.05,
                 "methods": ["noisy", "gaussian", "nlm", "bm3d"], "figure_noise": 0.03, "baseline_sigma": ["total", "added"],
                 "adapt_volumes": ["MR_Gd.nii.gz"], "adapt": {"steps": 4, "batch_size": 2, "patch_size": 32, "val_patches": 4, "check_every": 2},
                 "explorer": {"size": 16, "stride": 16, "head": 0.5}},
}

# Protein: a 96 / 6 / 32-64 family VAE with a small sparse decoder, trained 3 epochs on a cropped copy of the
# BLAT_ECOLX alignment (`prepare.alignment` names the copy the test writes into its raw folder), scored on
# the whole Stiffler DMS with 4 ELBO samples; 50 generated sequences, 3 latent clusters.
PROTEIN = {
    "prepare": {"alignment": "blat_cropped.a2m", "focus": None, "theta": 0.2},
    "train": {
        "model": {"name": "dense_vae", "recon_loss": "categorical", "hidden": [96], "latent_dim": 6,
                  "decoder_hidden": [32, 64], "act": "RELU"},
        "decoder": {"sparse": True, "patterns": 4, "dictionary": 8},
        "trainer": {"epochs": 3, "batch_size": 64, "lr": 0.003, "scheduler": "constant", "patience": None,
                    "device": "cpu", "threads": 1, "seed": 0},
        "val_fraction": 0.1,
        "members": 2,
        "replicates": 2,
    },
    "evaluate": {"mutations": "BLAT_ECOLX_Ranganathan2015.csv", "mutant_column": "mutant", "score_column": "2500",
                 "samples": 4, "pseudocount": 1.0,
                 "generation": {"sequences": 50, "temperatures": [1.0, 0.7], "latent_scales": [1.0, 0.5]},
                 "depth": {"sequences": [300], "members": 1, "seed": 0},
                 "calibration": {"samples": [4, 16], "repeats": 3, "mutants": 30},
                 "clusters": 3, "seed": 0,
                 "interpolation": {"start": "BLAT_ECOLX/24-286", "end": "up|Q9L5C7|Q9L5C7_ECOLX/32-289", "steps": 5}},
}

# ECG: one codec "A" (2 conv layers, 4 latent channels, a 4-channel hyperprior) trained 2 epochs on 90 s of records
# 105 and 116, scored on the first 60 s of record 100. `fetch.source` lists the files; tests point it
# at the mirror (kind local).
ECG = {
    "fetch": {"source": {"files": ["records/100.hea", "records/100.dat", "records/100.atr", "records/105.hea",
                                   "records/105.dat", "records/116.hea", "records/116.dat"]}},
    "prepare": {"train_records": ["105", "116"], "lead": "0", "validation_fraction": 0.2, "seconds": 90},
    "train": {
        "window": 256, "hop": 64,
        "model": {"name": "conv_ae", "channels": [8, 8], "strides": [2, 4], "kernel_size": 5, "latent_channels": 4, "norm": None},
        "hyperprior": {"channels": 4, "hidden": 8},
        "variants": {"A": {"rate_weight": 0.01}},
        "trainer": {"epochs": 3, "batch_size": 32, "lr": 0.01, "patience": None, "seed": 0, "device": "cpu", "threads": 1},
    },
    "evaluate": {
        "test_records": ["100"], "lead": "MLII", "seconds": 60,
        "operating_points": {"A": {"model": "A", "cr": 8}},
        "rate_distortion": [{"model": "A", "shift": s} for s in (-4, 0, 4, 8)],
        "wavelet_target_crs": [32.25], "wavelet_target_prd": 2.73,
        "explorer": {"operating_point": "A", "beats_per_record": 40, "before_s": 0.25, "after_s": 0.45},
    },
}

# Anomaly: SKAB's per-file protocol on valve1/0, valve1/8 and valve2/2 with a conv AE of 8-8 channels over the
# default 60-row windows, 3 epochs per file, one robustness seed and a 1-epoch global model on the anomaly-free
# run. `fetch.source` lists the files; tests point it at the mirror (kind local). The detector's model and
# trainer also serve the synthetic-data tests, with a shorter window.
ANOMALY = {
    "fetch": {"source": {"files": ["skab/valve1/0.csv", "skab/valve1/8.csv", "skab/valve2/2.csv",
                                   "skab/anomaly-free/anomaly-free.csv"]}},
    "prepare": {"benchmark": ["skab/valve1", "skab/valve2"], "normal_file": "skab/anomaly-free/anomaly-free.csv"},
    "train": {
        "train_rows": 400,
        "detector": {
            "model": {"name": "conv_ae", "channels": [8, 8], "strides": [2, 2], "kernel_size": 3, "latent_channels": 2,
                      "act": "RELU", "norm": None},
            "trainer": {"epochs": 3, "batch_size": 16, "lr": 0.001, "scheduler": "constant", "grad_clip": None,
                        "patience": 5, "seed": 0, "device": "cpu", "bf16": False},
        },
        "global_epochs": 1, "robustness_seeds": [1],
    },
    "evaluate": {"plot_files": ["skab/valve1/8.csv", "skab/valve2/2.csv"], "explain_file": "skab/valve1/0.csv",
                 "explorer_file": "skab/valve1/8.csv"},
}
