"""The evaluate stage's outputs beyond metrics.json: plot data, figures and report.md.

The latent view is a PCA of the posterior means coloured by sequence cluster: the headers of
UniProt-derived alignments carry at most a species mnemonic (`..._ECOLX`, `..._9BURK`), not a
taxonomy with a few groups to colour by, so the colours are k-means clusters of the sequences
themselves; the mnemonic is kept as a column for other uses.

Published figures and targets come from `references.protein` of params.yaml; the method is
described from the saved model folder, so the report names the model that was trained.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from latente.domains.protein import DOMAIN
from latente.domains.protein.data import AMINO_ACIDS, Alignment, Focus, MutationSet, WeightedAlignment, decode, identities, one_hot
from latente.domains.protein.metrics import spearman
from latente.domains.protein.model import FamilyEnsemble, latent_means, most_probable_sequences
from latente.domains.protein.params import EvaluateParams, TrainParams
from latente.shared.errors import UserError
from latente.shared.io import write_text
from latente.shared.models import LoadedModel
from latente.shared.models.autoencoders import VariationalAutoencoder
from latente.shared.params import InterpolationParams
from latente.shared.report import (
    References, check_target, figure_backend, load_references, markdown_table, save_figure, target_table, write_plot_csv,
)
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

if TYPE_CHECKING:
    from latente.domains.protein.evaluation import Replicate, Scores

SPECIES = re.compile(r"_([0-9A-Z]{3,5})(?:/\d+-\d+)?$")
EXAMPLES = 5  # generated sequences printed in the report


def species_code(seq_id: str) -> str:
    """The UniProt species mnemonic at the end of an entry name, or '' when there is none."""
    match = SPECIES.search(seq_id)
    return match.group(1) if match else ""


def project(means: np.ndarray) -> np.ndarray:
    """[N, 2] principal components of the latent means."""
    return PCA(n_components=2, random_state=0).fit_transform(means)


def sequence_clusters(codes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means labels of the one-hot sequences, ordered so that cluster 0 is the largest."""
    k = min(k, len(codes))
    flat = one_hot(codes).reshape(len(codes), -1)
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(flat)
    order = np.argsort(-np.bincount(labels, minlength=k), kind="stable")
    return np.argsort(order)[labels]


def write_report(paths: DomainPaths, params: EvaluateParams, train: TrainParams, data: WeightedAlignment,
                 replicates: list[Replicate], mutations: MutationSet, results: Results, curve: list[dict],
                 calibration: list[dict], generation: dict, generated: np.ndarray, sweep: list[dict]) -> None:
    """plots/*.csv, figures/*.png and report.md of one evaluation."""
    a = data.alignment
    first = replicates[0]
    scores = first.scores
    points = project(latent_means(first.ensemble.first.model, a.codes))
    clusters = sequence_clusters(a.codes, params.clusters, params.seed)
    histories = [member.info["fit"]["history"] for member in first.ensemble.members]
    write_plot_csv(paths.plots / "effects.csv", [
        {"mutant": m, "dms": float(s), "model": float(p), "model_se": float(e), "site_independent": float(b)}
        for m, s, p, e, b in zip(mutations.mutants, mutations.scores, scores.model, scores.effects.se, scores.baseline)])
    write_plot_csv(paths.plots / "latent.csv", [
        {"id": i, "pc1": float(x), "pc2": float(y), "cluster": int(c), "species": species_code(i), "weight": float(w), "sequence": s}
        for i, (x, y), c, w, s in zip(a.ids, points, clusters, data.weights, a.sequences())])
    write_plot_csv(paths.plots / "entropy.csv", [
        {"position": int(pos), "natural": float(n), "generated": float(g)}
        for pos, n, g in zip(_focus_numbers(a.focus), generation["natural"]["entropy"], generation["generated"]["entropy"])])
    write_plot_csv(paths.plots / "training.csv", [
        {"member": k, "epoch": row["epoch"], **{key.replace("/", "_"): v for key, v in row.items() if key != "epoch"}}
        for k, history in enumerate(histories) for row in history])
    write_plot_csv(paths.plots / "depth.csv", curve)
    write_plot_csv(paths.plots / "calibration.csv", calibration)
    write_plot_csv(paths.plots / "generation_sweep.csv", sweep)
    _figures(paths, mutations.scores, scores, histories, points, clusters, generation, curve, calibration, replicates, mutations)
    path_lines = (interpolation(first.ensemble.first.model, a, params.interpolation, paths.figures, paths.plots)
                  if params.interpolation else [])
    write_text(paths.report, _markdown(results, data, first.ensemble, mutations, generation, params, train,
                                       decode(generated[:EXAMPLES]), load_references(DOMAIN), curve, calibration, sweep, path_lines))


