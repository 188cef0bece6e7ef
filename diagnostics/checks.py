"""Checks of one run's posterior: each returns a :class:`CheckResult`, so the verdict, the
report and the tests all read one list.

Statistics come from arviz-stats (rank-normalised split R-hat, bulk/tail ESS, E-BFMI);
what it lacks is written here: chain-mode splits (chains that settle in different places,
reported as their own failure rather than only as a high R-hat), where divergences
concentrate, the feedback of the outcome on the US treaties' depths, and whether depth ranks
NATO above the OAS Charter (the face-validity test of the measurement).

A check is *computed* here and *drawn* in :mod:`allypot.diagnostics.plots`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from allypot.diagnostics.modes import group_chains
from allypot.diagnostics.rundata import SAMPLE_DIMS, RunData

EFFECT = "potential_effect"
# sample_stats names of "this transition hit the tree-depth limit", by backend
TREEDEPTH_FLAGS = ("maxdepth_reached", "reached_max_treedepth")


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail limits of the checks (all configurable from the command line)."""

    rhat_max: float = 1.01
    ess_per_chain_min: float = 100.0
    # chain means further apart than this many pooled within-chain SDs = chains in different modes
    mode_separation_sd: float = 1.0
    divergences_max: int = 0
    treedepth_share_max: float = 0.0
    bfmi_min: float = 0.3  # from Betancourt (2016), as in Stan and ArviZ
    pareto_k_max: float = 0.7  # Vehtari et al. (2024): above 0.7 the PSIS estimate is unreliable
    ppc_p_min: float = 0.01  # two-sided: a posterior predictive p-value outside [p, 1 - p] fails
    feedback_shift_sd: float = 2.0  # a US treaty's depth moved by more than this many measurement SDs
    # P(NATO deeper than the OAS Charter) below this = a face-invalid measurement; the floor of the
    # identification test in tests/test_statistics.py (MODEL.md Part A)
    nato_above_oas_p_min: float = 0.9

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class CheckResult:
    """One check of one run. ``passed`` is None when the check is informational or could not run."""

    name: str
    passed: bool | None
    value: float | str | None
    threshold: float | str | None
    message: str
    advice: str = ""  # the likely cause and what to try, read when the check fails
    severity: str = "error"  # "error" fails the verdict, "warning" only marks it
    run: str = ""
    table: pd.DataFrame | None = field(default=None, repr=False)

    def row(self) -> dict:
        """The fields that go into a report table (not the detail table)."""
        return {k: v for k, v in asdict(self).items() if k != "table"}


def verdict(results: list[CheckResult]) -> str:
    """FAIL if any error-severity check failed, WARN if only warnings did, else PASS."""
    failed = [r for r in results if r.passed is False]
    if any(r.severity == "error" for r in failed):
        return "FAIL"
    return "WARN" if failed else "PASS"


# ---------------------------------------------------------------------------------------------
# convergence


def _element_labels(da: xr.DataArray) -> list[str]:
    dims = [d for d in da.dims if d not in SAMPLE_DIMS]
    if not dims:
        return [da.name]
    index = pd.MultiIndex.from_product([da[d].to_numpy() for d in dims]) if len(dims) > 1 else da[dims[0]].to_numpy()
    return [f"{da.name}[{','.join(map(str, k)) if isinstance(k, tuple) else k}]" for k in index]


# per-state-year deterministics (depth, pref_row, potential, expected_share) are functions of
# the parameters checked here; skipping them cuts the time of the convergence check by two thirds
DERIVED_DIMS = ("row",)


