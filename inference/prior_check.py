"""``allypot priors check``: what the joint model's priors say before seeing the outcome.

Draws the joint model (Parts A-D) from its prior predictive and sets four quantities next to
their observed counterparts:

- the contribution share (Gaussian family: the ``share_z`` draws put back on the share scale
  with the observed mean and SD that ``models/contribution.py`` standardised by; hurdle
  family: the ``share`` draws themselves), against the observed shares;
- the depth of US dyads on allied state-years, against the published panel's depth on the
  state-years the paper codes as allied (a point estimate, the only "observed" depth there is);
- the preference measure: with ``agreement``, the agreement rate with the US (invlogit of the
  random walk on cells with votes) against the observed n_agree / n_votes; with ``idealpoint``,
  the simulated ideal-point measurements against the published Bailey-Strezhnev-Voeten
  estimates on the same state-years;
- alliance potential, against the published panel's potential.

The share is the one that can be implausible: a Gaussian on a proportion that is zero for
most state-years puts prior mass below 0, and the summary counts how much. Computing
(:func:`compute_prior_predictive`, :func:`summarise_prior_predictive`) and drawing
(:func:`plot_prior_predictive`, :func:`plot_share_draws`) are separate so tests and notebooks
can use either.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from allypot.models.inputs import ModelInputs
from matplotlib.figure import Figure
from scipy.special import expit

from allypot.markdown import markdown_table

QUANTILES = (0.01, 0.05, 0.5, 0.95, 0.99)
QUANTITIES = ("share", "depth_allied", "agreement", "potential")
IDEALPOINT_QUANTITIES = ("share", "depth_allied", "ideal_point", "potential")
LABELS = {
    "share": "share of armed forces in Afghanistan",
    "depth_allied": "depth of alliance with the US (allied state-years)",
    "agreement": "UN-vote agreement with the US",
    "ideal_point": "UN ideal point (Bailey-Strezhnev-Voeten scale)",
    "potential": "alliance potential",
}
SUMMARY_COLUMNS = ["quantity", "source", "n", *(f"q{round(100 * q):02d}" for q in QUANTILES),
                   "frac_below_0", "frac_above_1", "frac_zero"]
REFERENCE = "reference"  # DataTree group with the observed values a check compares against


def observed_reference(inputs: ModelInputs, published: pd.DataFrame | None = None) -> xr.Dataset:
    """The observed counterparts of the simulated quantities, stored with the prior draws.

    Keeping them in the DataTree makes the prior check self-contained: the summary and the
    figures need nothing but the tree. Depth and potential are latent, so their reference is
    the published panel's point estimates on the same state-years (when given).
    """
    voted = inputs.n_votes > 0
    ideal_seen = ~np.isnan(inputs.ideal)
    ds = xr.Dataset(
        {
            "share": (("row",), inputs.outcome.astype("float64")),
            "us_ally": (("row",), inputs.us_ally),
            "agreement": (("cell",), inputs.n_agree[voted] / inputs.n_votes[voted]),
            "voted": (("country", "year"), voted),
            "ideal_point": (("ideal_cell",), inputs.ideal[ideal_seen]),
        },
        coords={"row": np.arange(len(inputs.rows)), "country": inputs.countries, "year": inputs.years},
        attrs={"share_centre": float(inputs.outcome.mean()), "share_scale": float(inputs.outcome.std()),
               "outcome_name": inputs.outcome_name},
    )
    if published is not None:
        keyed = published.dropna(subset=["ccode", "year"]).astype({"ccode": "int64", "year": "int64"})
        keyed = keyed.drop_duplicates(["ccode", "year"]).set_index(["ccode", "year"])
        index = pd.MultiIndex.from_frame(inputs.rows[["ccode", "year"]].astype("int64"))
        aligned = keyed.reindex(index)
        if {"alliance_depth", "us_ally"} <= set(keyed.columns):
            # the paper's own allied state-years: our US-ally coding differs from theirs
            depth = aligned["alliance_depth"].where(aligned["us_ally"] == 1)
            ds["published_depth"] = (("row",), depth.astype("float64").to_numpy())
        if "potential" in keyed.columns:
            ds["published_potential"] = (("row",), aligned["potential"].astype("float64").to_numpy())
    return ds


def prior_predictive_tree(model, inputs: ModelInputs, draws: int, seed: int,
                          published: pd.DataFrame | None = None) -> xr.DataTree:
    """Prior predictive draws of ``model`` plus the observed reference group."""
    import pymc as pm

    tree = pm.sample_prior_predictive(draws=draws, model=model, random_seed=seed)
    tree[REFERENCE] = xr.DataTree(observed_reference(inputs, published))
    return tree


def compute_prior_predictive(config: dict, tables_dir: Path, draws: int = 500) -> xr.DataTree:
    """Prior predictive of the joint model a config describes, on that config's data.

    Parameters
    ----------
    config : dict
        A resolved config (:func:`~allypot.inference.config.resolve_config`); its data and
        model sections pick the inputs and the structure, ``run.seed`` seeds the draws.
    tables_dir : Path
        The derived tables (``published_panel.csv`` there, if present, supplies the
        reference depth and potential).
    draws : int
        Prior draws.

    Returns
    -------
    DataTree
        ``prior``, ``prior_predictive``, ``observed_data`` as PyMC writes them, plus
        ``reference`` (:func:`observed_reference`).
    """
    from allypot.inference.config import model_options, priors_from_config
    from allypot.inference.fit import load_inputs
    from allypot.models.compose import build_joint_model

    inputs = load_inputs(config, tables_dir)
    model = build_joint_model(inputs, model_options(config), priors_from_config(config))
    published_path = Path(tables_dir) / "published_panel.csv"
    published = pd.read_csv(published_path) if published_path.exists() else None
    return prior_predictive_tree(model, inputs, draws, config["run"]["seed"], published)


def quantities_of(prior: xr.DataTree) -> tuple[str, ...]:
    """The quantities a prior check shows: the preference row follows the model's measure."""
    return QUANTITIES if "pref_logit" in prior["prior"] else IDEALPOINT_QUANTITIES


