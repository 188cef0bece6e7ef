"""Posterior predictive checks and LOO of a stored run, without refitting.

The model is rebuilt from the run's resolved config and the bundled tables, and
``pm.sample_posterior_predictive`` is run on (a thinned copy of) the stored posterior:

- joint: the joint model, so the contribution outcome, the vote agreement counts and the
  treaty items all get replicated data;
- cut: the contribution model, once per cut fit with that fit's measurement draw of potential;
- plug-in: the contribution model with the two-step potential.

Test statistics (share of zeros, maximum, mean of the outcome; agreement rate and its spread
across state-years; mean code of each treaty item) are compared with their replicated
distribution by a posterior predictive p-value ``P(T(y_rep) >= T(y))``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import stats as scipy_stats

from allypot.diagnostics.checks import CheckResult, Thresholds
from allypot.diagnostics.rundata import RunData, potential_draws


@dataclass
class Predictive:
    """Replicated data (chain, draw, ...) and the observed data of every observed variable."""

    replicated: xr.Dataset
    observed: xr.Dataset
    draws: np.ndarray  # the posterior draws the replications come from
    outcome: str


def _outcome_var(run: RunData) -> str:
    from allypot.models.contribution import FAMILY_TO_OUTCOME_VAR

    return FAMILY_TO_OUTCOME_VAR[run.family]


def thinned_draws(run: RunData, max_draws: int) -> np.ndarray:
    """Evenly spaced draw indices, at most ``max_draws`` per chain."""
    n = run.posterior.sizes["draw"]
    return np.unique(np.linspace(0, n - 1, min(n, max_draws)).round().astype(int))


def _observed(model: pm.Model) -> xr.Dataset:
    return xr.Dataset({
        rv.name: (model.named_vars_to_dims.get(rv.name) or [f"{rv.name}_dim_0"], np.asarray(model.rvs_to_values[rv].data))
        for rv in model.observed_RVs
    })


def _replicate(model: pm.Model, posterior: xr.Dataset, var_names: list[str], seed: int) -> xr.Dataset:
    """Replicate ``var_names`` from the stored draws. Every free variable in the posterior is frozen:
    the sampler coordinates (e.g. ``log_intercept_orth``) depend on the potential data that a
    cut or plug-in replication swaps in, and their stored values are the ones sampled with it."""
    frozen = [rv.name for rv in model.free_RVs if rv.name in posterior]
    tree = pm.sample_posterior_predictive(
        xr.DataTree.from_dict({"posterior": posterior}), model=model, var_names=var_names, random_seed=seed,
        freeze_vars=frozen, progressbar=False,
    )
    return tree["posterior_predictive"].to_dataset()


def compute_predictive(run: RunData, max_draws: int = 200, seed: int = 0) -> Predictive:
    """Replicate every observed variable the run's mode can speak for."""
    from allypot.inference.config import model_options, priors_from_config
    from allypot.models.compose import build_contribution_model, build_joint_model

    inputs, options, priors = run.inputs, model_options(run.config), priors_from_config(run.config)
    draws = thinned_draws(run, max_draws)
    posterior = run.posterior.isel(draw=draws)
    if run.mode == "joint":
        model = build_joint_model(inputs, options, priors)
        names = [rv.name for rv in model.observed_RVs]
        return Predictive(_replicate(model, posterior, names, seed), _observed(model), draws, _outcome_var(run))
    potential = potential_draws(run)
    model = build_contribution_model(inputs, options, priors, potential.isel(chain=0, draw=0).to_numpy())
    names = [rv.name for rv in model.observed_RVs]
    parts = []
    for k, chains in enumerate(run.chain_groups):
        with model:
            pm.set_data({"potential": potential.isel(chain=int(chains[0]), draw=0).to_numpy()})
        parts.append(_replicate(model, posterior.isel(chain=chains), names, seed + k))
    replicated = xr.concat(parts, dim="chain").assign_coords(chain=posterior["chain"])
    return Predictive(replicated, _observed(model), draws, _outcome_var(run))