def compute_convergence(run: RunData, skip_dims=DERIVED_DIMS) -> pd.DataFrame:
    """R-hat (rank-normalised, split), bulk/tail ESS and MCSE of the mean of every posterior
    element, except variables with a dim in ``skip_dims``.

    For a cut run each statistic is computed within each fit's chains; R-hat is the worst fit's,
    ESS the sum over fits (independent fits add information).
    """
    post = run.posterior
    names = [v for v in post.data_vars if set(SAMPLE_DIMS) <= set(post[v].dims) and not set(skip_dims) & set(post[v].dims)]
    frames = []
    for name in names:
        rhats, bulk, tail, mean_ess = [], [], [], []
        for chains in run.chain_groups:
            part = post[[name]].isel(chain=chains)
            with warnings.catch_warnings():
                # constant elements (0/0 in R-hat) are dropped below by their zero SD
                warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
                rhats.append(azs.rhat(part, sample_dims=SAMPLE_DIMS)[name].to_numpy().ravel())
            bulk.append(azs.ess(part, sample_dims=SAMPLE_DIMS, method="bulk")[name].to_numpy().ravel())
            tail.append(azs.ess(part, sample_dims=SAMPLE_DIMS, method="tail")[name].to_numpy().ravel())
            mean_ess.append(azs.ess(part, sample_dims=SAMPLE_DIMS, method="mean")[name].to_numpy().ravel())
        sd = post[name].std(SAMPLE_DIMS).to_numpy().ravel()
        ess_mean = np.sum(mean_ess, axis=0)
        frames.append(pd.DataFrame({
            "parameter": name,
            "element": _element_labels(post[name]),
            "rhat": np.max(rhats, axis=0),
            "ess_bulk": np.sum(bulk, axis=0),
            "ess_tail": np.sum(tail, axis=0),
            "mcse_mean": sd / np.sqrt(ess_mean),
            "sd": sd,
        }))
    table = pd.concat(frames, ignore_index=True)
    # elements fixed by construction (depth of a state-year without a US alliance) have no spread
    return table[table["sd"] > 0].reset_index(drop=True)


def convergence_by_group(convergence: pd.DataFrame) -> pd.DataFrame:
    """One row per parameter group (posterior variable): worst R-hat and ESS, and where."""
    rows = []
    for name, part in convergence.groupby("parameter", sort=False):
        worst = part.loc[part["rhat"].idxmax()] if part["rhat"].notna().any() else part.iloc[0]
        rows.append({
            "parameter": name, "elements": len(part), "max_rhat": part["rhat"].max(), "worst_element": worst["element"],
            "min_ess_bulk": part["ess_bulk"].min(), "min_ess_tail": part["ess_tail"].min(),
            "max_mcse_over_sd": (part["mcse_mean"] / part["sd"]).max(),
        })
    return pd.DataFrame(rows).sort_values("max_rhat", ascending=False, ignore_index=True)


def _worst(table: pd.DataFrame, column: str, ascending: bool, n: int = 5) -> str:
    top = table.sort_values(column, ascending=ascending).head(n)
    return ", ".join(f"{e} ({v:.3g})" for e, v in zip(top["element"], top[column]))


# a cut run pools many short fits: its summed ESS must reach what a run of this many chains must
REFERENCE_CHAINS = 4


def required_ess(t: Thresholds, chains_per_fit: int, n_fits: int) -> float:
    """The ESS a run needs: per chain for one fit; for pooled cut fits, that of a REFERENCE_CHAINS run.

    Scaling by every pooled chain (40 fits x 2 chains = 80) would ask a cut run for 8,000 effective
    draws, twice the draws a default joint run has, although its Monte Carlo error is judged by the
    same standard."""
    if n_fits == 1:
        return t.ess_per_chain_min * chains_per_fit
    return t.ess_per_chain_min * max(REFERENCE_CHAINS, chains_per_fit)


