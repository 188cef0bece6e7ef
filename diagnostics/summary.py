"""Headline numbers of a posterior and the checks that say whether they can be read.

One format everywhere (``fit``, ``compare``, ``summary.csv``): median and 90% equal-tailed
interval, because the hurdle family's effect on the expected share has heavy tails (a few
draws dominate its mean and SD), then P(> 0), R-hat, bulk and tail ESS.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from allypot.diagnostics.modes import ChainModes

HEADLINE = ("potential_effect", "beta", "logit_beta", "log_beta", "projection_slope", "projection_intercept", "sigma")
INTERVAL_PROB = 0.9
# Vehtari et al. (2021): rank-normalised split R-hat below 1.01, bulk ESS above 100 per chain
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100


def headline_summary(idata: xr.DataTree, var_names=HEADLINE, prob: float = INTERVAL_PROB) -> pd.DataFrame:
    """Median, equal-tailed interval, P(> 0), R-hat and bulk/tail ESS of the scalar headline terms."""
    post = idata["posterior"]
    present = [v for v in var_names if v in post.data_vars and set(post[v].dims) == {"chain", "draw"}]
    tail = (1 - prob) / 2
    rows = {}
    for name in present:
        draws = post[name].to_numpy()
        rows[name] = {
            "median": float(np.median(draws)),
            f"q{tail * 100:02.0f}": float(np.quantile(draws, tail)),
            f"q{(1 - tail) * 100:02.0f}": float(np.quantile(draws, 1 - tail)),
            "p_positive": float((draws > 0).mean()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    if present:
        diagnostics = az.summary(idata, var_names=present, kind="diagnostics", round_to="none")
        table = table.join(diagnostics[["r_hat", "ess_bulk", "ess_tail"]])
    table.index.name = "parameter"
    return table


def sampler_health(idata: xr.DataTree) -> dict:
    """Divergences, the worst R-hat and bulk ESS over every sampled parameter and which they are."""
    post = idata["posterior"]
    with np.errstate(invalid="ignore", divide="ignore"):  # constants (depth of non-allies) give NaN
        rhat = az.rhat(idata)
        ess = az.ess(idata, method="bulk")
    names = [v for v in rhat.data_vars if v in post.data_vars]
    worst_rhat = {v: float(np.nanmax(rhat[v].to_numpy())) for v in names}
    worst_ess = {v: float(np.nanmin(ess[v].to_numpy())) for v in names}
    stats = idata["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats.data_vars else stats.get("tree_depth")
    return {
        "chains": int(post.sizes["chain"]),
        "draws_per_chain": int(post.sizes["draw"]),
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "max_rhat": max(worst_rhat.values()),
        "max_rhat_parameter": max(worst_rhat, key=worst_rhat.get),
        "min_ess_bulk": min(worst_ess.values()),
        "min_ess_bulk_parameter": min(worst_ess, key=worst_ess.get),
        "mean_leapfrog_steps": float(np.asarray(steps).mean()) if steps is not None else float("nan"),
    }


def convergence_warnings(summary: pd.DataFrame, health: dict, modes: ChainModes | None = None,
                         within_fit_rhat: float | None = None) -> list[str]:
    """One line per failed check (R-hat, bulk ESS, divergences, chains in different modes).

    Cut pools fits made with different potentials, so spread between its "chains" is the
    point and pooled R-hat and ESS mean nothing: pass its worst R-hat within a single fit as
    ``within_fit_rhat`` and only that and the divergences are checked.
    """
    warnings = []
    if within_fit_rhat is not None:
        if within_fit_rhat > RHAT_MAX:
            warnings.append(f"worst R-hat within a single fit is {within_fit_rhat:.3f} (> {RHAT_MAX})")
    else:
        ess_min = ESS_PER_CHAIN_MIN * health["chains"]
        for name, row in summary.iterrows():
            if row["r_hat"] > RHAT_MAX:
                warnings.append(f"R-hat of {name} is {row['r_hat']:.3f} (> {RHAT_MAX}): the chains disagree")
            if row["ess_bulk"] < ess_min:
                warnings.append(f"bulk ESS of {name} is {row['ess_bulk']:.0f} (< {ess_min}: {ESS_PER_CHAIN_MIN} per chain)")
        if health["max_rhat"] > RHAT_MAX and health["max_rhat_parameter"] not in summary.index:
            warnings.append(f"R-hat of {health['max_rhat_parameter']} is {health['max_rhat']:.3f} (> {RHAT_MAX})")
        if modes is not None:
            for row in modes.table[modes.table["split"]].itertuples():
                warnings.append(f"chain means of {row.parameter} are {row.gap_sd:.1f} within-chain SDs apart: "
                                f"chains sit in different modes ({row.modes})")
    if health["divergences"]:
        warnings.append(f"{health['divergences']} divergent transitions: the sampler missed part of the posterior")
    return warnings


def format_warnings(warnings: list[str], what: str) -> str:
    """A block a reader cannot miss, or nothing when every check passed."""
    if not warnings:
        return ""
    lines = [f"WARNING: {what} failed {len(warnings)} convergence check(s); do not read it as a posterior summary:"]
    return "\n".join(lines + [f"  - {w}" for w in warnings])