def share_scale(run: RunData, predictive: Predictive) -> tuple[np.ndarray, np.ndarray]:
    """Observed and replicated outcome on the share scale (the Gaussian family models a z-score)."""
    y = predictive.observed[predictive.outcome].to_numpy()
    y_rep = predictive.replicated[predictive.outcome].transpose("chain", "draw", ...).to_numpy()
    y_rep = y_rep.reshape(-1, y.size)
    if predictive.outcome == "share_z":
        outcome = run.inputs.outcome
        centre, scale = outcome.mean(), outcome.std()
        return y * scale + centre, y_rep * scale + centre
    return y, y_rep


def _p_value(observed: float, replicated: np.ndarray) -> float:
    return float(np.mean(replicated >= observed))


def compute_ppc_statistics(run: RunData, predictive: Predictive) -> tuple[pd.DataFrame, dict[tuple[str, str], np.ndarray]]:
    """Observed test statistics, their replicated mean and 90% interval, and p-values; and the
    replicated statistics themselves, keyed by (part, statistic), for the figure."""
    rows, replicated_by_statistic = [], {}

    def add(part, statistic, observed, replicated):
        rows.append({"part": part, "statistic": statistic, "observed": float(observed),
                     "replicated_mean": float(np.mean(replicated)), "replicated_q05": float(np.quantile(replicated, 0.05)),
                     "replicated_q95": float(np.quantile(replicated, 0.95)), "p_value": _p_value(observed, replicated)})
        replicated_by_statistic[(part, statistic)] = np.asarray(replicated)

    y, y_rep = share_scale(run, predictive)
    add("outcome", "share of zeros", np.mean(y <= 0), np.mean(y_rep <= 0, axis=1))
    add("outcome", "maximum", y.max(), y_rep.max(axis=1))
    add("outcome", "mean", y.mean(), y_rep.mean(axis=1))
    rep = predictive.replicated
    if "pref_agree" in rep.data_vars:
        inputs = run.inputs
        n = inputs.n_votes[np.nonzero(inputs.n_votes > 0)]
        k = predictive.observed["pref_agree"].to_numpy()
        k_rep = rep["pref_agree"].transpose("chain", "draw", ...).to_numpy().reshape(-1, k.size)
        add("votes", "agreement rate", k.sum() / n.sum(), k_rep.sum(axis=1) / n.sum())
        add("votes", "SD of agreement across state-years", (k / n).std(), (k_rep / n).std(axis=1))
    for name in predictive.observed.data_vars:
        if name.startswith("depth_item_") and name in rep.data_vars:
            x = predictive.observed[name].to_numpy()
            x_rep = rep[name].transpose("chain", "draw", ...).to_numpy().reshape(-1, x.size)
            add("treaty items", f"mean code of {name.removeprefix('depth_item_')}", x.mean(), x_rep.mean(axis=1))
    return pd.DataFrame(rows), replicated_by_statistic


def check_ppc(run: RunData, statistics: pd.DataFrame, t: Thresholds) -> list[CheckResult]:
    results = []
    for part, rows in statistics.groupby("part", sort=False):
        extreme = rows[(rows["p_value"] < t.ppc_p_min) | (rows["p_value"] > 1 - t.ppc_p_min)]
        value = float(np.min(np.minimum(rows["p_value"], 1 - rows["p_value"])))
        results.append(CheckResult(
            f"fit: posterior predictive, {part}", not len(extreme), value, t.ppc_p_min,
            "; ".join(f"{s} observed {o:.4g} vs replicated {lo:.4g}..{hi:.4g} (p = {p:.3f})" for s, o, lo, hi, p in
                      zip(rows["statistic"], rows["observed"], rows["replicated_q05"], rows["replicated_q95"], rows["p_value"])),
            "the model cannot reproduce these features of the data: for the outcome, the family (hurdle vs Gaussian) or "
            "missing covariates; for votes or treaty items, the measurement model (walk scale, item categories).",
            severity="error" if part == "outcome" else "warning", table=rows.reset_index(drop=True),
        ))
    return results


# ---------------------------------------------------------------------------------------------
# LOO