def check_convergence(run: RunData, convergence: pd.DataFrame, t: Thresholds) -> list[CheckResult]:
    chains_per_fit = len(run.chain_groups[0])
    n_fits = len(run.chain_groups)
    ess_min = required_ess(t, chains_per_fit, n_fits)
    groups = convergence_by_group(convergence)
    scope = f" (within each of {n_fits} cut fits)" if n_fits > 1 else ""
    max_rhat = float(convergence["rhat"].max())
    over = convergence[convergence["rhat"] > t.rhat_max]
    results = [CheckResult(
        "convergence: R-hat", bool(max_rhat <= t.rhat_max), max_rhat, t.rhat_max,
        f"max rank-normalised R-hat {max_rhat:.3f}{scope}; {len(over)} of {len(convergence)} parameter elements "
        f"(per-state-year deterministics not counted) above "
        f"{t.rhat_max}" + (f"; worst: {_worst(over, 'rhat', False)}" if len(over) else ""),
        "chains disagree: if the multimodality check also fails they sit in different modes (a property of the "
        "posterior: strengthen the measurement or use the cut mode); otherwise run longer (more tune and draws) or "
        "reparameterise the worst parameters.",
        table=groups,
    )]
    for method in ("bulk", "tail"):
        column = f"ess_{method}"
        low = convergence[convergence[column] < ess_min]
        value = float(convergence[column].min())
        results.append(CheckResult(
            f"convergence: {method} ESS", bool(value >= ess_min), value, ess_min,
            f"min {method} ESS {value:.0f} (needs {ess_min:.0f}: {t.ess_per_chain_min:.0f} per chain"
            + (f" of a {REFERENCE_CHAINS}-chain run, summed over the {n_fits} cut fits" if n_fits > 1 else "") + "); "
            f"{len(low)} elements below" + (f"; worst: {_worst(low, column, True)}" if len(low) else ""),
            "too few effective draws: more draws, or a better geometry (non-centred group effects, mass-matrix "
            "adaptation 'low_rank'); a tiny ESS next to a high R-hat means chains stuck in separate modes.",
        ))
    return results


# ---------------------------------------------------------------------------------------------
# multimodality


def _chain_split(chain_means: np.ndarray, chain_sds: np.ndarray, threshold: float) -> tuple[float, list[list[int]]]:
    """Separation of the chain means in pooled within-chain SDs, and the chains grouped as
    ``diagnostics.modes`` groups them (a gap of more than ``threshold`` SDs starts a new group)."""
    pooled = float(np.sqrt(np.mean(chain_sds**2)))
    if pooled == 0:
        return 0.0, [list(range(len(chain_means)))]
    return float(np.ptp(chain_means) / pooled), group_chains(chain_means, pooled, threshold)


def compute_chain_modes(run: RunData, threshold: float) -> pd.DataFrame:
    """Per-chain means of the effect, the US treaties' depths and every scalar parameter,
    with how far apart the chains sit (in pooled within-chain SDs) and which chains cluster."""
    post = run.posterior
    series: list[tuple[str, bool, xr.DataArray]] = []
    for name in post.data_vars:
        da = post[name]
        if set(da.dims) == set(SAMPLE_DIMS):
            series.append((name, name == EFFECT, da))
    if "depth_theta" in post.data_vars and "alliance" in post["depth_theta"].dims:
        present = [a for a in run.us_alliances if a in post["alliance"].to_numpy()]
        for atopid in present:
            series.append((f"depth_theta[{atopid}]", True, post["depth_theta"].sel(alliance=atopid)))
    rows = []
    for label, key, da in series:
        for k, chains in enumerate(run.chain_groups):
            if len(chains) < 2:
                continue
            part = da.isel(chain=chains)
            means = part.mean("draw").to_numpy()
            sds = part.std("draw").to_numpy()
            separation, clusters = _chain_split(means, sds, threshold)
            rows.append({
                "quantity": label, "key": key, "fit": k,
                "chain_means": "; ".join(f"{m:.4g}" for m in means),
                "separation_sd": separation,
                "clusters": " | ".join(",".join(str(int(chains[c])) for c in cl) for cl in clusters),
                "split": len(clusters) > 1,
            })
    return pd.DataFrame(rows, columns=["quantity", "key", "fit", "chain_means", "separation_sd", "clusters", "split"])


