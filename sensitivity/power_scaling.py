"""Power-scaling sensitivity of the effect, by prior group and by likelihood component.

Method: Kallioinen, Paananen, Buerkner & Vehtari (2024), "Detecting and diagnosing prior and
likelihood sensitivity with power-scaling" (Stat Comput 34:57), through ``arviz_stats.psense``:
raise one part of the posterior (a prior group, or one likelihood component) to a power alpha
near 1, reweight the draws by Pareto-smoothed importance sampling (no refit), and measure how far
each parameter's distribution moves (the derivative of the cumulative Jensen-Shannon distance).
A sensitivity of at least ``THRESHOLD`` (0.05, the paper's and ``psense_summary``'s) counts.

Groupings (documented choices):

- likelihood components: ``treaty items`` (Part A, log_likelihood ``treaty_items``), ``vote
  agreement`` or ``ideal points`` (Part B), ``contribution regression`` (Part D, ``share`` /
  ``share_z``). A plug-in or cut run's posterior contains the regression likelihood only: the
  measurement was fitted in another posterior, so only that component can be scaled.
- prior groups (see :func:`prior_group`): depth IRT (loadings, cut-points), preference walk scale,
  regression coefficients (beta, intercepts, gammas), group-effect scales, residual scale, and the
  latent fields (theta ~ N(0, 1), the walk given its scale, group effects given their scale). As
  the paper recommends for hierarchical models, the "all priors" total that the likelihood rows
  are paired with is the top-level priors only; the latent fields are reported as their own group.

A value counts when it is at least the threshold *and* above its noise floor: the largest value
over 9 shuffles of the component's log density across draws (:func:`_noise_floor`; above all 9 is
a permutation test at level 0.1). The
floor matters here: the treaty items' and votes' totals vary by 20-30 log units between draws,
and on the real joint run (4000 draws) weights that carry no information about a parameter
still gave it sensitivities of about 0.1, twice the threshold.

Diagnosis in words, per (parameter, component), pairing each component with the other side as a
whole (a prior group with the likelihood, a likelihood component with the top-level priors; a
side counts when its total or any of its parts counts); the wording follows the paper's Table 1
and ``psense_summary``:

- both sensitive: "prior-data conflict";
- prior sensitive, likelihood not: "strong prior / weak likelihood";
- neither: "weak likelihood / uninformative" (this component does not inform the parameter);
- likelihood sensitive, prior not: "fine".

Computing (:func:`compute_power_scaling`) is separate from drawing (:func:`draw_power_scaling`)
and from writing (:func:`write_sensitivity`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats import psense

from allypot.diagnostics.rundata import RunData, open_run
from allypot.inference.runs import data_hash, run_data_files
from allypot.inference.sampling import LATENT_FIELDS, component_log_densities, latent_variables
from allypot.markdown import markdown_table

THRESHOLD = 0.05
ALPHAS = (0.99, 1.01)
# Pareto k of the importance weights above this: the sensitivity estimate is unreliable
K_HAT_LIMIT = 0.7
SAMPLE_DIMS = ["chain", "draw"]
# the plots scale further than the derivative so that the shift is visible; farther (the plot's
# default 0.8, 1.25) leaves a few draws carrying all the weight for totals that vary by 20-30 log units
PLOT_ALPHAS = (0.95, 1.05)
# shuffles of a component's log density that give its noise floor (see _noise_floor): a value
# above all 9 is a permutation test at level 1/10
PERMUTATIONS = 9
OVERALL = "all top-level priors vs all likelihood"

# likelihood component label -> variables of the log_likelihood group it sums
LIKELIHOOD_COMPONENTS = {
    "treaty items": ("treaty_items",),
    "vote agreement": ("vote_agreement",),
    "ideal points": ("ideal_points",),
    "contribution regression": ("share", "share_z"),
}
LATENT_GROUP = "latent fields (hierarchical layer)"
PRIOR_GROUP_ORDER = ("depth IRT (loadings, cut-points)", "preference walk scale", "regression coefficients",
                     "group-effect scales", "residual scale", LATENT_GROUP, "other")
# the effect and the parameters it is built from, in the order of the table
KEY_PARAMETERS = ("potential_effect", "log_beta", "logit_beta", "beta", "depth_theta", "pref_walk_sigma",
                  "logit_country_effect_sigma", "logit_year_effect_sigma", "log_country_effect_sigma",
                  "log_year_effect_sigma", "country_effect_sigma", "year_effect_sigma", "log_sigma", "sigma")
DIAGNOSES = ("prior-data conflict", "strong prior / weak likelihood", "weak likelihood / uninformative", "fine")


def prior_group(name: str) -> str:
    """The prior group of a ``log_prior`` variable (its name is the model's free variable)."""
    # group effects in every parameterisation: non-centred offsets, centred levels, and the
    # mean-split centring's level mean and zero-sum deviations (models/contribution.py)
    if name in LATENT_FIELDS or name.endswith(("_offset", "_centred", "_level_mean", "_deviation")):
        return LATENT_GROUP
    if name.startswith("depth_"):
        return "depth IRT (loadings, cut-points)"
    if name.startswith("pref_"):
        return "preference walk scale"
    if name.endswith("effect_sigma"):
        return "group-effect scales"
    if name in ("log_sigma", "sigma"):
        return "residual scale"
    if any(key in name for key in ("beta", "intercept", "gamma")):
        return "regression coefficients"
    return "other"


def diagnose(prior_sensitive: bool, likelihood_sensitive: bool) -> str:
    """The paper's reading of a (prior, likelihood) sensitivity pair, in words."""
    if prior_sensitive and likelihood_sensitive:
        return "prior-data conflict"
    if prior_sensitive:
        return "strong prior / weak likelihood"
    if not likelihood_sensitive:
        return "weak likelihood / uninformative"
    return "fine"


def is_sensitive(value: float, noise_floor: float, threshold: float = THRESHOLD) -> bool:
    """At least the threshold and above what weights unrelated to the parameter give."""
    return value >= threshold and value > noise_floor


@dataclass
class PowerScaling:
    """Sensitivities per (parameter, component) and how the components were formed."""

    table: pd.DataFrame
    prior_groups: dict[str, list[str]]
    likelihood_components: dict[str, list[str]]
    k_hat: dict[str, float]
    notes: list[str] = field(default_factory=list)
    idata: xr.DataTree | None = None  # the DataTree the values were computed on (for drawing)


def group_variables(idata: xr.DataTree) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(prior group -> log_prior variables, likelihood component -> log_likelihood variables) of ``idata``."""
    groups: dict[str, list[str]] = {}
    for name in idata["log_prior"].data_vars:
        groups.setdefault(prior_group(name), []).append(name)
    stored = set(idata["log_likelihood"].data_vars)
    components = {label: [v for v in names if v in stored] for label, names in LIKELIHOOD_COMPONENTS.items()}
    unknown = stored - {v for names in LIKELIHOOD_COMPONENTS.values() for v in names}
    if unknown:
        components["other"] = sorted(unknown)
    return ({g: groups[g] for g in PRIOR_GROUP_ORDER if g in groups},
            {label: names for label, names in components.items() if names})


def _flatten(values: xr.Dataset) -> pd.Series:
    """One value per parameter label, e.g. ``depth_theta[3180]``."""
    out = {}
    for name, da in values.data_vars.items():
        if da.ndim == 0:
            out[name] = float(da)
            continue
        stacked = da.stack(element=da.dims)
        for index, value in zip(stacked["element"].to_numpy(), stacked.to_numpy()):
            label = ",".join(str(i) for i in np.atleast_1d(index))
            out[f"{name}[{label}]"] = float(value)
    return pd.Series(out)


def _total(idata: xr.DataTree, group: str, names: list[str]) -> xr.DataArray:
    """Per-draw total of a prior group's or likelihood component's log density (all psense uses)."""
    source = idata["log_likelihood" if group == "likelihood" else "log_prior"].to_dataset()[names]
    return source.to_stacked_array("element", sample_dims=SAMPLE_DIMS).sum("element")


def _k_hat(total: xr.DataArray) -> float:
    """Largest Pareto k of the power-scaling importance weights at both alphas."""
    return max(float(((alpha - 1) * total).azstats.pareto_khat(sample_dims=SAMPLE_DIMS, tail="right", log_weights=True))
               for alpha in ALPHAS)


def _sense(posterior: xr.DataTree, var_names: list[str], coords: dict | None, group: str, total: xr.DataArray) -> pd.Series:
    tree = xr.DataTree.from_dict({"posterior": posterior.to_dataset(),
                                  ("log_likelihood" if group == "likelihood" else "log_prior"): xr.Dataset({"total": total})})
    return _flatten(psense(tree, var_names=var_names, coords=coords, group=group, group_var_names=["total"],
                           alphas=ALPHAS, sample_dims=SAMPLE_DIMS))


def _noise_floor(posterior, var_names, coords, group, total: xr.DataArray, rng, permutations: int) -> pd.Series:
    """Largest sensitivity over ``permutations`` shuffles of the total across draws.

    Shuffling keeps the spread of the importance weights but breaks their link with the
    parameters, so what remains is the Monte Carlo noise of the estimate: measured on the real
    joint run (4000 draws) it is about 0.1 for the treaty items and vote agreement, whose totals
    vary by 20-30 log units between draws, i.e. above the paper's 0.05 threshold.
    """
    values = total.to_numpy().ravel()
    floors = [_sense(posterior, var_names, coords, group,
                     total.copy(data=rng.permutation(values).reshape(total.shape)))
              for _ in range(permutations)]
    return pd.concat(floors, axis=1).max(axis=1)


def compute_power_scaling(idata: xr.DataTree, var_names: list[str], coords: dict | None = None,
                          prior_groups: dict[str, list[str]] | None = None,
                          likelihood_components: dict[str, list[str]] | None = None,
                          threshold: float = THRESHOLD, seed: int = 0, permutations: int = PERMUTATIONS) -> PowerScaling:
    """Sensitivity of ``var_names`` (``coords`` selects elements) to each prior group and likelihood component.

    Rows: one per (parameter, component) plus an ``overall`` row per parameter (all top-level
    priors against all likelihood, as ``psense_summary``), each with its noise floor
    (:func:`_noise_floor`) and diagnosis; a value counts only when it is at least ``threshold``
    and above its noise floor. The prior side of a parameter counts when all top-level priors
    together or any top-level group does; the likelihood side likewise.
    """
    found_groups, found_components = group_variables(idata)
    prior_groups = prior_groups or found_groups
    likelihood_components = likelihood_components or found_components
    top_level = [v for g, names in prior_groups.items() if g != LATENT_GROUP for v in names]
    everything = [v for names in likelihood_components.values() for v in names]
    posterior, rng = idata["posterior"], np.random.default_rng(seed)

    def measured(group: str, names: list[str]) -> tuple[pd.Series, pd.Series, float]:
        total = _total(idata, group, names)
        return (_sense(posterior, var_names, coords, group, total),
                _noise_floor(posterior, var_names, coords, group, total, rng, permutations), _k_hat(total))

    prior, prior_floor, _ = measured("prior", top_level)
    likelihood, likelihood_floor, _ = measured("likelihood", everything)
    measurements, k_hat = [], {}
    for kind, components in (("prior", prior_groups), ("likelihood", likelihood_components)):
        for label, names in components.items():
            values, floor, k_hat[label] = measured(kind, names)
            measurements += [(p, label, kind, v, floor[p], is_sensitive(v, floor[p], threshold)) for p, v in values.items()]
    # a side counts when its total does or any of its parts does: the total of all likelihood sums
    # components whose noise swamps a component that alone is clearly informative
    prior_side = {p: is_sensitive(prior[p], prior_floor[p], threshold) for p in prior.index}
    likelihood_side = {p: is_sensitive(likelihood[p], likelihood_floor[p], threshold) for p in likelihood.index}
    for p, label, kind, _, _, counts in measurements:
        if kind == "likelihood":
            likelihood_side[p] |= counts
        elif label != LATENT_GROUP:
            prior_side[p] |= counts
    rows = [{"parameter": p, "component": OVERALL, "kind": "overall", "sensitivity": prior[p],
             "noise_floor": prior_floor[p], "likelihood_sensitivity": likelihood[p],
             "likelihood_noise_floor": likelihood_floor[p], "diagnosis": diagnose(prior_side[p], likelihood_side[p])}
            for p in prior.index]
    rows += [{"parameter": p, "component": label, "kind": kind, "sensitivity": v, "noise_floor": floor,
              "diagnosis": diagnose(counts, likelihood_side[p]) if kind == "prior" else diagnose(prior_side[p], counts)}
             for p, label, kind, v, floor, counts in measurements]
    table = pd.DataFrame(rows)
    table["k_hat"] = table["component"].map(k_hat)
    order = {p: i for i, p in enumerate(prior.index)}
    table = table.sort_values("parameter", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return PowerScaling(table, prior_groups, likelihood_components, k_hat)


def check_data_hash(run: RunData) -> None:
    """Refuse to rebuild a run's model from tables other than those it was fitted on."""
    digest, _ = data_hash(run.tables_dir, files=run_data_files(run.config))
    if digest != run.meta["data_hash"]:
        raise ValueError(f"{run.path}: the tables in {run.tables_dir} do not hash to the run's data hash "
                         f"({digest[:12]} vs {run.meta['data_hash'][:12]}); give the tables it was fitted on (--tables)")


def rebuild_model(run: RunData):
    """The run's PyMC model, rebuilt from its resolved config and the (hash-checked) tables."""
    from allypot.inference.config import model_options, priors_from_config
    from allypot.models.compose import build_contribution_model, build_joint_model

    check_data_hash(run)
    options, priors = model_options(run.config), priors_from_config(run.config)
    if run.mode == "joint":
        return build_joint_model(run.inputs, options, priors)
    # the regression alone; its potential (data) plays no part in the latent fields' prior
    return build_contribution_model(run.inputs, options, priors, np.zeros(len(run.inputs.rows)))


def complete_log_densities(run: RunData, progress: bool = False) -> tuple[xr.DataTree, list[str]]:
    """The run's DataTree with every log-density term power-scaling needs, and notes on what was done.

    A run folder made before the measurement components and latent-field totals were stored gets
    them computed from its stored posterior in its rebuilt model (no sampling).
    """
    idata, notes = run.idata, []
    absent = [g for g in ("log_likelihood", "log_prior") if g not in idata.children]
    if absent:
        raise ValueError(f"{run.path}: posterior.nc has no {' and no '.join(absent)} group; power-scaling needs both")
    stored_likelihood = set(idata["log_likelihood"].data_vars)
    stored_prior = set(idata["log_prior"].data_vars)
    posterior = run.posterior
    latent_stored = [v for v in posterior.data_vars if (v in LATENT_FIELDS or v.endswith("_offset"))]
    needs_measurement = run.mode == "joint" and not ({"treaty_items"} <= stored_likelihood
                                                     and stored_likelihood & {"vote_agreement", "ideal_points"})
    if not needs_measurement and set(latent_stored) <= stored_prior:
        return idata, notes
    started = time.perf_counter()
    model = rebuild_model(run)
    likelihood, prior = component_log_densities(posterior, model, progress)
    missing = [v for v in latent_variables(model) if v not in posterior.data_vars]
    if missing:
        notes.append(f"not stored in this run folder, so left out of the latent-field prior group: {', '.join(missing)}")
    idata = idata.copy()
    idata["log_likelihood"] = xr.DataTree(idata["log_likelihood"].to_dataset().merge(
        likelihood.drop_vars([v for v in likelihood.data_vars if v in stored_likelihood])))
    idata["log_prior"] = xr.DataTree(idata["log_prior"].to_dataset().merge(
        prior.drop_vars([v for v in prior.data_vars if v in stored_prior])))
    notes.append(f"computed from the stored posterior in the model rebuilt from config.toml (data hash checked, no "
                 f"sampling, {time.perf_counter() - started:.0f} s): "
                 f"{', '.join(sorted(set(likelihood.data_vars) - stored_likelihood) + sorted(set(prior.data_vars) - stored_prior))}")
    return idata, notes


def key_parameters(run: RunData, idata: xr.DataTree) -> tuple[list[str], dict]:
    """The effect and key parameters present in the run, and the coords selecting the US treaties' depth."""
    names = [p for p in KEY_PARAMETERS if p in idata["posterior"].data_vars]
    coords = {"alliance": run.us_alliances} if "depth_theta" in names else None
    return names, coords


def power_scaling_of_run(run_path: str | Path, tables_dir: Path, progress: bool = False) -> PowerScaling:
    """Open a run folder, complete its log densities if needed, and compute its sensitivities."""
    run = open_run(run_path, tables_dir)
    idata, notes = complete_log_densities(run, progress)
    names, coords = key_parameters(run, idata)
    result = compute_power_scaling(idata, names, coords)
    result.idata = idata
    if run.mode != "joint":
        notes.insert(0, f"{run.mode} run: only the contribution regression's likelihood belongs to this posterior "
                        "(the measurement was fitted in a separate posterior), so it is the only likelihood component")
    result.notes = notes + result.notes
    return result


def counted(table: pd.DataFrame, threshold: float = THRESHOLD) -> pd.Series:
    """Which rows' sensitivity counts (at least the threshold and above the noise floor)."""
    return (table["sensitivity"] >= threshold) & (table["sensitivity"] > table["noise_floor"])


def wide_tables(result: PowerScaling) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parameters x components: 'value (noise floor)' with the counted values in bold, and the diagnosis words."""
    rows = result.table[result.table["kind"] != "overall"]
    value = rows["sensitivity"].map("{:.3f}".format)
    cells = rows.assign(cell=value.where(~counted(rows), "**" + value + "**") + " (" + rows["noise_floor"].map("{:.3f}".format) + ")")
    columns = [*result.prior_groups, *result.likelihood_components]
    order = rows["parameter"].unique()

    def pivot(column: str) -> pd.DataFrame:
        wide = cells.pivot(index="parameter", columns="component", values=column)
        return wide.reindex(index=order, columns=[c for c in columns if c in wide.columns])

    return pivot("cell"), pivot("diagnosis")


def overall_table(result: PowerScaling) -> pd.DataFrame:
    overall = result.table[result.table["kind"] == "overall"]
    return overall[["parameter", "sensitivity", "noise_floor", "likelihood_sensitivity", "likelihood_noise_floor",
                    "diagnosis"]].rename(columns={"sensitivity": "prior", "noise_floor": "prior_floor",
                                                  "likelihood_sensitivity": "likelihood",
                                                  "likelihood_noise_floor": "likelihood_floor"})


def summary_lines(result: PowerScaling) -> list[str]:
    """One screen: the overall diagnosis of each parameter and the components whose sensitivity counts."""
    table = result.table.assign(counts=counted(result.table))
    lines = [f"{'parameter':28s} {'prior':>6s} {'lik.':>6s}  {'diagnosis':32s} sensitive to (value > threshold "
             f"{THRESHOLD} and noise floor)"]
    for parameter, rows in table.groupby("parameter", sort=False):
        overall = rows[rows["kind"] == "overall"].iloc[0]
        sensitive = rows[(rows["kind"] != "overall") & rows["counts"]]
        listed = ", ".join(f"{r.component} {r.sensitivity:.2f}" for r in sensitive.itertuples()) or "none"
        lines.append(f"{parameter:28s} {overall.sensitivity:6.3f} {overall.likelihood_sensitivity:6.3f}  "
                     f"{overall.diagnosis:32s} {listed}")
    unreliable = [label for label, k in result.k_hat.items() if k > K_HAT_LIMIT]
    if unreliable:
        lines.append(f"unreliable (Pareto k > {K_HAT_LIMIT} of the importance weights): {', '.join(unreliable)}")
    return lines


def markdown_report(result: PowerScaling, run_path: Path, seconds: float) -> str:
    components = [f"- prior group **{g}**: {', '.join(v)}" for g, v in result.prior_groups.items()]
    components += [f"- likelihood component **{c}**: {', '.join(v)}" for c, v in result.likelihood_components.items()]
    k_hat = pd.DataFrame({"component": list(result.k_hat), "k_hat": list(result.k_hat.values())})
    values, words = wide_tables(result)
    lines = [
        f"# Power-scaling sensitivity: {Path(run_path).name}",
        "",
        f"Kallioinen et al. (2024) via `arviz_stats.psense`, alphas {ALPHAS}, threshold {THRESHOLD}. A value counts "
        f"when it is at least the threshold and above its noise floor (the largest value over {PERMUTATIONS} "
        "shuffles of the component's log density across draws, which keep the importance weights' spread but not "
        f"their link with the parameter: a permutation test at level 1/{PERMUTATIONS + 1}). Each prior group is "
        "paired with the likelihood, each likelihood component with the top-level priors (the latent fields "
        "excluded, as the paper recommends for hierarchical models); a side counts when its total or any of its "
        "parts counts. "
        "Diagnoses: " + "; ".join(f'"{d}"' for d in DIAGNOSES) + f". Computed in {seconds:.0f} s.",
        "",
        *[f"Note: {n}" for n in result.notes],
        "",
        "## Overall: all top-level priors vs all likelihood",
        "",
        markdown_table(overall_table(result), floatfmt="{:.3f}"),
        "",
        "## By component: sensitivity (noise floor); bold = counts",
        "",
        markdown_table(values, index=True),
        "",
        "## By component: diagnosis",
        "",
        markdown_table(words, index=True),
        "",
        "## Components",
        "",
        *components,
        "",
        f"Pareto k of the importance weights (above {K_HAT_LIMIT}: that component's values are unreliable):",
        "",
        markdown_table(k_hat, floatfmt="{:.2f}"),
        "",
    ]
    return "\n".join(lines)


def draw_power_scaling(idata: xr.DataTree, result: PowerScaling, out: Path, var_names=("potential_effect",)) -> list[Path]:
    """One PNG per component: the posterior of ``var_names`` under power-scaling of that component
    (and of the opposite side's total), drawn by ``arviz_plots.plot_psense_dist``."""
    import matplotlib.pyplot as plt
    from arviz_plots import plot_psense_dist

    names = [v for v in var_names if v in idata["posterior"].data_vars]
    top_level = [v for g, vs in result.prior_groups.items() if g != LATENT_GROUP for v in vs]
    everything = [v for vs in result.likelihood_components.values() for v in vs]
    paths = []
    pairs = [(f"prior-{g}", vs, everything) for g, vs in result.prior_groups.items()]
    pairs += [(f"likelihood-{c}", top_level, vs) for c, vs in result.likelihood_components.items()]
    for label, prior_vars, likelihood_vars in pairs:
        plot = plot_psense_dist(idata, var_names=names, prior_var_names=prior_vars, likelihood_var_names=likelihood_vars,
                                sample_dims=SAMPLE_DIMS, alphas=PLOT_ALPHAS, backend="matplotlib")
        figure = plot.get_viz("figure")
        # above the figure (the layout engine keeps the panel titles where a suptitle would go)
        figure.text(0.01, 1.08, f"power-scaling the {label.replace('-', ' ', 1)} (and the opposite side's total)",
                    ha="left", va="bottom", fontsize="large")
        path = out / f"psense-{_slug(label)}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        paths.append(path)
    return paths


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()


def write_sensitivity(run_path: Path, tables_dir: Path, out: Path, progress: bool = False) -> tuple[PowerScaling, dict]:
    """Compute, draw and write: sensitivity.csv, sensitivity.md and psense-*.png in a new folder ``out``."""
    if out.exists():
        raise ValueError(f"{out} already exists; sensitivity writes into a new folder (give another --out)")
    started = time.perf_counter()
    result = power_scaling_of_run(run_path, tables_dir, progress)
    seconds = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=False)
    result.table.to_csv(out / "sensitivity.csv", index=False)
    (out / "sensitivity.md").write_text(markdown_report(result, run_path, seconds))
    pngs = draw_power_scaling(result.idata, result, out)
    return result, {"csv": out / "sensitivity.csv", "markdown": out / "sensitivity.md", "png": pngs,
                    "seconds": time.perf_counter() - started}