def interpolation(model: VariationalAutoencoder, a: Alignment, params: InterpolationParams, figures: Path, plots: Path) -> list[str]:
    """The decoded path between two sequences' codes: per step the most probable sequence, the share of either end's
    residues it keeps, and its nearest natural sequence (plots/interpolation.csv, for the site's slider); returns the
    report's lines. Identities are counted as `data.identities` counts them: matched residues over the first sequence's non-gap columns."""
    ends = [sequence_index(a, name, f"interpolation.{end}") for end, name in (("start", params.start), ("end", params.end))]
    means = torch.from_numpy(latent_means(model, a.codes[ends]))
    t = torch.linspace(0.0, 1.0, params.steps)
    decoded = most_probable_sequences(model, (1 - t[:, None]) * means[0] + t[:, None] * means[1])
    to_start, to_end = (next(identities(a.codes[[row]], decoded))[1][0].numpy() for row in ends)
    between = float(next(identities(a.codes[[ends[0]]], a.codes[[ends[1]]]))[1][0, 0])
    nearest = [(float(best), a.ids[int(row)]) for _, block in identities(decoded, a.codes) for best, row in zip(*block.max(1))]
    rows = [{"step": step, "t": round(position, 6), "start": params.start, "end": params.end, "sequence": text,
             "identity_start": round(float(to_start[step]), 4), "identity_end": round(float(to_end[step]), 4),
             "nearest": nearest[step][1], "identity_nearest": round(nearest[step][0], 4)}
            for step, (position, text) in enumerate(zip(t.tolist(), decode(decoded)))]
    write_plot_csv(plots / "interpolation.csv", rows)
    _interpolation_figure(rows, figures / "interpolation.png")
    return [
        f"The posterior means of `{params.start}` and `{params.end}` under member 0 (the latent space above; the two share "
        f"{between:.1%} of `{params.start}`'s residues) joined by a straight line and decoded at {params.steps} evenly spaced "
        "points, each column its most probable state (`plots/interpolation.csv`; the site's slider steps through them). "
        "Identity is the share of a natural sequence's residues (its non-gap columns) that the decoded sequence matches; "
        "at t = 0 and 1 it measures how well the mode of the decoder reconstructs the two ends.\n",
        markdown_table(["step", "t", f"identity to {params.start}", f"identity to {params.end}", "nearest natural sequence", "its identity"],
                       [[r["step"], r["t"], r["identity_start"], r["identity_end"], f"`{r['nearest']}`", r["identity_nearest"]]
                        for r in rows]),
        "\n![interpolation](figures/interpolation.png)\n",
        "```\n" + "\n".join(f"t={r['t']:<5g} {r['sequence']}" for r in rows) + "\n```\n",
    ]


def sequence_index(a: Alignment, name: str, key: str) -> int:
    """The alignment row of the sequence `name`, or one error line naming the params key."""
    if name not in a.ids:
        raise UserError(f"params.yaml: {DOMAIN}.evaluate.{key}", f"no sequence with id {name!r} in the prepared alignment",
                        f"name one of its ids, e.g. {a.ids[0]}")
    return a.ids.index(name)


