"""The evaluate stage: scores, baseline, generation, latent view → metrics.json, plots, report.md."""
from __future__ import annotations

import numpy as np

from latente.domains.protein.alignment import decode
from latente.domains.protein.evaluation import add_rows, check_same_focus, score, spearman
from latente.domains.protein.generation import compare_with_natural
from latente.domains.protein.latent import project, sequence_clusters, species_code
from latente.domains.protein.model import latent_means, sample_sequences
from latente.domains.protein.mutations import read_mutations
from latente.domains.protein.params import EvaluateParams
from latente.domains.protein.prepared import load_prepared
from latente.shared.io import write_text
from latente.shared.models import load_model
from latente.shared.report import figure_backend, markdown_table, save_figure, write_plot_csv
from latente.shared.results import Results
from latente.shared.stage import DomainPaths

# Published Spearman ρ on BLAT_ECOLX / Stiffler 2015 (see datasets/protein/SOURCE.md).
LITERATURE = [
    ("DeepSequence VAE, notebook (same alignment, same 4807 mutants)", 0.7439, "Riesselman et al. 2018, DeepSequence repo"),
    ("DeepSequence single (deeper ProteinGym MSA)", 0.732, "ProteinGym"),
    ("DeepSequence ensemble (ProteinGym MSA)", 0.743, "ProteinGym"),
    ("EVE single (ProteinGym MSA)", 0.711, "ProteinGym"),
    ("EVmutation (ProteinGym MSA)", 0.707, "ProteinGym"),
    ("Site-independent (ProteinGym MSA)", 0.466, "ProteinGym"),
]


def evaluate_and_report(params: EvaluateParams, paths: DomainPaths) -> None:
    data = load_prepared(paths.prepared)
    loaded = load_model(paths.model, domain="protein")
    check_same_focus(loaded, data.alignment.focus, str(paths.model))
    mutations = read_mutations(paths.raw / params.mutations, data.alignment.focus, params.mutant_column, params.score_column)
    scores = score(loaded.model, data, mutations, params.samples, params.seed, params.pseudocount)

    results = Results("protein", f"{data.alignment.source} + {params.mutations}", [data.alignment.source, params.mutations])
    add_rows(results, scores, mutations, params.samples)
    info = loaded.info
    a = data.alignment
    results.add("model", {"seconds": info["seconds"], "cpu_seconds": info["cpu_seconds"], "threads": info["threads"],
                          "epochs": info["epochs_run"], "neff": data.neff,
                          "sequences": a.shape[0], "columns": a.shape[1]}, task="train")

    generated = sample_sequences(loaded.model, params.generated, params.seed)
    generation = compare_with_natural(generated, a.codes, data.weights, params.seed)
    results.add("model", generation["generated"]["metrics"], task="generation")
    results.add("natural", generation["natural"]["metrics"], task="generation")

    means = latent_means(loaded.model, a.codes)
    points = project(means)
    clusters = sequence_clusters(a.codes, params.clusters, params.seed)
    results.write(paths.metrics)

    sequences = a.sequences()
    write_plot_csv(paths.plots / "effects.csv", [
        {"mutant": m, "dms": float(s), "model": float(p), "site_independent": float(b)}
        for m, s, p, b in zip(mutations.mutants, mutations.scores, scores.model, scores.baseline)])
    write_plot_csv(paths.plots / "latent.csv", [
        {"id": i, "pc1": float(x), "pc2": float(y), "cluster": int(c), "species": species_code(i), "weight": float(w), "sequence": s}
        for i, (x, y), c, w, s in zip(a.ids, points, clusters, data.weights, sequences)])
    write_plot_csv(paths.plots / "entropy.csv", [
        {"position": int(pos), "natural": float(n), "generated": float(g)}
        for pos, n, g in zip(_focus_numbers(a.focus), generation["natural"]["entropy"], generation["generated"]["entropy"])])
    write_plot_csv(paths.plots / "training.csv", [
        {"epoch": row["epoch"], **{k.replace("/", "_"): v for k, v in row.items() if k != "epoch"}} for row in info["history"]])
    _figures(paths, mutations.scores, scores, info["history"], points, clusters, generation)
    write_text(paths.report, _markdown(results, data, loaded.meta, mutations, generation, params, decode(generated[:5])))
    results.print_json()


def _focus_numbers(focus) -> list[int]:
    return [focus.start + i for i, c in enumerate(focus.columns) if c >= 0]


def _figures(paths: DomainPaths, measured, scores, history, points, clusters, generation) -> None:
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