def simulated_values(prior: xr.DataTree) -> dict[str, np.ndarray]:
    """Flattened prior draws of each quantity in :func:`quantities_of`, on their natural scale."""
    ref = prior[REFERENCE]
    if "share_z" in prior["prior_predictive"]:
        z = prior["prior_predictive"]["share_z"].to_numpy()
        share = ref.attrs["share_centre"] + ref.attrs["share_scale"] * z
    else:
        share = prior["prior_predictive"]["share"].to_numpy()
    allied = ref["us_ally"].to_numpy().astype(bool)
    draws = prior["prior"]
    values = {
        "share": share.ravel(),
        "depth_allied": draws["depth"].to_numpy()[..., allied].ravel(),
        "potential": draws["potential"].to_numpy().ravel(),
    }
    if "pref_logit" in draws:
        logit = draws["pref_logit"].to_numpy()  # (chain, draw, country, year)
        values["agreement"] = expit(logit[..., ref["voted"].to_numpy()]).ravel()
    else:
        # simulated measurements (latent ideal point plus published error) on the seen cells
        values["ideal_point"] = prior["prior_predictive"]["pref_ideal_obs"].to_numpy().ravel()
    return values


def observed_values(prior: xr.DataTree) -> dict[str, np.ndarray]:
    """The observed (or, for latent quantities, published) values; absent ones are empty."""
    ref = prior[REFERENCE]

    def published(name: str) -> np.ndarray:
        if name not in ref:
            return np.array([])
        values = ref[name].to_numpy()
        return values[np.isfinite(values)]

    return {
        "share": ref["share"].to_numpy(),
        "depth_allied": published("published_depth"),
        "agreement": ref["agreement"].to_numpy(),
        "ideal_point": ref["ideal_point"].to_numpy(),
        "potential": published("published_potential"),
    }


def _describe(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"n": 0}
    quantiles = np.quantile(values, QUANTILES)
    return {
        "n": int(values.size),
        **{f"q{round(100 * q):02d}": v for q, v in zip(QUANTILES, quantiles)},
        "frac_below_0": float((values < 0).mean()),
        "frac_above_1": float((values > 1).mean()),
        "frac_zero": float((values == 0).mean()),
    }


def summarise_prior_predictive(prior: xr.DataTree) -> pd.DataFrame:
    """Quantiles and implausibility fractions, prior predictive vs observed, per quantity.

    Returns
    -------
    DataFrame
        One row per (quantity, source) with ``source`` in {"prior", "observed"} (for depth and
        potential "observed" is the published point estimate): n, the 1/5/50/95/99%
        quantiles, and the fractions below 0, above 1 and exactly 0. A share below 0 or above
        1 is impossible; for potential (a difference of two 0..1 quantities) negative values
        are expected and the fractions are only descriptive.
    """
    simulated, observed = simulated_values(prior), observed_values(prior)
    rows = []
    for quantity in quantities_of(prior):
        rows.append({"quantity": quantity, "source": "prior", **_describe(simulated[quantity])})
        rows.append({"quantity": quantity, "source": "observed", **_describe(observed[quantity])})
    return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)


def _display_range(simulated: np.ndarray, observed: np.ndarray) -> tuple[float, float]:
    """From the lower to the higher of the two samples' 0.5-99.5% ranges.

    Each sample gets its own range, so a few extreme prior draws cannot flatten the plot and
    the (much smaller) observed sample is never clipped by the prior's range.
    """
    ranges = [np.quantile(x, [0.005, 0.995]) for x in (simulated, observed) if x.size]
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    return (float(low), float(high)) if high > low else (float(low) - 0.5, float(high) + 0.5)