def check_multimodality(run: RunData, modes: pd.DataFrame, t: Thresholds) -> CheckResult:
    name = "multimodality: chains in different places"
    if modes.empty:
        return CheckResult(name, None, None, t.mode_separation_sd, "fewer than two chains per fit: cannot compare chains",
                           severity="error")
    key = modes[modes["key"]]
    split_key = key[key["split"]]
    split_other = modes[~modes["key"] & modes["split"]]
    value = float(key["separation_sd"].max()) if len(key) else float("nan")
    if len(split_key):
        example = split_key.sort_values("separation_sd", ascending=False).iloc[0]
        message = (f"{len(split_key)} of {len(key)} key quantities (the effect and the US treaties' depths) have chains "
                   f"in separate places, up to {value:.1f} within-chain SDs apart: {', '.join(split_key['quantity'])}. "
                   f"E.g. {example['quantity']}: chain means {example['chain_means']}, chain clusters {example['clusters']}.")
    else:
        message = f"chain means of the effect and the US treaties' depths lie within {value:.2f} within-chain SDs"
    if len(split_other):
        message += f" Other parameters that split: {', '.join(split_other['quantity'].head(10))}."
    return CheckResult(
        name, not len(split_key), value, t.mode_separation_sd, message,
        "the posterior has several modes and each chain found one: more draws will not fix it. Look at which "
        "treaties' depths split (README: NATO and the OAS Charter traded places before the tenth item), strengthen their measurement (more "
        "items, ordered priors) or report the cut posterior; several seeds show how much mass each mode gets.",
        table=modes,
    )


# ---------------------------------------------------------------------------------------------
# sampler health


def _flat(da: xr.DataArray) -> np.ndarray:
    return da.transpose("chain", "draw", ...).to_numpy().reshape(da.sizes["chain"] * da.sizes["draw"], -1)


def compute_divergence_location(run: RunData) -> pd.DataFrame:
    """Standardised difference between divergent and other draws for each scalar parameter and
    US treaty depth: large values say where in the posterior the divergences concentrate."""
    post = run.posterior
    diverging = run.group("sample_stats")["diverging"].transpose("chain", "draw").to_numpy().ravel().astype(bool)
    if not diverging.any():
        return pd.DataFrame(columns=["quantity", "divergent_mean", "other_mean", "shift_sd"])
    columns = {name: _flat(post[name])[:, 0] for name in post.data_vars if set(post[name].dims) == set(SAMPLE_DIMS)}
    if "depth_theta" in post.data_vars:
        theta = post["depth_theta"]
        for atopid in [a for a in run.us_alliances if a in theta["alliance"].to_numpy()]:
            columns[f"depth_theta[{atopid}]"] = _flat(theta.sel(alliance=atopid))[:, 0]
    rows = []
    for label, values in columns.items():
        sd = values.std()
        if sd == 0:
            continue
        rows.append({"quantity": label, "divergent_mean": values[diverging].mean(), "other_mean": values[~diverging].mean(),
                     "shift_sd": (values[diverging].mean() - values[~diverging].mean()) / sd})
    table = pd.DataFrame(rows)
    return table.reindex(table["shift_sd"].abs().sort_values(ascending=False).index).reset_index(drop=True)


