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
from typing import TYPE_CHECKING

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from latente.domains.protein import DOMAIN
from latente.domains.protein.data import AMINO_ACIDS, Focus, MutationSet, WeightedAlignment, decode, one_hot
from latente.domains.protein.metrics import spearman
from latente.domains.protein.model import latent_means
from latente.domains.protein.params import EvaluateParams
from latente.shared.io import write_text
from latente.shared.models import LoadedModel
from latente.shared.report import (
    References, check_target, figure_backend, load_references, markdown_table, save_figure, target_table, write_plot_csv,
)
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

if TYPE_CHECKING:
    from latente.domains.protein.evaluation import Scores

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


def write_report(paths: DomainPaths, params: EvaluateParams, data: WeightedAlignment, loaded: LoadedModel,
                 mutations: MutationSet, scores: Scores, results: Results, generation: dict, generated: np.ndarray) -> None:
    """plots/*.csv, figures/*.png and report.md of one evaluation."""
    a = data.alignment
    points = project(latent_means(loaded.model, a.codes))
    clusters = sequence_clusters(a.codes, params.clusters, params.seed)
    history = loaded.info["fit"]["history"]
    write_plot_csv(paths.plots / "effects.csv", [
        {"mutant": m, "dms": float(s), "model": float(p), "site_independent": float(b)}
        for m, s, p, b in zip(mutations.mutants, mutations.scores, scores.model, scores.baseline)])
    write_plot_csv(paths.plots / "latent.csv", [
        {"id": i, "pc1": float(x), "pc2": float(y), "cluster": int(c), "species": species_code(i), "weight": float(w), "sequence": s}
        for i, (x, y), c, w, s in zip(a.ids, points, clusters, data.weights, a.sequences())])
    write_plot_csv(paths.plots / "entropy.csv", [
        {"position": int(pos), "natural": float(n), "generated": float(g)}
        for pos, n, g in zip(_focus_numbers(a.focus), generation["natural"]["entropy"], generation["generated"]["entropy"])])
    write_plot_csv(paths.plots / "training.csv", [
        {"epoch": row["epoch"], **{k.replace("/", "_"): v for k, v in row.items() if k != "epoch"}} for row in history])
    _figures(paths, mutations.scores, scores, history, points, clusters, generation)
    write_text(paths.report, _markdown(results, data, loaded, mutations, generation, params, decode(generated[:EXAMPLES]),
                                       load_references(DOMAIN)))


def _focus_numbers(focus: Focus) -> list[int]:
    return [focus.start + i for i, c in enumerate(focus.columns) if c >= 0]


