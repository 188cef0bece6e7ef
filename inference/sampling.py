"""One place that runs NUTS, whatever the backend, and adds what later checks need.

Every posterior leaves here with the pointwise log likelihood of the *contribution* part
(LOO, power-scaling of the likelihood) and the log prior of the parameters that have a
prior file entry (power-scaling by component), so diagnostics and sensitivity analyses never
need a refit.
"""

from __future__ import annotations

import time

import numpy as np
import pymc as pm
import xarray as xr
from allypot.models.contribution import FAMILY_TO_OUTCOME_VAR


def sample_model(model: pm.Model, sampler: dict, seed: int, progress: bool = True, quiet: bool = False) -> tuple[xr.DataTree, float]:
    """Run NUTS on ``model`` with the configured backend; return (posterior, seconds)."""
    started = time.perf_counter()
    idata = pm.sample(
        draws=sampler["draws"],
        tune=sampler["tune"],
        chains=sampler["chains"],
        cores=min(sampler["chains"], 2),
        random_seed=seed,
        nuts_sampler=sampler["backend"],
        target_accept=sampler["target_accept"],
        progressbar=progress,
        quiet=quiet,
        model=model,
        compute_convergence_checks=False,
        nuts_sampler_kwargs={"adaptation": sampler["adaptation"]} if sampler["backend"] == "nutpie" else None,
    )
    return idata, time.perf_counter() - started


def prior_variables(model: pm.Model) -> list[str]:
    """Free variables whose prior is set by a prior file: everything but the latent fields.

    The latent fields (theta, the preference walk, group-effect offsets) have fixed
    standard priors that identify the model; they are not what power-scaling should perturb.
    """
    latent = ("depth_theta", "pref_logit", "pref_ideal", "pref_ideal_us")
    return [v.name for v in model.free_RVs if v.name not in latent and not v.name.endswith("_offset")]


def add_log_densities(idata: xr.DataTree, model: pm.Model, family: str, progress: bool = False) -> xr.DataTree:
    """Add the contribution log likelihood and the parameters' log prior to ``idata``."""
    outcome = FAMILY_TO_OUTCOME_VAR[family]
    # PyMC cannot rewrite a model with custom initial values (the IRT's ordered cut-points
    # start spread out); initial values play no part in log densities, so lift them meanwhile
    initial = dict(model.rvs_to_initial_values)
    try:
        model.rvs_to_initial_values.update(dict.fromkeys(initial))
        pm.compute_log_likelihood(idata, var_names=[outcome], model=model, progressbar=progress)
        pm.compute_log_prior(idata, var_names=prior_variables(model), model=model, progressbar=progress)
    finally:
        model.rvs_to_initial_values.update(initial)
    return idata


def divergences(idata: xr.DataTree) -> int:
    return int(np.asarray(idata["sample_stats"]["diverging"]).sum())
