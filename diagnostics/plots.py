"""Figures of the diagnose report. Each function takes computed results (from
:mod:`checks`, :mod:`predictive`) or a run and returns a matplotlib Figure; none shows or
saves. ArviZ-plots draws what it has (rank plots, energy, pair plots with divergences,
Pareto k); the rest is drawn here.
"""

from __future__ import annotations

import arviz_plots as azp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from allypot.diagnostics.checks import EFFECT
from allypot.diagnostics.rundata import SAMPLE_DIMS, RunData

MAX_PANELS = 8


def _figure(plot_collection) -> Figure:
    return plot_collection.viz["figure"].item()


def _quantity(run: RunData, label: str) -> xr.DataArray:
    """A scalar posterior quantity by its check label: ``name`` or ``depth_theta[atopid]``."""
    if label.startswith("depth_theta["):
        return run.posterior["depth_theta"].sel(alliance=int(label[len("depth_theta["):-1]), drop=True)
    return run.posterior[label]


def _safe(label: str) -> str:
    return label.replace("[", "_").rstrip("]")


def key_quantities(run: RunData, modes: pd.DataFrame | None = None, n_treaties: int = 2) -> xr.Dataset:
    """The effect, the US treaties' depths that split most (or the first ones) and the other
    scalar parameters, at most ``MAX_PANELS``, as one flat Dataset for ArviZ plots."""
    post = run.posterior
    scalars = [v for v in post.data_vars if set(post[v].dims) == set(SAMPLE_DIMS) and float(post[v].std()) > 0]
    treaties = []
    if "depth_theta" in post.data_vars:
        present = {int(a) for a in post["alliance"].to_numpy()}
        treaties = [f"depth_theta[{a}]" for a in run.us_alliances if int(a) in present]
        if modes is not None and len(modes):
            ranked = modes[modes["quantity"].isin(treaties)].sort_values("separation_sd", ascending=False)
            treaties = list(ranked["quantity"]) or treaties
    labels = [EFFECT] if EFFECT in scalars else []
    labels += treaties[:n_treaties] + [v for v in scalars if v != EFFECT]
    return xr.Dataset({_safe(q): _quantity(run, q) for q in labels[:MAX_PANELS]})


def plot_rank_key(run: RunData, modes: pd.DataFrame | None = None) -> Figure:
    """Rank plots (ECDF of fractional ranks per chain) of the key quantities."""
    data = key_quantities(run, modes)
    return _figure(azp.plot_rank(xr.DataTree.from_dict({"posterior": data}), backend="matplotlib",
                                 col_wrap=4, figure_kwargs={"figsize": (12, 3.4 * int(np.ceil(len(data.data_vars) / 4)))}))


def plot_energy_run(run: RunData) -> Figure:
    """Marginal energy vs energy transition distributions, with E-BFMI per chain."""
    tree = xr.DataTree.from_dict({"sample_stats": run.group("sample_stats")[["energy"]]})
    return _figure(azp.plot_energy(tree, backend="matplotlib", figure_kwargs={"figsize": (7, 4)}))


def plot_divergence_pairs(run: RunData, location: pd.DataFrame, n: int = 3) -> Figure:
    """Pair plot of the quantities where the divergent draws sit furthest from the others."""
    chosen = list(location["quantity"].head(n))
    data = xr.Dataset({_safe(q): _quantity(run, q) for q in chosen})
    tree = xr.DataTree.from_dict({"posterior": data, "sample_stats": run.group("sample_stats")[["diverging"]]})
    return _figure(azp.plot_pair(tree, backend="matplotlib", visuals={"divergence": True},
                                 figure_kwargs={"figsize": (3.2 * len(chosen), 3.2 * len(chosen))}))


def plot_chain_modes(modes: pd.DataFrame, n: int = 8) -> Figure:
    """Per-chain means of the key quantities that split most, each centred on its pooled mean."""
    key = modes[modes["key"]].sort_values("separation_sd", ascending=False).head(n)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(key) + 1.5), layout="constrained")
    for y, (_, row) in enumerate(key.iterrows()):
        means = np.array([float(m) for m in row["chain_means"].split("; ")])
        spread = np.ptp(means) / row["separation_sd"] if row["separation_sd"] > 0 else 1.0
        ax.scatter((means - means.mean()) / spread, np.full(means.size, y), c=[f"C{c}" for c in range(means.size)], zorder=3)
    ax.set_yticks(range(len(key)), key["quantity"])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("chain mean minus mean of chain means, in pooled within-chain SDs (colour = chain)")
    ax.set_title("Where the chains settle")
    ax.invert_yaxis()
    return fig


def plot_ppc_statistics(statistics: pd.DataFrame, replicated: dict[tuple[str, str], np.ndarray]) -> Figure:
    """Replicated distribution of each test statistic with the observed value marked."""
    rows = statistics.head(12)
    ncols = min(3, len(rows))
    nrows = int(np.ceil(len(rows) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.6 * nrows), layout="constrained", squeeze=False)
    for ax, (_, row) in zip(axes.ravel(), rows.iterrows()):
        ax.hist(replicated[(row["part"], row["statistic"])], bins=30, color="C0", alpha=0.6)
        ax.axvline(row["observed"], color="black", lw=2)
        ax.set_title(f"{row['part']}: {row['statistic']}\np = {row['p_value']:.3f}", fontsize=9)
        ax.set_yticks([])
    for ax in axes.ravel()[len(rows):]:
        ax.set_visible(False)
    fig.suptitle("Posterior predictive test statistics (histogram: replicated; line: observed)")
    return fig


