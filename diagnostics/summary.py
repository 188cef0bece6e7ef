"""Headline numbers of a posterior (computing only; drawing lives elsewhere)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

HEADLINE = ("potential_effect", "beta", "logit_beta", "log_beta", "projection_slope", "projection_intercept", "sigma")


def headline_summary(idata: xr.DataTree, var_names=HEADLINE) -> pd.DataFrame:
    """Mean, SD, 90% equal-tailed interval, bulk/tail ESS and R-hat of the scalar headline terms."""
    post = idata["posterior"]
    present = [v for v in var_names if v in post.data_vars]
    table = az.summary(idata, var_names=present, ci_prob=0.9, ci_kind="eti", round_to="none")
    return table


def sampler_health(idata: xr.DataTree) -> dict:
    """Divergences, max R-hat and min bulk ESS over every sampled parameter."""
    post = idata["posterior"]
    rhat = az.rhat(idata)
    ess = az.ess(idata, method="bulk")
    rhat_max = max(float(np.nanmax(rhat[v].to_numpy())) for v in rhat.data_vars if v in post.data_vars)
    ess_min = min(float(np.nanmin(ess[v].to_numpy())) for v in ess.data_vars if v in post.data_vars)
    stats = idata["sample_stats"]
    steps = stats["n_steps"] if "n_steps" in stats.data_vars else stats.get("tree_depth")
    return {
        "divergences": int(np.asarray(stats["diverging"]).sum()),
        "max_rhat": rhat_max,
        "min_ess_bulk": ess_min,
        "mean_leapfrog_steps": float(np.asarray(steps).mean()) if steps is not None else float("nan"),
    }


def interval(values: np.ndarray, prob: float = 0.9) -> tuple[float, float]:
    tail = (1 - prob) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))