def compute_loo(run: RunData):
    """PSIS-LOO of the contribution part (log likelihood stored in the run)."""
    outcome = _outcome_var(run)
    log_lik = run.group("log_likelihood")
    if log_lik is None or outcome not in log_lik.data_vars:
        return None
    tree = xr.DataTree.from_dict({"posterior": run.posterior[[v for v in run.posterior.data_vars][:1]],
                                  "log_likelihood": log_lik[[outcome]]})
    with warnings.catch_warnings():
        # high Pareto k is reported by check_loo with the state-years behind it
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto")
        return azs.loo(tree, pointwise=True, var_name=outcome)


def pareto_k_table(run: RunData, loo) -> pd.DataFrame:
    """Pareto k of every state-year, labelled with the state and year behind it."""
    table = run.row_labels.copy()
    table["pareto_k"] = np.asarray(loo.pareto_k).ravel()
    return table.sort_values("pareto_k", ascending=False, ignore_index=True)


def _name_rows(table: pd.DataFrame, n: int = 15) -> str:
    """'GBR 2003 (0.85), ...' for the first ``n`` rows, and how many more."""
    top = table.head(n)
    named = ", ".join(f"{s} {y} ({k:.2f})" for s, y, k in zip(top["stateabb"], top["year"], top["pareto_k"]))
    return named + (f" and {len(table) - n} more" if len(table) > n else "")


def check_loo(run: RunData, loo, t: Thresholds) -> CheckResult:
    name = "LOO: Pareto k"
    if loo is None:
        return CheckResult(name, None, None, t.pareto_k_max, "no contribution log likelihood in the run")
    table = pareto_k_table(run, loo)
    # with few draws PSIS needs a lower k to be reliable: 1 - 1 / log10(S) (Vehtari et al. 2024)
    limit = min(t.pareto_k_max, float(loo.good_k))
    high = table[table["pareto_k"] > limit]
    return CheckResult(
        name, not len(high), float(table["pareto_k"].max()), limit,
        f"elpd_loo {loo.elpd:.1f} (SE {loo.se:.1f}), p_loo {loo.p:.1f}; {len(high)} of {len(table)} state-years with "
        f"k > {limit:.2f}" + (": " + _name_rows(high) if len(high) else ""),
        "these state-years dominate their own fit (often a state's only positive contribution next to its own country "
        "effect): LOO is unreliable there; use moment matching or K-fold, and ask whether the family fits them.",
        severity="warning", table=table,
    )


def compute_loo_pit(run: RunData, predictive: Predictive, seed: int = 0) -> np.ndarray:
    """LOO-PIT of the outcome on the thinned draws (randomised at the zeros, which are ties)."""
    outcome = predictive.outcome
    draws = predictive.draws
    tree = xr.DataTree.from_dict({
        "posterior": run.posterior[[v for v in run.posterior.data_vars][:1]].isel(draw=draws),
        "posterior_predictive": predictive.replicated[[outcome]].assign_coords(draw=run.posterior["draw"][draws]),
        "observed_data": predictive.observed[[outcome]],
        "log_likelihood": run.group("log_likelihood")[[outcome]].isel(draw=draws),
    })
    return np.asarray(azs.loo_pit(tree, var_names=[outcome], random_state=seed)[outcome]).ravel()


def check_loo_pit(pit: np.ndarray, t: Thresholds) -> CheckResult:
    test = scipy_stats.kstest(pit, "uniform")
    return CheckResult(
        "fit: LOO-PIT uniformity", bool(test.pvalue >= t.ppc_p_min), float(test.pvalue), t.ppc_p_min,
        f"Kolmogorov-Smirnov distance of the LOO-PIT values from uniform {test.statistic:.3f} (p = {test.pvalue:.3g}); "
        f"{np.mean(pit < 0.05):.1%} below 0.05, {np.mean(pit > 0.95):.1%} above 0.95",
        "a U shape means the predictive distributions are too narrow (overdispersion the model lacks), a hump too "
        "wide, a slope a bias; see the LOO-PIT figure.",
        severity="warning",
    )
