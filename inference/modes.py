"""The four ways to estimate the alliance-potential effect.

- ``joint``: one posterior over Parts A-D; measurement uncertainty and the outcome's
  feedback on the measures both reach ``potential_effect``.
- ``cut`` (modular): the measurement posterior (Parts A-C) is fitted alone, then the
  contribution regression is fitted once per measurement draw of ``potential`` and the
  posteriors are pooled. Uncertainty flows forward, feedback is cut.
- ``smi`` (semi-modular, between cut and joint): as cut, but the measurement posterior of
  stage one feels the outcome with weight ``model.eta`` (0: cut, 1: joint); see :func:`run_smi`.
- ``plugin``: the published two-step: posterior means of depth and preference, the
  projection on those point estimates, one regression. No measurement uncertainty.

All four have the signature ``(inputs, options, priors, config, measurement=None,
progress=True) -> ModeResult``; ``measurement`` lets cut and plug-in share one measurement
fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import nutpie
import pymc as pm
import xarray as xr
from allypot.inference.sampling import add_log_densities, divergences, run_guarded, sample_model
from allypot.models.compose import (
    ModelOptions,
    build_contribution_model,
    build_joint_model,
    build_measurement_model,
    build_smi_stage_one_model,
)
from allypot.models.inputs import ModelInputs
from allypot.models.potential import plugin_estimate
from tqdm.auto import tqdm


# measurement-posterior quantities a cut or plug-in run keeps (group "measurement"), so the
# outcome's feedback and the plug-in potential can be recomputed from the folder, no refit
MEASUREMENT_KEPT = ("depth_theta", "depth", "pref_row", "potential", "projection_slope", "projection_intercept")
# that group serves means and SDs (feedback, plug-in potential): every k-th draw down to about
# this many per chain keeps them to a few percent of Monte Carlo error at a quarter of the size
MEASUREMENT_DRAWS_PER_CHAIN = 250


def announce(progress: bool, message: str) -> None:
    """Say what a long step without a progress bar is doing (compiling, log densities, saving)."""
    if progress:
        print(f"    {message}", flush=True)


def _sampling_plan(sampler: dict) -> str:
    return (f"{sampler['chains']} chains x {sampler['draws']} draws after {sampler['tune']} tuning steps, "
            f"{sampler['backend']}")


@dataclass
class ModeResult:
    idata: xr.DataTree
    timings: dict[str, float] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def fit_measurement(inputs: ModelInputs, options: ModelOptions, priors: dict, config: dict, progress: bool = True) -> ModeResult:
    """Fit Parts A-C alone (the first stage of the cut and plug-in modes)."""
    model = build_measurement_model(inputs, options, priors)
    announce(progress, f"compiling the measurement model (about a minute), then {_sampling_plan(config['sampler'])}")
    idata, seconds = sample_model(model, config["sampler"], config["run"]["seed"], progress)
    return ModeResult(idata, {"measurement_sampling_s": seconds}, {"measurement_divergences": divergences(idata)})


def run_joint(inputs, options, priors, config, measurement=None, progress=True) -> ModeResult:
    model = build_joint_model(inputs, options, priors)
    announce(progress, f"compiling the joint model (one to two minutes), then {_sampling_plan(config['sampler'])}")
    idata, seconds = sample_model(model, config["sampler"], config["run"]["seed"], progress)
    announce(progress, "computing the pointwise log likelihood and the log prior of every draw")
    add_log_densities(idata, model, options.family)
    return ModeResult(idata, {"sampling_s": seconds}, {"divergences": divergences(idata)})


def run_plugin(inputs, options, priors, config, measurement=None, progress=True) -> ModeResult:
    measurement = measurement or fit_measurement(inputs, options, priors, config, progress)
    estimate = plugin_estimate(measurement.idata["posterior"], inputs.us_ally, options.projection)
    model = build_contribution_model(inputs, options, priors, estimate.potential)
    idata, seconds = sample_model(model, config["sampler"], config["run"]["seed"], progress)
    add_log_densities(idata, model, options.family)
    attach_measurement(idata, measurement)
    return ModeResult(
        idata,
        measurement.timings | {"sampling_s": seconds},
        measurement.info | {"divergences": divergences(idata)},
    )


class RegressionSampler:
    """Samples the contribution model for one potential after another.

    With nutpie the model is compiled once and only the ``potential`` data are swapped
    (``with_data``): a cut fit over 40 measurement draws then costs 40 short samplings
    instead of 40 compilations. Other backends go through ``pm.sample`` each time.
    """

    def __init__(self, model: pm.Model, sampler: dict):
        self.model, self.sampler = model, sampler
        self.compiled = (
            nutpie.compile_pymc_model(model, freeze_model=False) if sampler["backend"] == "nutpie" else None
        )

    def __call__(self, potential: np.ndarray, seed: int) -> tuple[xr.DataTree, float]:
        with self.model:
            pm.set_data({"potential": potential})
        if self.compiled is None:
            return sample_model(self.model, self.sampler, seed, progress=False, quiet=True)
        started = time.perf_counter()
        idata = run_guarded(lambda: nutpie.sample(
            self.compiled.with_data(potential=potential),
            draws=self.sampler["draws"], tune=self.sampler["tune"], chains=self.sampler["chains"],
            cores=min(self.sampler["chains"], 2), seed=seed, progress_bar=False, save_warmup=False,
            target_accept=self.sampler["target_accept"], adaptation=self.sampler["adaptation"],
        ), self.model, self.sampler["chains"], self.sampler["draws"])
        idata["observed_data"] = xr.DataTree(xr.Dataset({
            rv.name: (self.model.named_vars_to_dims.get(rv.name), self.model.rvs_to_values[rv].data)
            for rv in self.model.observed_RVs
        }))
        return idata, time.perf_counter() - started


def run_cut(inputs, options, priors, config, measurement=None, progress=True) -> ModeResult:
    """Pool regression posteriors over ``cut.measurement_draws`` draws of potential."""
    measurement = measurement or fit_measurement(inputs, options, priors, config, progress)
    return regression_per_draw(inputs, options, priors, config, measurement, progress)


def regression_per_draw(inputs, options, priors, config, stage_one: ModeResult, progress=True) -> ModeResult:
    """The second stage of cut and SMI: the regression given each of ``cut.measurement_draws``
    draws of potential from ``stage_one``, the fits pooled into one posterior."""
    potentials = stage_one.idata["posterior"]["potential"].stack(sample=("chain", "draw")).transpose("sample", "row")
    cut = config["cut"]
    rng = np.random.default_rng(config["run"]["seed"])
    n_fits = min(cut["measurement_draws"], potentials.sizes["sample"])
    picks = np.sort(rng.choice(potentials.sizes["sample"], size=n_fits, replace=False))
    model = build_contribution_model(inputs, options, priors, potentials.isel(sample=picks[0]).to_numpy())
    announce(progress, f"compiling the contribution regression once for {n_fits} fits "
                       f"(2 chains x {cut['draws_per_fit']} draws after {cut['tune_per_fit']} tuning steps each)")
    sampler = RegressionSampler(model, dict(config["sampler"], draws=cut["draws_per_fit"], tune=cut["tune_per_fit"], chains=2))
    parts, seconds, max_rhat = [], 0.0, 0.0
    for k, pick in enumerate(tqdm(picks, desc="regression per measurement draw", disable=not progress)):
        idata, s = sampler(potentials.isel(sample=pick).to_numpy(), config["run"]["seed"] + k + 1)
        add_log_densities(idata, model, options.family)
        max_rhat = max(max_rhat, float(az.rhat(idata, var_names=["potential_effect"])["potential_effect"]))
        parts.append(idata)
        seconds += s
    announce(progress, f"pooling {n_fits} fits")
    pooled = pool_fits(parts)
    pooled["cut_potential"] = xr.DataTree(
        xr.Dataset({"potential": (("fit", "row"), potentials.isel(sample=picks).to_numpy())})
    )
    attach_measurement(pooled, stage_one)
    return ModeResult(
        pooled,
        stage_one.timings | {"sampling_s": seconds},
        stage_one.info | {"divergences": divergences(pooled), "cut_fits": n_fits, "cut_max_rhat_within_fit": max_rhat},
    )


def fit_smi_stage_one(inputs, options, priors, config, progress=True) -> ModeResult:
    """Sample the measures with an auxiliary regression whose outcome likelihood has power eta."""
    eta = float(config["model"]["eta"])
    model = build_smi_stage_one_model(inputs, options, priors, eta)
    announce(progress, f"compiling the SMI stage-one model (eta {eta:g}; one to two minutes), then "
                       f"{_sampling_plan(config['sampler'])}")
    idata, seconds = sample_model(model, config["sampler"], config["run"]["seed"], progress)
    auxiliary = az.summary(idata, var_names=["potential_effect"], kind="diagnostics").iloc[0]
    return ModeResult(idata, {"measurement_sampling_s": seconds}, {
        "measurement_divergences": divergences(idata),
        "smi_auxiliary_effect_rhat": float(auxiliary["r_hat"]),
        "smi_auxiliary_effect_ess_bulk": float(auxiliary["ess_bulk"]),
    })


def run_smi(inputs, options, priors, config, measurement=None, progress=True) -> ModeResult:
    """Semi-modular inference (Carmona & Nicholls 2020) with influence ``model.eta``.

    Stage one samples the measures from the posterior in which the outcome likelihood has
    power eta (:func:`fit_smi_stage_one`); stage two is the cut mode's regression per draw.
    eta = 0 takes the cut path itself (stage one = the measurement-only posterior, shared
    ``measurement`` welcome), so smi at 0 and cut give the same draws; eta = 1 targets the
    joint posterior. ``measurement`` is ignored for eta > 0: it is the wrong stage one.
    """
    eta = float(config["model"]["eta"])
    if eta == 0.0:
        stage_one = measurement or fit_measurement(inputs, options, priors, config, progress)
    else:
        stage_one = fit_smi_stage_one(inputs, options, priors, config, progress)
    result = regression_per_draw(inputs, options, priors, config, stage_one, progress)
    result.info["eta"] = eta
    return result


def attach_measurement(idata: xr.DataTree, measurement: ModeResult) -> xr.DataTree:
    """Keep the measurement posterior's key quantities, thinned, in the run (group ``measurement``)."""
    kept = measurement.idata["posterior"].to_dataset()[list(MEASUREMENT_KEPT)]
    step = max(1, kept.sizes["draw"] // MEASUREMENT_DRAWS_PER_CHAIN)
    idata["measurement"] = xr.DataTree(kept.isel(draw=slice(None, None, step)))
    return idata


def pool_fits(parts: list[xr.DataTree]) -> xr.DataTree:
    """Stack the chains of several fits into one posterior (chain = fit x chain)."""
    pooled = {}
    for group in ("posterior", "sample_stats", "log_likelihood", "log_prior"):
        datasets = [p[group].to_dataset() for p in parts]
        datasets = [ds.drop_vars([v for v in ds.data_vars if ds[v].dtype == object]) for ds in datasets]
        stacked = xr.concat(datasets, dim="chain", coords="minimal", compat="override", join="override")
        pooled[group] = stacked.assign_coords(chain=np.arange(stacked.sizes["chain"]))
    for group in ("observed_data", "constant_data"):
        if group in parts[0].children:
            pooled[group] = parts[0][group].to_dataset()
    return xr.DataTree.from_dict(pooled)


NAME_TO_MODE = {"joint": run_joint, "cut": run_cut, "plugin": run_plugin, "smi": run_smi}