def _decoder_text(decoder: dict) -> str:
    prior = ("a Gaussian posterior over the decoder weights (KL / Neff)" if decoder["bayesian"]
             else f"a N(0, 1) MAP prior on the decoder weights (weight {decoder['l2']}, / Neff)")
    dropout = f", decoder dropout {decoder['dropout']}" if decoder["dropout"] else ""
    if not decoder["sparse"]:
        return f"Trained with a plain output layer, {prior}{dropout}.\n"
    dictionary = f"a dictionary of {decoder['dictionary']} patterns over the 21 states, " if decoder["dictionary"] else ""
    return (f"Trained with a DeepSequence-style decoder output layer (`domains/protein/model.py`): {dictionary}"
            f"sigmoid group-sparsity gates per (hidden unit mod {decoder['patterns']}, column) with a logit-normal prior "
            f"(P(on) = {decoder['gate_prior_p']}, σ = {decoder['gate_prior_sigma']}), a learned inverse temperature, and {prior}{dropout}. These are a "
            "reparametrisation of the last linear layer, folded back into the plain `dense_vae` after training, so the "
            "saved folder is an ordinary shared model.\n")


def _markdown(results: Results, data, meta, mutations, generation, params: EvaluateParams, examples: list[str]) -> str:
    info, config, decoder = meta["info"], meta["model"], meta["info"]["decoder"]
    model, base = results.find("model"), results.find("site_independent")
    train = results.find("model", task="train")
    gen, nat = generation["generated"]["metrics"], generation["natural"]["metrics"]
    a = data.alignment
    skipped = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in mutations.skipped.items() if n) or "none"
    lines = [
        "# Protein: family VAE on BLAT_ECOLX — mutation effects and generation\n",
        f"Alignment `{a.source}`: **{a.shape[0]} sequences × {a.shape[1]} focus columns** "
        f"({a.n_removed} removed for non-standard residues). Sequence weights 1 / #neighbours with identity > "
        f"{1 - data.theta:.2f} (θ = {data.theta}): **Neff = {data.neff:.1f}**.\n",
        f"DMS `{params.mutations}`, score column `{params.score_column}`: {model['n']} scorable mutants "
        f"(skipped: {skipped}).\n",
        "## Mutation effect (Spearman ρ against the DMS)\n",
        markdown_table(["method", "ρ", "n", "source"], [
            ["**latente VAE (this run)**", model["spearman"], model["n"], f"ΔELBO, {params.samples} samples"],
            ["site-independent (this run)", base["spearman"], base["n"], f"weighted profile, pseudo-count {params.pseudocount}"],
            *[[name, rho, "", src] for name, rho, src in LITERATURE],
        ]),
        "\nThe target is ρ ≥ 0.74 with one model. ProteinGym numbers use a deeper alignment (209,644 sequences) "
        "and 4996 mutants, so they are context, not the same protocol.\n",
        "![predicted vs measured](figures/effects.png)\n",
        "## Model\n",
        f"`dense_vae` (shared): one-hot [21, {a.shape[1]}] input, encoder {'-'.join(map(str, config['hidden']))}, "
        f"latent {config['latent_dim']}, decoder {'-'.join(map(str, config['decoder_hidden']))}, {config['act']}, "
        "softmax over the 21 states (20 amino acids and the gap) per column; ELBO = −(recon + KL). Sequences are "
        "drawn for each epoch with probability proportional to their weight.\n",
        _decoder_text(decoder),
        "## Training\n",
        f"Epochs run: {info['epochs_run']} (best validation epoch {info['best_epoch']}); "
        f"training time {train['seconds'] / 60:.1f} min wall, {train['cpu_seconds'] / 60:.1f} min process CPU with "
        f"{train['threads']} thread(s) (the CPU time is what one idle core would take; the wall time depends on the "
        f"machine's other load); scoring {model['n']} mutants × {params.samples} samples took {model['seconds']:.1f} s wall.\n",
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
        "## References\n",
        "- Riesselman, Ingraham & Marks, *Deep generative models of genetic variation capture the effects of mutations*, "
        "Nature Methods 15:816 (2018); github.com/debbiemarkslab/DeepSequence.\n"
        "- Stiffler, Hekstra & Ranganathan, *Evolvability as a function of purifying selection in TEM-1 β-lactamase*, Cell 160:882 (2015).\n"
        "- Notin et al., *ProteinGym* (NeurIPS 2023), DMS_substitutions_Spearman_DMS_level.csv.\n",
    ]
    return "\n".join(lines)