def plot_ppc_outcome(observed: np.ndarray, replicated: np.ndarray, n_lines: int = 50, seed: int = 0) -> Figure:
    """ECDF of log10 positive shares, observed vs replicated data sets, and the share of zeros."""
    rng = np.random.default_rng(seed)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", width_ratios=(3, 1))
    for k in rng.choice(len(replicated), size=min(n_lines, len(replicated)), replace=False):
        values = np.sort(np.log10(replicated[k][replicated[k] > 0]))
        ax.plot(values, np.linspace(0, 1, values.size), color="C0", alpha=0.15, lw=0.8)
    values = np.sort(np.log10(observed[observed > 0]))
    ax.plot(values, np.linspace(0, 1, values.size), color="black", lw=2, label="observed")
    ax.set_xlabel("log10 share of armed forces in Afghanistan (positive shares)")
    ax.set_ylabel("ECDF")
    ax.legend(loc="upper left")
    bx.hist(np.mean(replicated <= 0, axis=1), bins=20, color="C0", alpha=0.6)
    bx.axvline(np.mean(observed <= 0), color="black", lw=2)
    bx.set_xlabel("share of zeros")
    bx.set_yticks([])
    fig.suptitle("Posterior predictive check of the contribution outcome (blue: replicated)")
    return fig


def plot_loo_pit_ecdf(pit: np.ndarray, prob: float = 0.99) -> Figure:
    """ECDF of the LOO-PIT values minus the uniform CDF, with a Kolmogorov-Smirnov band."""
    x = np.sort(pit)
    grid = np.linspace(0, 1, x.size)
    band = np.sqrt(-np.log((1 - prob) / 2) / (2 * x.size))  # Dvoretzky-Kiefer-Wolfowitz
    fig, ax = plt.subplots(figsize=(6, 3.6), layout="constrained")
    ax.fill_between([0, 1], -band, band, color="grey", alpha=0.3, label=f"{prob:.0%} band for uniform PIT")
    ax.plot(x, grid - x, color="C0")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("LOO-PIT")
    ax.set_ylabel("ECDF - uniform")
    ax.legend()
    ax.set_title("LOO-PIT of the contribution outcome")
    return fig


def plot_pareto_k(table: pd.DataFrame, threshold: float, n_labels: int = 10) -> Figure:
    """Pareto k of every state-year, the highest labelled with state and year."""
    fig, ax = plt.subplots(figsize=(9, 3.6), layout="constrained")
    order = table.sort_values(["stateabb", "year"]).reset_index(drop=True)
    ax.scatter(np.arange(len(order)), order["pareto_k"], s=6, color=np.where(order["pareto_k"] > threshold, "C3", "C0"))
    ax.axhline(threshold, color="C3", ls="--", lw=1)
    for i, row in order.nlargest(n_labels, "pareto_k").iterrows():
        ax.annotate(f"{row['stateabb']} {row['year']}", (i, row["pareto_k"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel("state-year (alphabetical by state)")
    ax.set_ylabel("Pareto k")
    ax.set_title("PSIS-LOO Pareto k of the contribution part")
    return fig


def plot_feedback(feedback: pd.DataFrame) -> Figure:
    """US treaties' depth: measurement-only vs joint posterior (mean +- 1 SD), and the
    distribution of preference shifts."""
    theta = feedback[feedback["quantity"] == "depth_theta"].reset_index(drop=True)
    pref = feedback[feedback["quantity"] == "pref_row"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 0.3 * len(theta) + 2), layout="constrained", width_ratios=(3, 2))
    y = np.arange(len(theta))
    ax.errorbar(theta["measurement_mean"], y - 0.15, xerr=theta["measurement_sd"], fmt="o", color="C0",
                label="measurement only")
    ax.errorbar(theta["joint_mean"], y + 0.15, xerr=theta["joint_sd"], fmt="s", color="C3", label="joint")
    ax.set_yticks(y, [str(int(e)) for e in theta["element"]])
    ax.set_ylabel("ATOP alliance (atopid)")
    ax.set_xlabel("depth theta (mean +- 1 SD)")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("US treaties' depth: did the outcome move it?")
    if len(pref):
        bx.hist(pref["shift_sd"].dropna(), bins=40, color="C2")
        bx.set_xlabel("shift of preference (joint - measurement), measurement SDs")
        bx.set_title(f"{len(pref)} state-years' preference")
    else:
        bx.set_visible(False)
    return fig


def plot_effect_by_run(effects: dict[str, xr.DataArray], max_chains: int = 8) -> Figure:
    """The effect under each run, chain by chain (box: 50%, whiskers: 90%); a run with more
    than ``max_chains`` chains (a cut run pools many fits) is shown pooled."""
    rows = [(name, draws, [None] if draws.sizes["chain"] > max_chains else list(draws["chain"].to_numpy()))
            for name, draws in effects.items()]
    fig, ax = plt.subplots(figsize=(9, 0.45 * sum(len(c) for *_, c in rows) + 1.5), layout="constrained")
    labels, y = [], 0
    for k, (name, draws, chains) in enumerate(rows):
        for chain in chains:
            values = draws.to_numpy().ravel() if chain is None else draws.sel(chain=chain).to_numpy()
            q05, q25, q50, q75, q95 = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
            ax.plot([q05, q95], [y, y], color=f"C{k}", lw=1)
            ax.plot([q25, q75], [y, y], color=f"C{k}", lw=5)
            ax.plot(q50, y, "o", color="white", mec=f"C{k}")
            labels.append(f"{name} " + ("all chains" if chain is None else f"chain {chain}"))
            y += 1
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("alliance-potential effect on the expected share")
    ax.set_title("Effect under each run, by chain")
    return fig