def check_sampler(run: RunData, t: Thresholds) -> list[CheckResult]:
    stats = run.group("sample_stats")
    n = stats.sizes["chain"] * stats.sizes["draw"]
    results = []
    n_div = int(stats["diverging"].sum())
    location = compute_divergence_location(run)
    where = ""
    if len(location):
        top = location.head(3)
        where = " They concentrate where " + ", ".join(f"{q} is {s:+.1f} SD off" for q, s in zip(top["quantity"], top["shift_sd"])) + "."
    results.append(CheckResult(
        "sampler: divergences", n_div <= t.divergences_max, n_div, t.divergences_max,
        f"{n_div} divergent transitions of {n} ({100 * n_div / n:.2f}%).{where}",
        "the sampler met curvature it cannot follow (a funnel or a hard boundary) near the parameters named: "
        "non-centre their group effects, raise target_accept (0.95-0.99), or tighten weakly identified priors.",
        table=location,
    ))
    flag = next((f for f in TREEDEPTH_FLAGS if f in stats.data_vars), None)
    if flag is None:
        results.append(CheckResult("sampler: tree depth", None, None, t.treedepth_share_max,
                                   "the sample stats hold no tree-depth saturation flag", severity="warning"))
    else:
        share = float(stats[flag].mean())
        results.append(CheckResult(
            "sampler: tree depth", share <= t.treedepth_share_max, share, t.treedepth_share_max,
            f"{100 * share:.2f}% of transitions hit the maximum tree depth",
            "trajectories were cut short: the step size is small relative to the posterior's scale, usually from "
            "strong correlations or varying curvature; try adaptation 'low_rank' or reparameterise.",
            severity="warning",
        ))
    if "energy" in stats.data_vars:
        bfmi = azs.bfmi(run.idata)["energy"].to_numpy().ravel()
        low = np.flatnonzero(bfmi < t.bfmi_min)
        results.append(CheckResult(
            "sampler: E-BFMI", not len(low), float(bfmi.min()), t.bfmi_min,
            "E-BFMI per chain: " + ", ".join(f"{b:.2f}" for b in bfmi)
            + (f"; chains {', '.join(map(str, low))} below {t.bfmi_min}" if len(low) else ""),
            "the momentum resampling explores the energy levels poorly (heavy tails or a funnel): reparameterise "
            "the hierarchical scales, or consider stronger priors on them.",
        ))
    return results


# ---------------------------------------------------------------------------------------------
# feedback of the outcome on the measures


def compute_us_feedback(run: RunData) -> pd.DataFrame | None:
    """Joint vs measurement-only posterior of each US treaty's depth and of the preference
    paths; None when the run has no measurement posterior to compare with."""
    from allypot.diagnostics.feedback import compute_feedback

    measurement = run.group("measurement")
    post = run.posterior
    if measurement is None or "depth_theta" not in post.data_vars or "depth_theta" not in measurement.data_vars:
        return None
    shared = [q for q in ("pref_row", "potential") if q in post.data_vars and q in measurement.data_vars]
    joint = xr.DataTree.from_dict({"posterior": post})
    only = xr.DataTree.from_dict({"posterior": measurement})
    return compute_feedback(joint, only, run.us_alliances, quantities=shared)


def check_feedback(run: RunData, feedback: pd.DataFrame | None, t: Thresholds) -> CheckResult:
    name = "feedback: outcome moved the US treaties' depths"
    if feedback is None:
        return CheckResult(name, None, None, t.feedback_shift_sd,
                           f"not applicable: a {run.mode} run has no joint posterior of the measures to compare",
                           severity="warning")
    theta = feedback[feedback["quantity"] == "depth_theta"]
    moved = theta[theta["shift_sd"].abs() > t.feedback_shift_sd]
    value = float(theta["shift_sd"].abs().max())
    pref = feedback[feedback["quantity"] == "pref_row"]
    pref_text = (f"; {int((pref['shift_sd'].abs() > t.feedback_shift_sd).sum())} of {len(pref)} preference values moved "
                 f"more than {t.feedback_shift_sd} SDs") if len(pref) else ""
    return CheckResult(
        name, not len(moved), value, t.feedback_shift_sd,
        f"{len(moved)} of {len(theta)} US treaties' depths moved more than {t.feedback_shift_sd} measurement SDs "
        "from their measurement-only posterior"
        + (": " + ", ".join(f"{int(e)} ({s:+.1f})" for e, s in zip(moved["element"], moved["shift_sd"])) if len(moved) else "")
        + pref_text,
        "the contribution outcome is rewriting the measures (MODEL.md 'Feedback between parts'): read the cut "
        "posterior beside the joint one; if a treaty's depth flips, its measurement needs more information.",
        severity="warning", table=feedback,
    )