def _figures(paths: DomainPaths, measured, scores: Scores, history, points, clusters, generation) -> None:
    figure_backend()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, values, title in ((axes[0], scores.model, "VAE ΔELBO"), (axes[1], scores.baseline, "site-independent")):
        ax.scatter(values, measured, s=3, alpha=0.4)
        ax.set_xlabel(f"predicted effect ({title})")
        ax.set_title(f"{title}: ρ = {spearman(values, measured):.3f}")
    axes[0].set_ylabel("DMS fitness score")
    save_figure(fig, paths.figures / "effects.png")

    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, term in zip(axes, ("loss", "recon", "kl")):
        for split in ("train", "val"):
            ax.plot(epochs, [row[f"{split}/{term}"] for row in history], label=split)
        ax.set_title({"loss": "loss (−ELBO + prior/Neff)", "recon": "−log p(x|z)", "kl": "KL(q(z|x) ‖ p(z))"}[term])
        ax.set_xlabel("epoch")
        ax.legend()
    save_figure(fig, paths.figures / "training.png")

    fig, ax = plt.subplots(figsize=(6, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=clusters, cmap="tab10", s=3, alpha=0.6)
    ax.legend(*scatter.legend_elements(), title="cluster", fontsize=7, loc="best", markerscale=0.8)
    ax.set_xlabel("PC 1 of latent means")
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
    beta = (f" The latent KL is weighted β = {config.beta:g} in training; scoring uses the ELBO (β = 1)."
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


def _training_text(fit: dict, threads: int, model: dict, samples: int) -> str:
    resumed = (f" (resumed after epoch {fit['resumed_from_epoch']}; the times are of the whole training)"
               if fit["resumed_from_epoch"] else "")
    return (f"Epochs run: {fit['epochs_run']} (best validation epoch {fit['best_epoch']}){resumed}; "
            f"training time {fit['seconds'] / 60:.1f} min wall, {fit['cpu_seconds'] / 60:.1f} min process CPU with "
            f"{threads} thread(s) (the CPU time is what one idle core would take; the wall time depends on the "
            f"machine's other load); scoring {model['n']} mutants × {samples} samples took {model['seconds']:.1f} s wall.\n")


def _literature(references: References) -> list[str]:
    """Published Spearman ρ beside this run, each with the protocol that makes it comparable or not."""
    if not references.anchors:
        return []
    return [
        "Published figures (`references` of params.yaml):\n",
        markdown_table(["published", "ρ", "protocol"],
                       [[anchor.label, anchor.values.get("spearman"), anchor.protocol] for anchor in references.anchors]),
    ]


def _markdown(results: Results, data: WeightedAlignment, loaded: LoadedModel, mutations: MutationSet, generation: dict,
              params: EvaluateParams, examples: list[str], references: References) -> str:
    info = loaded.info
    model, base = results.find("model"), results.find("site_independent")
    gen, nat = generation["generated"]["metrics"], generation["natural"]["metrics"]
    a = data.alignment
    skipped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in mutations.skipped.items() if n) or "none"
    lines = [
        f"# Family VAE on {a.focus.name}: mutation effects and generation\n",
        f"Alignment `{a.source}`: **{a.shape[0]} sequences × {a.shape[1]} focus columns** "
        f"({a.n_removed} removed for non-standard residues). Sequence weights 1 / #neighbours with identity > "
        f"{1 - data.theta:.2f} (θ = {data.theta}): **Neff = {data.neff:.1f}**.\n",
        f"DMS `{params.mutations}`, score column `{params.score_column}`: {model['n']} scorable mutants "
        f"(skipped: {skipped}).\n",
        "## Mutation effect (Spearman ρ against the DMS)\n",
        markdown_table(["method", "ρ", "n", "how"], [
            ["**latente VAE (this run)**", model["spearman"], model["n"], f"ΔELBO, {params.samples} samples"],
            ["site-independent (this run)", base["spearman"], base["n"], f"weighted profile, pseudo-count {params.pseudocount}"],
        ]),
        *_literature(references),
        "![predicted vs measured](figures/effects.png)\n",
        "## Targets\n",
        target_table([check_target(results, target) for target in references.targets]) if references.targets
        else f"No targets are set (`references.{DOMAIN}.targets` of params.yaml).\n",
        "## Model\n",
        _model_text(loaded),
        _decoder_text(info["decoder"]),
        "## Training\n",
        _training_text(info["fit"], info["threads"], model, params.samples),
        "![training curves](figures/training.png)\n",
        "## Generation\n",
        f"{gen['n']} sequences sampled from the prior (z ~ N(0, I), each column drawn from p(x|z)) against natural "
        "sequences (as many, drawn by sequence weight; nearest neighbour excluding the sequence itself).\n",
        markdown_table(["sequences", "identity to nearest natural (mean)", "(median)", "column entropy (bits, mean)", "gap fraction"], [
            ["generated", gen["identity_nearest"], gen["identity_nearest_median"], gen["entropy_bits"], gen["gap_fraction"]],
            ["natural", nat["identity_nearest"], nat["identity_nearest_median"], nat["entropy_bits"], nat["gap_fraction"]],
        ]),
        "\n![generation statistics](figures/generation.png)\n",
        "First generated sequences:\n",
        "```\n" + "\n".join(examples) + "\n```\n",
        "## Latent space\n",
        f"PCA of the posterior means of all {a.shape[0]} natural sequences, coloured by k-means sequence cluster "
        f"(k = {params.clusters}); the headers carry only UniProt species mnemonics, no taxonomy. Points, labels, "
        "mnemonics and sequences: `plots/latent.csv`.\n",
        "![latent projection](figures/latent.png)\n",
    ]
    if references.anchors:
        lines += ["## References\n", "\n".join(f"- {anchor.label}: {anchor.citation}" for anchor in references.anchors) + "\n"]
    return "\n".join(lines)
