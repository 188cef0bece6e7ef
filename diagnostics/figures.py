"""``allypot figures``: the figures the study is read through, from one run folder.

Each figure is a compute function (run -> DataFrame) and a plot function (DataFrame ->
Figure); :func:`write_figures` saves every figure as PNG and PDF.

- rank of states by absolute troops vs by share of armed forces (Gannon & Kent Fig. 1);
- average contribution vs alliance potential by state, with posterior intervals (Fig. 2);
- predicted contribution across the range of potential (Fig. 3), as a share and in troops for
  a state of mean armed-forces size;
- over- and under-contributors: observed minus expected share, the expected share leaving out
  the state's own country effect (what potential, controls and the year predict);
- latent depth of each US alliance, and the preference paths of selected states.

Predictions are computed from the stored parameters by name (the model is not rebuilt), with
controls at their sample means (they are standardised, so 0) and group effects at 0.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.special import expit
from scipy.stats import norm

from allypot.diagnostics.rundata import SAMPLE_DIMS, RunData, open_run, potential_draws

INTERVAL = (0.05, 0.95)
STYLE = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10,
         "savefig.dpi": 200, "font.family": "DejaVu Sans"}
# parameters of the regression's mean for a state at the centre of the data, by family
FAMILY_PARAMETERS = {"hurdle": ("logit_intercept", "logit_beta", "log_intercept", "log_beta", "log_sigma"),
                     "gaussian": ("intercept", "beta")}


def _require(run: RunData, names) -> None:
    missing = [n for n in names if n not in run.posterior.data_vars]
    if missing:
        raise ValueError(f"{run.path}: the posterior lacks {missing}, needed for predictions of the "
                         f"{run.family} family")


def _stacked(da: xr.DataArray) -> np.ndarray:
    """(sample, ...) array of a posterior variable."""
    return da.stack(sample=SAMPLE_DIMS).transpose("sample", ...).to_numpy()


def _summary(draws: np.ndarray, axis: int = 0) -> dict[str, np.ndarray]:
    return {"median": np.median(draws, axis=axis), "low": np.quantile(draws, INTERVAL[0], axis=axis),
            "high": np.quantile(draws, INTERVAL[1], axis=axis)}


def expected_share(run: RunData, potential: np.ndarray, controls: np.ndarray | None = None,
                   country_idx: np.ndarray | None = None, year_idx: np.ndarray | None = None) -> np.ndarray:
    """Expected share (sample, n) at the given potentials (sample, n) or (n,).

    Controls are standardised, so ``None`` (zeros) puts them at their sample means; group
    effects enter only where indices are given. Hurdle: ``logistic(eta) * exp(mu + sigma^2/2)``
    with the log part centred on the mean log positive share, as in the model; Gaussian: the
    mean of the standardised outcome mapped back to the share scale.
    """
    _require(run, FAMILY_PARAMETERS[run.family])
    post = run.posterior
    outcome = run.inputs.outcome

    def predictor(prefix: str, intercept: str, beta: str) -> np.ndarray:
        eta = _stacked(post[intercept])[:, None] + _stacked(post[beta])[:, None] * potential
        if controls is not None and controls.shape[1] and f"{prefix}gamma" in post.data_vars:
            eta = eta + _stacked(post[f"{prefix}gamma"]) @ controls.T  # (s, p) @ (p, n) -> (s, n)
        for index, effect in ((country_idx, f"{prefix}country_effect"), (year_idx, f"{prefix}year_effect")):
            if index is not None and effect in post.data_vars:
                eta = eta + _stacked(post[effect])[:, index]
        return eta

    if run.family == "hurdle":
        log_centre = float(np.log(outcome[outcome > 0]).mean())
        sigma = _stacked(post["log_sigma"])[:, None]
        positive_mean = np.exp(log_centre + predictor("log_", "log_intercept", "log_beta") + sigma**2 / 2)
        return expit(predictor("logit_", "logit_intercept", "logit_beta")) * positive_mean
    return outcome.mean() + outcome.std() * predictor("", "intercept", "beta")


# ---------------------------------------------------------------------------------------------
# compute


def compute_rank_comparison(run: RunData, top: int = 15) -> tuple[pd.DataFrame, dict[str, int]]:
    """Mean yearly troops and share of armed forces per state over the run's years, and the
    ranks by each; the states in the top ``top`` by either. Also counts the state-years left out."""
    panel = run.panel
    years = (run.config["data"]["first_year"], run.config["data"]["last_year"])
    frame = panel[panel["year"].between(*years) & ~panel["us"].astype(bool)]
    no_troops = frame["troops_afghanistan"].isna()
    no_share = ~no_troops & frame["share"].isna()
    excluded = {"no troop figure": int(no_troops.sum()), "no share (armed forces unknown)": int(no_share.sum())}
    frame = frame[~no_troops & ~no_share]
    means = frame.groupby("stateabb")[["troops_afghanistan", "share"]].mean()
    means["rank_troops"] = means["troops_afghanistan"].rank(ascending=False, method="first").astype(int)
    means["rank_share"] = means["share"].rank(ascending=False, method="first").astype(int)
    chosen = means[(means["rank_troops"] <= top) | (means["rank_share"] <= top)]
    return chosen.sort_values("rank_troops").reset_index(), excluded


def compute_potential_by_state(run: RunData) -> pd.DataFrame:
    """Per state: mean observed share over its rows, and the posterior of its mean potential."""
    labels = run.row_labels
    potential = _stacked(potential_draws(run))  # (s, row)
    rows = []
    for state, idx in labels.groupby("stateabb").indices.items():
        summary = _summary(potential[:, idx].mean(axis=1))
        rows.append({"stateabb": state, "mean_share": float(run.inputs.outcome[idx].mean()),
                     "potential_median": summary["median"], "potential_low": summary["low"],
                     "potential_high": summary["high"], "rows": len(idx)})
    return pd.DataFrame(rows).sort_values("mean_share", ascending=False, ignore_index=True)


def compute_predicted_contribution(run: RunData, points: int = 60) -> pd.DataFrame:
    """Expected share and troops across the observed range of potential (posterior medians of
    each state-year's potential), for a state at the data's centre with the mean armed forces."""
    potential = potential_draws(run)
    centre = potential.mean(SAMPLE_DIMS).to_numpy()
    grid = np.linspace(centre.min(), centre.max(), points)
    share = expected_share(run, grid)
    armed_forces = run.panel.set_index(["ccode", "year"])["armed_forces"]
    mean_forces = float(armed_forces.loc[list(zip(run.inputs.rows["ccode"], run.inputs.rows["year"]))].mean())
    frame = pd.DataFrame({"potential": grid})
    for name, values in (("share", share), ("troops", share * mean_forces)):
        for stat, v in _summary(values).items():
            frame[f"{name}_{stat}"] = v
        frame[f"{name}_q25"], frame[f"{name}_q75"] = np.quantile(values, [0.25, 0.75], axis=0)
    frame.attrs["mean_armed_forces"] = mean_forces
    return frame


def compute_residuals(run: RunData) -> pd.DataFrame:
    """Per state: posterior of the mean of (observed - expected share) over its rows, the
    expectation leaving out the state's own country effect."""
    inputs = run.inputs
    expected = expected_share(run, _stacked(potential_draws(run)), inputs.controls, year_idx=inputs.year_idx)
    residual = inputs.outcome[None, :] - expected
    rows = []
    for state, idx in run.row_labels.groupby("stateabb").indices.items():
        summary = _summary(residual[:, idx].mean(axis=1))
        rows.append({"stateabb": state, "residual_median": summary["median"], "residual_low": summary["low"],
                     "residual_high": summary["high"], "mean_share": float(inputs.outcome[idx].mean())})
    return pd.DataFrame(rows).sort_values("residual_median", ascending=False, ignore_index=True)


def compute_us_depth(run: RunData) -> pd.DataFrame:
    """Depth (0..1, Phi(theta)) of every alliance shared with the US; measurement-only too if kept."""
    rows = []
    for label, group in ((f"{run.mode} posterior", run.posterior), ("measurement only", run.group("measurement"))):
        if group is None or "depth_theta" not in group.data_vars:
            continue
        present = [a for a in run.us_alliances if a in group["alliance"].to_numpy()]
        depth = norm.cdf(_stacked(group["depth_theta"].sel(alliance=present)))
        summary = _summary(depth)
        rows.append(pd.DataFrame({"atopid": present, "source": label, "median": summary["median"],
                                  "low": summary["low"], "high": summary["high"]}))
    if not rows:
        raise ValueError(f"{run.path}: no depth_theta in the posterior or measurement group")
    return pd.concat(rows, ignore_index=True)


def compute_preference_paths(run: RunData, states: list[str] | None = None, n_default: int = 6) -> pd.DataFrame:
    """Posterior of each selected state's preference (agreement with the US) by year.

    From ``pref_logit`` (the walk over country x year) when the posterior has it, else from
    ``pref_row`` of the posterior or of the measurement group (regression rows only).
    """
    labels = run.row_labels
    if states is None:
        means = labels.assign(share=run.inputs.outcome).groupby("stateabb")["share"].mean()
        states = list(means.sort_values(ascending=False).index[:n_default])
    unknown = sorted(set(states) - set(labels["stateabb"]))
    if unknown:
        raise ValueError(f"states {unknown} are not in the run's sample (use state abbreviations such as "
                         f"{', '.join(labels['stateabb'].drop_duplicates().head(5))})")
    post, measurement = run.posterior, run.group("measurement")
    rows = []
    if run.config["model"]["preference"] == "agreement" and "pref_logit" in post.data_vars:
        code_of = dict(zip(labels["stateabb"], labels["ccode"]))
        for state in states:
            draws = expit(_stacked(post["pref_logit"].sel(country=code_of[state])))  # (s, year)
            summary = _summary(draws)
            rows.append(pd.DataFrame({"stateabb": state, "year": post["year"].to_numpy(), **summary}))
    else:
        source = post if "pref_row" in post.data_vars else measurement
        if source is None or "pref_row" not in source.data_vars:
            raise ValueError(f"{run.path}: no pref_logit or pref_row in the run: preference paths need a refit")
        draws = _stacked(source["pref_row"])
        for state in states:
            idx = labels.index[labels["stateabb"] == state].to_numpy()
            summary = _summary(draws[:, idx])
            rows.append(pd.DataFrame({"stateabb": state, "year": labels.loc[idx, "year"].to_numpy(), **summary}))
    return pd.concat(rows, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# plot


def plot_rank_bump(table: pd.DataFrame, excluded: dict[str, int]) -> Figure:
    """Bump chart: each state's rank by mean troops (left) and by mean share (right); the
    state-years left out are counted in a footnote."""
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(table) + 1.5), layout="constrained")
    for k, row in table.iterrows():
        moved = row["rank_share"] < row["rank_troops"]
        colour = "C3" if moved else "C0"
        ax.plot([0, 1], [row["rank_troops"], row["rank_share"]], color=colour, marker="o", lw=1.5 if moved else 1)
        ax.annotate(row["stateabb"], (0, row["rank_troops"]), xytext=(-6, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=8)
        ax.annotate(row["stateabb"], (1, row["rank_share"]), xytext=(6, 0), textcoords="offset points",
                    ha="left", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xticks([0, 1], ["rank by troops", "rank by share of\narmed forces"])
    ax.set_xlim(-0.35, 1.35)
    ax.set_ylabel("rank (1 = largest)")
    ax.set_title("Contributors to the war in Afghanistan: absolute vs relative\n(red: higher by share than by troops)")
    note = "; ".join(f"{n} state-years with {reason}" for reason, n in excluded.items() if n)
    fig.text(0.01, -0.02, f"Means over years of each state's troops and share. Left out: {note or 'none'}.",
             fontsize=7, ha="left", va="top", wrap=True)
    return fig


def plot_potential_by_state(table: pd.DataFrame, n_labels: int = 15) -> Figure:
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    ax.errorbar(table["potential_median"], table["mean_share"],
                xerr=[table["potential_median"] - table["potential_low"], table["potential_high"] - table["potential_median"]],
                fmt="o", ms=3, color="C0", ecolor="C0", alpha=0.6, elinewidth=0.8)
    for _, row in table.head(n_labels).iterrows():
        ax.annotate(row["stateabb"], (row["potential_median"], row["mean_share"]), xytext=(3, 3),
                    textcoords="offset points", fontsize=7)
    ax.set_xlabel("mean alliance potential (posterior median, 90% interval)")
    ax.set_ylabel("mean share of armed forces in Afghanistan")
    ax.set_title("Average contribution vs alliance potential, by state")
    return fig


def plot_predicted_contribution(table: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    for ax, name, label in ((axes[0], "share", "expected share of armed forces"),
                            (axes[1], "troops", f"expected troops (armed forces {table.attrs['mean_armed_forces']:,.0f})")):
        ax.fill_between(table["potential"], table[f"{name}_low"], table[f"{name}_high"], color="C0", alpha=0.2,
                        label="90% credible band")
        ax.fill_between(table["potential"], table[f"{name}_q25"], table[f"{name}_q75"], color="C0", alpha=0.4,
                        label="50% credible band")
        ax.plot(table["potential"], table[f"{name}_median"], color="C0", label="posterior median")
        ax.set_xlabel("alliance potential")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Predicted contribution across the range of potential (controls at their means, group effects 0)")
    return fig


def plot_residuals(table: pd.DataFrame, n: int = 12) -> Figure:
    shown = pd.concat([table.head(n), table.tail(n)]).drop_duplicates("stateabb").reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(shown) + 1.5), layout="constrained")
    colours = np.where(shown["residual_median"] > 0, "C3", "C0")
    ax.errorbar(shown["residual_median"], np.arange(len(shown)), fmt="none", ecolor=colours,
                xerr=[shown["residual_median"] - shown["residual_low"], shown["residual_high"] - shown["residual_median"]])
    ax.scatter(shown["residual_median"], np.arange(len(shown)), c=colours, s=14, zorder=3)
    ax.set_yticks(np.arange(len(shown)), shown["stateabb"])
    ax.axvline(0, color="grey", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("mean of observed - expected share (90% interval)")
    ax.set_title("Over- (red) and under-contributors (blue) relative to the model\n"
                 "(expected share from potential, controls and year; the state's own effect left out)")
    return fig


def plot_us_depth(table: pd.DataFrame) -> Figure:
    order = table[table["source"] == table["source"].iloc[0]].sort_values("median")["atopid"].tolist()
    fig, ax = plt.subplots(figsize=(6.5, 0.3 * len(order) + 1.5), layout="constrained")
    for k, (source, part) in enumerate(table.groupby("source", sort=False)):
        part = part.set_index("atopid").loc[order]
        y = np.arange(len(order)) + (0.15 * (1 if k else -1) if table["source"].nunique() > 1 else 0)
        ax.errorbar(part["median"], y, xerr=[part["median"] - part["low"], part["high"] - part["median"]],
                    fmt="o", ms=4, color=f"C{k}", label=source)
    ax.set_yticks(np.arange(len(order)), [str(a) for a in order])
    ax.set_ylabel("ATOP alliance with the US (atopid)")
    ax.set_xlabel("latent depth, Phi(theta) (median, 90% interval)")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("Depth of each alliance shared with the US")
    return fig


def plot_preference_paths(table: pd.DataFrame) -> Figure:
    states = list(dict.fromkeys(table["stateabb"]))
    ncols = min(3, len(states))
    nrows = int(np.ceil(len(states) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 2.4 * nrows), sharey=True, layout="constrained",
                             squeeze=False)
    for ax, state in zip(axes.ravel(), states):
        part = table[table["stateabb"] == state]
        ax.fill_between(part["year"], part["low"], part["high"], color="C0", alpha=0.25)
        ax.plot(part["year"], part["median"], color="C0")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.set_title(state)
    for ax in axes.ravel()[len(states):]:
        ax.set_visible(False)
    fig.supylabel("preference (agreement with the US)")
    fig.suptitle("Preference paths (posterior median, 90% interval)")
    return fig


def write_figures(run_path: Path, tables_dir: Path, out: Path | None = None, states: list[str] | None = None) -> list[Path]:
    """Compute and save every figure of one run as PNG and PDF (default folder ``RUN/figures``)."""
    run = open_run(run_path, tables_dir)
    out = Path(out) if out is not None else Path(run_path) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    ranks, excluded = compute_rank_comparison(run)
    builders = {
        "fig1_rank_troops_vs_share": lambda: plot_rank_bump(ranks, excluded),
        "fig2_contribution_vs_potential": lambda: plot_potential_by_state(compute_potential_by_state(run)),
        "fig3_predicted_contribution": lambda: plot_predicted_contribution(compute_predicted_contribution(run)),
        "residuals_by_state": lambda: plot_residuals(compute_residuals(run)),
        "us_alliance_depth": lambda: plot_us_depth(compute_us_depth(run)),
        "preference_paths": lambda: plot_preference_paths(compute_preference_paths(run, states)),
    }
    paths = []
    with plt.rc_context(STYLE):
        for name, build in builders.items():
            fig = build()
            for suffix in ("png", "pdf"):
                fig.savefig(out / f"{name}.{suffix}", bbox_inches="tight")
                paths.append(out / f"{name}.{suffix}")
            plt.close(fig)
    return paths