def _interpolation_figure(rows: list[dict], path: Path) -> None:
    figure_backend()
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.8))
    t = [r["t"] for r in rows]
    for column, label, style in (("identity_start", rows[0]["start"], "o-"), ("identity_end", rows[0]["end"], "s-"),
                                 ("identity_nearest", "nearest natural sequence", "^:")):
        ax.plot(t, [r[column] for r in rows], style, label=label)
    ax.set_xlabel("t (0 = start, 1 = end)")
    ax.set_ylabel("identity of the decoded sequence")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def _focus_numbers(focus: Focus) -> list[int]:
    return [focus.start + i for i, c in enumerate(focus.columns) if c >= 0]


def _figures(paths: DomainPaths, measured, scores: Scores, histories, points, clusters, generation, curve, calibration,
             replicates, mutations) -> None:
    figure_backend()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, values, title in ((axes[0], scores.model, f"VAE ensemble Δ{scores.bound.upper()}"),
                              (axes[1], scores.baseline, "site-independent")):
        ax.scatter(values, measured, s=3, alpha=0.4)
        ax.set_xlabel(f"predicted effect ({title})")
        ax.set_title(f"{title}: ρ = {spearman(values, measured):.3f}")
    axes[0].set_ylabel("DMS fitness score")
    save_figure(fig, paths.figures / "effects.png")

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, term in zip(axes, ("loss", "recon", "kl")):
        for k, history in enumerate(histories):
            epochs = [row["epoch"] for row in history]
            for split, style in (("train", ":"), ("val", "-")):
                ax.plot(epochs, [row[f"{split}/{term}"] for row in history], style, color=f"C{k}",
                        label=f"member {k} {split}" if term == "loss" else None)
        ax.set_title({"loss": "loss (−ELBO + prior/Neff)", "recon": "−log p(x|z)", "kl": "KL(q(z|x) ‖ p(z))"}[term])
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=6, ncol=2)
    save_figure(fig, paths.figures / "training.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    sizes = [point["sequences"] for point in curve]
    axes[0].plot(sizes, [point["model"] for point in curve], "o-", label="VAE")
    axes[0].plot(sizes, [point["site_independent"] for point in curve], "s--", label="site-independent")
    axes[0].set_xscale("log")
    axes[0].set_xlabel("sequences in the alignment (weight-drawn subsample)")
    axes[0].set_ylabel("Spearman ρ against the DMS")
    axes[0].set_title("alignment depth")
    axes[0].legend()
    members = len(replicates[0].scores.effects.members)
    for rep in replicates:
        rhos = [spearman(rep.scores.effects.members[:k].mean(0), mutations.scores) for k in range(1, members + 1)]
        axes[1].plot(range(1, members + 1), rhos, "o-", label=f"seed {rep.seed}")
    axes[1].set_xlabel("ensemble members (the first k)")
    axes[1].set_ylabel("Spearman ρ")
    axes[1].set_title("seed spread and ensemble size")
    axes[1].legend(fontsize=8)
    save_figure(fig, paths.figures / "depth_and_seeds.png")

    fig, ax = plt.subplots(figsize=(5.5, 4))
    samples = [row["samples"] for row in calibration]
    ax.loglog(samples, [row["se_stated"] for row in calibration], "o-", label="stated standard error")
    ax.loglog(samples, [row["se_observed"] for row in calibration], "s--", label="spread of repeated estimates")
    ax.set_xlabel("latent draws per sequence")
    ax.set_ylabel(f"Δ{scores.bound.upper()} error (nats)")
    ax.legend()
    save_figure(fig, paths.figures / "calibration.png")

    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=clusters, cmap="tab10", s=3, alpha=0.6)
    ax.legend(*scatter.legend_elements(), title="cluster", fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel("PC 1 of latent means (member 0)")
    ax.set_ylabel("PC 2")
    save_figure(fig, paths.figures / "latent.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 1]})
    axes[0].plot(generation["natural"]["entropy"], label="natural (weighted)", lw=1)
    axes[0].plot(generation["generated"]["entropy"], label="generated", lw=1)
    axes[0].set_xlabel("focus column")
    axes[0].set_ylabel("entropy (bits)")
    axes[0].legend()
    bins = np.linspace(0, 1, 41)
    axes[1].hist(generation["natural"]["identity"], bins=bins, alpha=0.6, label="natural (excluding itself)")
    axes[1].hist(generation["generated"]["identity"], bins=bins, alpha=0.6, label="generated")
    axes[1].set_xlabel("identity to nearest natural sequence")
    axes[1].legend(fontsize=8)
    save_figure(fig, paths.figures / "generation.png")


def _model_text(loaded: LoadedModel) -> str:
    """The trained dense_vae, from its saved config."""
    config = loaded.model.config
    assert config.input_size is not None
    decoder_hidden = config.decoder_hidden if config.decoder_hidden is not None else config.hidden[::-1]
    dropout = f", dropout {config.dropout:g} after each hidden layer" if config.dropout else ""
    beta = (f" The latent KL is weighted β = {config.beta:g} in training; both scoring bounds use β = 1."
            if config.beta != 1 else "")
    return (f"`{config.name}` (shared): one-hot [{config.in_channels}, {config.input_size[0]}] input, encoder "
            f"{'-'.join(map(str, config.hidden))}, latent {config.latent_dim}, decoder {'-'.join(map(str, decoder_hidden))}, "
            f"{config.act}{dropout}, softmax over the {config.in_channels} states ({len(AMINO_ACIDS)} amino acids and the gap) "
            f"per column; ELBO = −(recon + KL).{beta} Sequences are drawn for each epoch with probability proportional "
            "to their weight.\n")


def _decoder_text(decoder: dict) -> str:
    """The DeepSequence decoder options the weights were trained with (saved in the model's info)."""
    prior = ("a Gaussian posterior over the decoder weights (KL / Neff)" if decoder["bayesian"]
             else f"a N(0, 1) MAP prior on the decoder weights (weight {decoder['l2']}, / Neff)")
    if not decoder["sparse"]:
        return f"Trained with a plain output layer and {prior}.\n"
    dictionary = f"a dictionary of {decoder['dictionary']} patterns over the 21 states, " if decoder["dictionary"] else ""
    return (f"Trained with a DeepSequence-style decoder output layer (`domains/{DOMAIN}/model.py`): {dictionary}"
            f"sigmoid group-sparsity gates per (hidden unit mod {decoder['patterns']}, column) with a logit-normal prior "
            f"(P(on) = {decoder['gate_prior_p']}, σ = {decoder['gate_prior_sigma']}), a learned inverse temperature, and {prior}. "
            "These are a reparametrisation of the last linear layer, folded back into the plain `dense_vae` after training, "
            "so the saved folder is an ordinary shared model.\n")


def _training_text(ensemble: FamilyEnsemble, train: TrainParams, samples: int, model: dict) -> str:
    fits = [member.info["fit"] for member in ensemble.members]
    resumed = sum(1 for fit in fits if fit["resumed_from_epoch"])
    resumed_text = f" ({resumed} member(s) resumed from a checkpoint; the times are of their whole training)" if resumed else ""
    epochs = ", ".join(f"{fit['epochs_run']} (best {fit['best_epoch']})" for fit in fits)
    return (f"{len(fits)} members, each trained for {epochs} epochs on the same training sequences (validation split drawn "
            f"with the procedure's seed, {train.val_fraction:g} of the sequences held out), with seeds "
            f"{', '.join(str(member.info['seed']) for member in ensemble.members)}{resumed_text}. The procedure took "
            f"**{sum(fit['seconds'] for fit in fits) / 60:.1f} min** wall, {sum(fit['cpu_seconds'] for fit in fits) / 60:.1f} min "
            f"process CPU with {ensemble.first.info['threads']} thread(s) (wall time depends on the machine's other load); "
            f"scoring {model['n']} mutants × {samples} samples × {len(fits)} members took {model['seconds']:.1f} s wall.\n")


ERROR_METHOD = {  # how a member's standard error is computed, by bound (the number of draws goes in)
    "elbo": "the variance of the {} draws' paired differences mutant − wild type over the number of draws",
    "iwae": "the jackknife over the {} draws (each left out of mutant and wild type at once)",
}


def _bound_section(results: Results, params: EvaluateParams) -> list[str]:
    rows = [row for row in results.rows if row["method"] == "model" and set(row["condition"]) == {"bound"}]
    return [
        "## Which bound scores a mutant\n",
        "A mutant's score approximates log p(mutant) − log p(wild type) under the model. Each member gives two bounds on "
        "log p(x) from the same latent draws z_s ~ q(z|x): the ELBO, mean_s [log p(x|z_s)] − KL(q(z|x) ‖ p(z)), and the "
        "importance-weighted bound (IWAE, Burda et al. 2016), log mean_s [p(x|z_s) p(z_s) / q(z_s|x)], which is never below "
        "the ELBO in expectation and nears log p(x) as the draws grow, but whose estimate from a few heavy-tailed weights "
        f"is the noisier (the calibration below is of the bound that scores). `{DOMAIN}.evaluate.bound` scores with "
        f"**{params.bound.upper()}**; both rows below come from the same draws of the same procedures (mean and sd over "
        "the procedures).\n",
        markdown_table(["bound", "ρ (mean over procedures)", "sd", "procedures"],
                       [[row["condition"]["bound"].upper() + (" (scores)" if row["condition"]["bound"] == params.bound else ""),
                         row["metrics"]["spearman"], row["metrics"]["spearman_sd"], row["metrics"]["replicates"]]
                        for row in rows]),
        "",
    ]


def _ensemble_section(results: Results, train: TrainParams) -> list[str]:
    rows = sorted((row for row in results.rows if row["method"] == "model" and set(row["condition"]) == {"members"}),
                  key=lambda row: row["condition"]["members"])
    seeds = sorted((row for row in results.rows if row["method"] == "model" and set(row["condition"]) == {"seed"}),
                   key=lambda row: row["condition"]["seed"])
    return [
        "## Seeds and ensemble size\n",
        f"The procedure trains {train.members} VAEs and averages their scores (the ensemble size of DeepSequence's and "
        f"ProteinGym's ensembles, fixed before any run); it was repeated with {len(seeds)} seeds. Per ensemble size k "
        "(the first k members of each procedure), the ρ against the DMS and the validation figure: the held-out bound "
        "log mean_k exp(ELBO_k), a lower bound on the log-likelihood of the held-out sequences under the mixture of the "
        "k members (nats per sequence, weighted by sequence weight; higher is better). The DMS chose nothing here.\n",
        markdown_table(["procedure seed", "ρ"], [[row["condition"]["seed"], row["metrics"]["spearman"]] for row in seeds]),
        "",
        markdown_table(["members k", "ρ (mean over seeds)", "sd", "held-out bound (mean over seeds)"],
                       [[row["condition"]["members"], row["metrics"]["spearman"], row["metrics"]["spearman_sd"],
                         row["metrics"]["val_elbo_bound"]] for row in rows]),
        "\n![depth and seeds](figures/depth_and_seeds.png)\n",
    ]


def _depth_section(curve: list[dict], params: EvaluateParams) -> list[str]:
    helps = [point["sequences"] for point in curve if point["model"] > point["site_independent"]]
    verdict = (f"The VAE is ahead of the site-independent model from {min(helps)} sequences on"
               if helps and all(point["model"] > point["site_independent"] for point in curve if point["sequences"] >= min(helps))
               else "The VAE is not ahead at every depth: see the table")
    return [
        "## Alignment depth: a shallow family\n",
        f"Subsamples of this alignment stand for shallow families: the focus plus sequences drawn without replacement with "
        f"probability proportional to their weight (seed {params.depth.seed}), reweighed afresh. Each depth runs the "
        f"procedure with {params.depth.members} member(s), with an epoch repeating the training set so that it takes as "
        "many optimiser steps as the full alignment; the largest depth is the full alignment (the first members of the "
        f"headline ensemble). {verdict}.\n",
        markdown_table(["sequences", "Neff", "ρ VAE", "ρ site-independent", "VAE − site-independent", "epoch repeats"],
                       [[p["sequences"], p["neff"], p["model"], p["site_independent"], p["model"] - p["site_independent"],
                         p["repeat"]] for p in curve]),
        "",
    ]


def _calibration_section(calibration: list[dict], params: EvaluateParams, model: dict) -> list[str]:
    ratios = [row["ratio"] for row in calibration]
    shrink = all(later[key] < earlier[key] for earlier, later in zip(calibration, calibration[1:])
                 for key in ("se_stated", "se_observed"))
    trend = "both shrink at every step as the samples grow" if shrink else "they do not both shrink at every step"
    return [
        "## Uncertainty of each score\n",
        f"Every score carries a Monte Carlo standard error: per member, {ERROR_METHOD[params.bound].format(model['samples'])}; "
        "for the ensemble, √(Σ_k SE_k²) / K (`plots/effects.csv`, "
        f"`latente {DOMAIN} score --out`; median here {model['se_median']:.3g} nats). Calibration: "
        f"{params.calibration.repeats} independent estimates of {params.calibration.mutants} mutants per number of samples; "
        "the stated error (root mean square) against the spread of the estimates (root mean square of their standard "
        f"deviation). Observed / stated ranges from {min(ratios):.2f} to {max(ratios):.2f}; {trend}.\n",
        markdown_table(["samples", "stated SE", "observed spread", "observed / stated"],
                       [[r["samples"], r["se_stated"], r["se_observed"], r["ratio"]] for r in calibration]),
        "\n![calibration](figures/calibration.png)\n",
    ]


def _sweep_section(sweep: list[dict]) -> list[str]:
    generated = [row for row in sweep if row["temperature"] is not None]
    natural = next(row for row in sweep if row["temperature"] is None)
    best = max(generated, key=lambda row: row["pair_r"])
    return [
        "Temperature and latent-scale sweep (`latente protein sample --temperature T --latent-scale S`): pair r is the "
        "Pearson correlation of the pair covariances f_ij(a,b) − f_i(a)f_j(b) over all column pairs with the natural "
        "family's, site r that of the single-column frequencies. The natural row is as many natural sequences drawn by "
        f"weight. Closest pair statistics: temperature {best['temperature']:g}, latent scale {best['latent_scale']:g}.\n",
        markdown_table(["temperature", "latent scale", "identity to nearest natural", "entropy (bits)", "gap fraction",
                        "site r", "pair r"],
                       [[row["temperature"], row["latent_scale"], row["identity_nearest"], row["entropy_bits"],
                         row["gap_fraction"], row["site_r"], row["pair_r"]] for row in generated]
                       + [["natural", "", natural["identity_nearest"], natural["entropy_bits"], natural["gap_fraction"],
                           natural["site_r"], natural["pair_r"]]]),
        "",
    ]


def _literature(references: References) -> list[str]:
    """Published Spearman ρ beside this run, each with the protocol that makes it comparable or not."""
    if not references.anchors:
        return []
    return [
        "Published figures (`references` of params.yaml):\n",
        markdown_table(["published", "ρ", "protocol"],
                       [[anchor.label, anchor.values.get("spearman"), anchor.protocol] for anchor in references.anchors]),
    ]


def _markdown(results: Results, data: WeightedAlignment, ensemble: FamilyEnsemble, mutations: MutationSet, generation: dict,
              params: EvaluateParams, train: TrainParams, examples: list[str], references: References, curve: list[dict],
              calibration: list[dict], sweep: list[dict], path_lines: list[str]) -> str:
    info = ensemble.first.info
    model, base = results.find("model"), results.find("site_independent")
    gen, nat = generation["generated"]["metrics"], generation["natural"]["metrics"]
    a = data.alignment
    g = params.generation
    skipped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in mutations.skipped.items() if n) or "none"
    lines = [
        f"# Family VAE on {a.focus.name}: mutation effects and generation\n",
        f"Alignment `{a.source}`: **{a.shape[0]} sequences × {a.shape[1]} focus columns** "
        f"({a.n_removed} removed for non-standard residues). Sequence weights 1 / #neighbours with identity > "
        f"{1 - data.theta:.2f} (θ = {data.theta}): **Neff = {data.neff:.1f}**.\n",
        f"DMS `{params.mutations}`, score column `{params.score_column}`: {model['n']} scorable mutants "
        f"(skipped: {skipped}).\n",
        "## Mutation effect (Spearman ρ against the DMS)\n",
        markdown_table(["method", "ρ", "sd over seeds", "n", "how"], [
            [f"**latente VAE ensemble (this run, mean of {model['replicates']} procedures)**", model["spearman"],
             model["spearman_sd"], model["n"],
             f"Δ{params.bound.upper()} averaged over {model['members']} members, {params.samples} latent draws each"],
            ["site-independent (this run)", base["spearman"], "", base["n"], f"weighted profile, pseudo-count {params.pseudocount}"],
        ]),
        *_literature(references),
        "![predicted vs measured](figures/effects.png)\n",
        "## Targets\n",
        target_table([check_target(results, target) for target in references.targets]) if references.targets
        else f"No targets are set (`references.{DOMAIN}.targets` of params.yaml).\n",
        *_bound_section(results, params),
        *_ensemble_section(results, train),
        *_depth_section(curve, params),
        *_calibration_section(calibration, params, model),
        "## Model\n",
        _model_text(ensemble.first),
        _decoder_text(info["decoder"]),
        "## Training\n",
        _training_text(ensemble, train, params.samples, model),
        "![training curves](figures/training.png)\n",
        "## Generation\n",
        f"{gen['n']} sequences sampled from the ensemble's prior (member i mod K; z ~ N(0, {g.latent_scales[0]:g}² I), each "
        f"column drawn from softmax(logits / {g.temperatures[0]:g})) against natural sequences (as many, drawn by sequence "
        "weight; nearest neighbour excluding the sequence itself).\n",
        markdown_table(["sequences", "identity to nearest natural (mean)", "(median)", "column entropy (bits, mean)", "gap fraction"], [
            ["generated", gen["identity_nearest"], gen["identity_nearest_median"], gen["entropy_bits"], gen["gap_fraction"]],
            ["natural", nat["identity_nearest"], nat["identity_nearest_median"], nat["entropy_bits"], nat["gap_fraction"]],
        ]),
        "\n![generation statistics](figures/generation.png)\n",
        *_sweep_section(sweep),
        "First generated sequences:\n",
        "```\n" + "\n".join(examples) + "\n```\n",
        "## Latent space\n",
        f"PCA of member 0's posterior means of all {a.shape[0]} natural sequences, coloured by k-means sequence cluster "
        f"(k = {params.clusters}); the headers carry only UniProt species mnemonics, no taxonomy. Points, labels, "
        "mnemonics and sequences: `plots/latent.csv`.\n",
        "![latent projection](figures/latent.png)\n",
        *(["## Latent interpolation\n", *path_lines] if path_lines else []),
    ]
    if references.anchors:
        lines += ["## References\n", "\n".join(f"- {anchor.label}: {anchor.citation}" for anchor in references.anchors) + "\n"]
    return "\n".join(lines)