def plot_prior_predictive(prior: xr.DataTree, bins: int = 60) -> Figure:
    """Histograms (densities) of simulated vs observed values, one panel per quantity.

    Returns a 2 x 2 Figure in the order of :func:`quantities_of`; the zero line marks where a
    share stops being possible.
    """
    simulated, observed = simulated_values(prior), observed_values(prior)
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, quantity in zip(axes, quantities_of(prior)):
        sim, obs = simulated[quantity], observed[quantity]
        edges = np.linspace(*_display_range(sim, obs), bins + 1)
        ax.hist(np.clip(sim, edges[0], edges[-1]), bins=edges, density=True, alpha=0.5, color="C0", label="prior predictive")
        if obs.size:
            source = "published" if quantity in ("depth_allied", "potential") else "observed"
            ax.hist(np.clip(obs, edges[0], edges[-1]), bins=edges, density=True, alpha=0.5, color="C1", label=source)
        if quantity == "share":
            ax.axvline(0.0, color="k", lw=0.8)
            ax.set_title(f"{LABELS[quantity]}\n{(sim < 0).mean():.0%} of prior draws < 0, {(sim > 1).mean():.1%} > 1")
        else:
            ax.set_title(LABELS[quantity])
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
    fig.suptitle("Prior predictive vs data (values beyond the 0.5-99.5% ranges piled at the edges)")
    return fig


def share_draw_statistics(prior: xr.DataTree) -> pd.DataFrame:
    """Per prior draw: the fraction of negative shares and the mean share over state-years."""
    ref = prior[REFERENCE]
    pp = prior["prior_predictive"]
    if "share_z" in pp:
        share = ref.attrs["share_centre"] + ref.attrs["share_scale"] * pp["share_z"].to_numpy()
    else:
        share = pp["share"].to_numpy()
    share = share.reshape(-1, share.shape[-1])
    return pd.DataFrame({"frac_negative": (share < 0).mean(axis=1), "mean_share": share.mean(axis=1)})


def plot_share_draws(prior: xr.DataTree, bins: int = 40) -> Figure:
    """Whether implausible shares come from every prior draw or from a few extreme ones.

    Two panels: the per-draw fraction of negative shares, and the per-draw mean share with
    the observed mean marked.
    """
    stats = share_draw_statistics(prior)
    observed_mean = float(prior[REFERENCE]["share"].mean())
    fig = Figure(figsize=(10, 4), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.hist(stats["frac_negative"], bins=np.linspace(0, 1, bins + 1), color="C0")
    left.set_xlabel("fraction of state-years with a simulated share < 0")
    left.set_ylabel("prior draws")
    low, high = _display_range(stats["mean_share"].to_numpy(), np.array([observed_mean]))
    right.hist(stats["mean_share"].clip(low, high), bins=bins, color="C0")
    right.axvline(observed_mean, color="C1", lw=2, label=f"observed mean {observed_mean:.4f}")
    right.set_xlabel("mean simulated share over state-years")
    right.legend(fontsize=8)
    fig.suptitle("Prior predictive shares, draw by draw")
    return fig


def write_prior_check(config: dict, tables_dir: Path, out_dir: Path, draws: int = 500) -> Path:
    """Compute, summarise and plot the prior predictive; return the path of ``prior_check.md``.

    Writes ``prior_check.md``, ``prior_predictive_summary.csv``, ``prior_predictive.png`` and
    ``prior_share_draws.png`` into ``out_dir``.
    """
    return write_prior_report(compute_prior_predictive(config, tables_dir, draws), config, out_dir)


def write_prior_report(prior: xr.DataTree, config: dict, out_dir: Path) -> Path:
    """The files of :func:`write_prior_check` from an already computed prior predictive tree."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    draws = prior["prior"].sizes["chain"] * prior["prior"].sizes["draw"]
    summary = summarise_prior_predictive(prior)
    summary.to_csv(out_dir / "prior_predictive_summary.csv", index=False)
    plot_prior_predictive(prior).savefig(out_dir / "prior_predictive.png", dpi=110)
    plot_share_draws(prior).savefig(out_dir / "prior_share_draws.png", dpi=110)
    share = summary[(summary["quantity"] == "share") & (summary["source"] == "prior")].iloc[0]
    per_draw = share_draw_statistics(prior)
    m = config["model"]
    text = "\n\n".join([
        "# Prior predictive check",
        f"Joint model, specification `{m['specification']}`, family `{m['family']}`, preference "
        f"`{m['preference']}`, projection `{m['projection']}`; {draws} prior draws, seed {config['run']['seed']}.",
        markdown_table(summary, floatfmt="{:.4g}"),
        "For depth and potential, 'observed' is the published panel's point estimate (both are latent).",
        f"Simulated shares: {share['frac_below_0']:.1%} below 0, {share['frac_above_1']:.2%} above 1, "
        f"{share['frac_zero']:.1%} exactly 0 (observed: "
        f"{summary.loc[(summary.quantity == 'share') & (summary.source == 'observed'), 'frac_zero'].iloc[0]:.1%} zeros). "
        f"Per prior draw, the median fraction of negative shares is {per_draw['frac_negative'].median():.1%}.",
        "![prior predictive](prior_predictive.png)",
        "![shares per draw](prior_share_draws.png)",
    ]) + "\n"
    path = out_dir / "prior_check.md"
    path.write_text(text)
    return path