# ---------------------------------------------------------------------------------------------
# face validity of the depth measurement

# ATOP ids of MODEL.md Part A: with Benson & Clinton's nine items the posterior can rank the OAS
# Charter above NATO, and in exactly that case the effect changes sign
NATO, OAS_CHARTER = 3180, 3150
# groups that can hold draws of depth_theta, the run's own first: a joint run's posterior; cut,
# plug-in and SMI runs keep their (thinned) measurement-stage posterior in "measurement"
DEPTH_GROUPS = {"posterior": "the run's posterior", "measurement": "the run's measurement-stage posterior"}


@dataclass(frozen=True)
class DepthOrder:
    """How surely a run's depth ranks NATO above the OAS Charter."""

    p_nato_above_oas: float
    treaties: pd.DataFrame  # treaty, atopid, posterior mean and SD of theta
    group: str  # the DataTree group the draws came from (a key of DEPTH_GROUPS)
    draws: int


def compute_depth_order(idata: xr.DataTree) -> DepthOrder | None:
    """P(theta_NATO > theta_OAS Charter) over the draws of ``depth_theta``, and each treaty's
    posterior mean and SD; None when the run keeps no draws of both treaties' depth.

    Takes the DataTree, not a RunData, so the grid can read it from a lazily opened run folder
    (only ``depth_theta`` is loaded)."""
    group = next((g for g in DEPTH_GROUPS if g in idata.children and "depth_theta" in idata[g].data_vars), None)
    if group is None:
        return None
    theta = idata[group]["depth_theta"]
    if "alliance" not in theta.dims or not np.isin([NATO, OAS_CHARTER], theta["alliance"].to_numpy()).all():
        return None
    nato, oas = theta.sel(alliance=NATO), theta.sel(alliance=OAS_CHARTER)
    treaties = pd.DataFrame([
        {"treaty": label, "atopid": atopid, "mean": float(draws.mean()), "sd": float(draws.std())}
        for label, atopid, draws in (("NATO", NATO, nato), ("OAS Charter", OAS_CHARTER, oas))
    ])
    return DepthOrder(float((nato > oas).mean()), treaties, group, int(nato.size))


def check_depth_order(run: RunData, order: DepthOrder | None, t: Thresholds) -> CheckResult:
    name = "measurement: NATO deeper than the OAS Charter"
    if order is None:
        return CheckResult(name, None, None, t.nato_above_oas_p_min,
                           f"not applicable: the {run.mode} run keeps no draws of the depth of NATO ({NATO}) and "
                           f"the OAS Charter ({OAS_CHARTER})")
    nato, oas = (order.treaties.set_index("atopid").loc[a] for a in (NATO, OAS_CHARTER))
    return CheckResult(
        name, order.p_nato_above_oas >= t.nato_above_oas_p_min, order.p_nato_above_oas, t.nato_above_oas_p_min,
        f"NATO ({NATO}) deeper than the OAS Charter ({OAS_CHARTER}) in {100 * order.p_nato_above_oas:.0f}% of "
        f"{order.draws} draws of {DEPTH_GROUPS[order.group]} (theta {nato['mean']:.2f} +- {nato['sd']:.2f} vs "
        f"{oas['mean']:.2f} +- {oas['sd']:.2f})",
        "the measurement does not rank NATO above the OAS Charter, a face-invalid order (MODEL.md Part A); an "
        "effect fitted on it rests on it (with the nine Benson & Clinton items the effect turns positive in exactly "
        "that case). Keep the institutionalisation item (model.items = \"with_institutions\"); in a joint run also "
        "look at the multimodality check, since the outcome may be deciding the order.",
        table=order.treaties,
    )
