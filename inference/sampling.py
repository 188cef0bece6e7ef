"""One place that runs NUTS, whatever the backend, and adds what later checks need.

A fit stopped by Ctrl-C must never pass as a posterior. nutpie catches the interrupt itself and
returns what it has: during tuning a trace with zero draws, during sampling the requested number
of draws of which the unfinished ones are NaN, or fewer draws. :func:`run_guarded` therefore
notes any SIGINT that arrives while sampling and checks the returned trace against the request
(:func:`check_complete`); either way it raises :class:`SamplingInterrupted`, so nothing is saved.

Every posterior leaves here with its log densities, so diagnostics and sensitivity analyses
(LOO, power-scaling by component, ``allypot sensitivity``) never need a refit:

- ``log_likelihood``: the pointwise log likelihood of the *contribution* part (``share`` or
  ``share_z``, one value per row: LOO needs it pointwise) and, in a model that has the
  measurement parts (joint), one term per measurement component (:data:`MEASUREMENT_COMPONENTS`):
  ``treaty_items`` (per draw and item, summed over alliances), ``vote_agreement`` or
  ``ideal_points`` (per draw, summed over country-years). Power-scaling needs only the total of a
  component per draw; pointwise they would add ~10,000 values per draw to a 150 MB run.
- ``log_prior``: per element for the parameters whose prior comes from a prior file
  (:func:`prior_variables`), and per-draw totals for the latent fields (:func:`latent_variables`:
  alliance depth theta, the preference walk or ideal points, group-effect offsets), whose
  standard priors are the hierarchical layer (theta ~ N(0, 1), the walk given its scale).
"""

from __future__ import annotations

import signal
import threading
import time
import weakref
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from allypot.models.contribution import FAMILY_TO_OUTCOME_VAR
from tqdm.auto import tqdm


class SamplingInterrupted(KeyboardInterrupt):
    """Sampling stopped before every requested draw was made; the trace must not be saved.

    A ``KeyboardInterrupt`` so that code catching ``Exception`` cannot swallow it.
    """


def finished_draws(idata: xr.DataTree, variables: list[str]) -> int:
    """How many (chain, draw) cells of the trace hold a finished draw.

    A free variable is never NaN in a finished draw, so a cell with a NaN in any of
    ``variables`` is one that was never made (nutpie pads an aborted chain with NaN).
    """
    if "posterior" not in idata.children:
        return 0
    posterior = idata["posterior"]
    shape = (posterior.sizes.get("chain", 0), posterior.sizes.get("draw", 0))
    missing = np.zeros(shape, dtype=bool)
    for name in (v for v in variables if v in posterior.data_vars):
        values = posterior[name].transpose("chain", "draw", ...).to_numpy()
        missing |= np.isnan(values).any(axis=tuple(range(2, values.ndim)))
    return int((~missing).sum())


def check_complete(idata: xr.DataTree, variables: list[str], chains: int, draws: int) -> None:
    """Raise :class:`SamplingInterrupted` unless the trace holds every requested draw."""
    posterior = idata["posterior"] if "posterior" in idata.children else xr.Dataset()
    shape = (posterior.sizes.get("chain", 0), posterior.sizes.get("draw", 0))
    finished = finished_draws(idata, variables)
    if shape != (chains, draws) or finished != chains * draws:
        raise SamplingInterrupted(
            f"sampling stopped early: {finished} of {chains} x {draws} draws were made; "
            "the partial trace was discarded and this fit was not saved"
        )


@contextmanager
def _note_sigint():
    """Record SIGINTs during the block, then pass each on to the handler that was in place."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield received
        return

    def note(signum, frame):
        received.append(signum)
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def run_guarded(draw: Callable[[], xr.DataTree], model: pm.Model, chains: int, draws: int) -> xr.DataTree:
    """Call ``draw()`` (a sampler run) and return its trace only if it is complete.

    Raises :class:`SamplingInterrupted` if Ctrl-C arrived while it ran (whether the backend
    raised or swallowed it) or if the trace lacks draws.
    """
    with _note_sigint() as interrupts:
        try:
            idata = draw()
        except KeyboardInterrupt:
            raise SamplingInterrupted("sampling interrupted (Ctrl-C); this fit was not saved") from None
    if interrupts:
        made = finished_draws(idata, [v.name for v in model.free_RVs])
        raise SamplingInterrupted(
            f"sampling interrupted (Ctrl-C) after {made} of {chains} x {draws} draws; "
            "the partial trace was discarded and this fit was not saved"
        )
    check_complete(idata, [v.name for v in model.free_RVs], chains, draws)
    return idata


def nuts_options(sampler: dict) -> dict:
    """The NUTS keywords of ``pm.sample(nuts=...)``: the mass-matrix adaptation is nutpie's own."""
    options = {"target_accept": sampler["target_accept"]}
    if sampler["backend"] == "nutpie":
        options["adaptation"] = sampler["adaptation"]
    return options


def sample_model(model: pm.Model, sampler: dict, seed: int, progress: bool = True, quiet: bool = False) -> tuple[xr.DataTree, float]:
    """Run NUTS on ``model`` with the configured backend; return (posterior, seconds).

    Raises :class:`SamplingInterrupted` when interrupted (see :func:`run_guarded`).
    """
    started = time.perf_counter()
    idata = run_guarded(lambda: pm.sample(
        draws=sampler["draws"],
        tune=sampler["tune"],
        chains=sampler["chains"],
        cores=min(sampler["chains"], 2),
        random_seed=seed,
        nuts_sampler=sampler["backend"],
        progressbar=progress,
        quiet=quiet,
        model=model,
        compute_convergence_checks=False,
        nuts=nuts_options(sampler),
    ), model, sampler["chains"], sampler["draws"])
    return idata, time.perf_counter() - started


LATENT_FIELDS = ("depth_theta", "pref_logit", "pref_ideal", "pref_ideal_us")
# likelihood components of the measurement parts -> the observed variables they sum
MEASUREMENT_COMPONENTS = {
    "treaty_items": "depth_item_",  # prefix: one ordered-logit term per item
    "vote_agreement": ("pref_agree",),
    "ideal_points": ("pref_ideal_obs", "pref_ideal_us_obs"),
}


def latent_variables(model: pm.Model) -> list[str]:
    """Free variables of the hierarchical layer: the latent fields and group-effect offsets.

    Their priors are fixed standard ones that identify the model (not prior-file choices) and
    they are large (789 thetas, 150 x 14 walk values per draw), so the run folder keeps only
    their per-draw log-prior total (:func:`component_log_densities`).
    """
    return [v.name for v in model.free_RVs if v.name in LATENT_FIELDS or v.name.endswith("_offset")]


def prior_variables(model: pm.Model) -> list[str]:
    """Free variables whose prior is set by a prior file: everything but :func:`latent_variables`."""
    latent = set(latent_variables(model))
    return [v.name for v in model.free_RVs if v.name not in latent]


def measurement_components(model: pm.Model) -> dict[str, list[str]]:
    """The measurement likelihood components present in ``model`` -> their observed variables."""
    observed = [rv.name for rv in model.observed_RVs]
    found = {}
    for component, match in MEASUREMENT_COMPONENTS.items():
        names = [n for n in observed if (n.startswith(match) if isinstance(match, str) else n in match)]
        if names:
            found[component] = names
    return found


@contextmanager
def _without_initial_values(model: pm.Model):
    """PyMC cannot rewrite a model with custom initial values (the IRT's ordered cut-points start
    spread out); initial values play no part in log densities, so lift them meanwhile."""
    initial = dict(model.rvs_to_initial_values)
    try:
        model.rvs_to_initial_values.update(dict.fromkeys(initial))
        yield model
    finally:
        model.rvs_to_initial_values.update(initial)


# compiled per model once: the cut mode evaluates the same regression model for 40 fits
_DENSITY_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _density_function(model: pm.Model, stored: frozenset[str]):
    """(compiled function of the stored free variables' values, output names, components, input dtypes).

    A latent variable missing from ``stored`` (run folders made before offsets were kept) gets no
    log-prior total; the caller sees it absent from the result.
    """
    cache = _DENSITY_FUNCTIONS.setdefault(model, {})
    if stored in cache:
        return cache[stored]
    from pymc.model.transform.conditioning import remove_value_transforms

    components = measurement_components(model)
    with _without_initial_values(model):
        umodel = remove_value_transforms(model)
    outputs, names = [], []
    for component, observed in components.items():
        totals = [t.sum() for t in umodel.logp(vars=[umodel[n] for n in observed], sum=False)]
        outputs.append(pt.stack(totals) if component == "treaty_items" else sum(totals[1:], totals[0]))
        names.append(component)
    for name in (n for n in latent_variables(model) if n in stored):
        outputs.append(umodel.logp(vars=[umodel[name]], sum=True))
        names.append(name)
    inputs = [umodel.rvs_to_values[rv] for rv in umodel.free_RVs if rv.name in stored]
    fn = umodel.compile_fn(inputs=inputs, outs=outputs, on_unused_input="ignore") if outputs else None
    dtypes = {rv.name: umodel.rvs_to_values[rv].type.dtype for rv in umodel.free_RVs if rv.name in stored}
    cache[stored] = fn, names, components, dtypes
    return cache[stored]


def component_log_densities(posterior: xr.Dataset, model: pm.Model, progress: bool = False) -> tuple[xr.Dataset, xr.Dataset]:
    """Per-draw log densities of the measurement likelihood components and of the latent fields' prior.

    Returns ``(log_likelihood, log_prior)`` datasets with dims (chain, draw) (``treaty_items``
    also ``item``). Used at fit time (:func:`add_log_densities`) and to complete run folders
    made before these terms were stored (``allypot sensitivity``): the posterior's values are
    evaluated in the model rebuilt from the run's config, no sampling.
    """
    fn, names, components, dtypes = _density_function(model, frozenset(posterior.data_vars))
    if fn is None:
        return xr.Dataset(), xr.Dataset()
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    values = {name: posterior[name].transpose("chain", "draw", ...).to_numpy().astype(dtype) for name, dtype in dtypes.items()}
    results = [np.empty(shape + (len(components["treaty_items"]),) if name == "treaty_items" else shape) for name in names]
    for c, d in tqdm(np.ndindex(*shape), total=shape[0] * shape[1], desc="log densities", disable=not progress):
        for result, value in zip(results, fn({name: v[c, d] for name, v in values.items()})):
            result[c, d] = value
    coords = {"chain": posterior["chain"].to_numpy(), "draw": posterior["draw"].to_numpy()}
    likelihood, prior = {}, {}
    for name, result in zip(names, results):
        if name == "treaty_items":
            items = [n.removeprefix(MEASUREMENT_COMPONENTS["treaty_items"]) for n in components["treaty_items"]]
            likelihood[name] = xr.DataArray(result, dims=("chain", "draw", "item"), coords=coords | {"item": items})
        elif name in components:
            likelihood[name] = xr.DataArray(result, dims=("chain", "draw"), coords=coords)
        else:
            prior[name] = xr.DataArray(result, dims=("chain", "draw"), coords=coords,
                                       attrs={"summed_over": "all elements (per-draw total)"})
    return xr.Dataset(likelihood), xr.Dataset(prior)


def add_log_densities(idata: xr.DataTree, model: pm.Model, family: str, progress: bool = False) -> xr.DataTree:
    """Add the log likelihood of every likelihood component and the log prior to ``idata``.

    Only the components that belong to ``model``'s posterior: a plug-in or cut fit's model is the
    regression alone, so its run holds the regression likelihood only.
    """
    outcome = FAMILY_TO_OUTCOME_VAR[family]
    with _without_initial_values(model):
        pm.compute_log_likelihood(idata, var_names=[outcome], model=model, progressbar=progress)
        pm.compute_log_prior(idata, var_names=prior_variables(model), model=model, progressbar=progress)
    likelihood, prior = component_log_densities(idata["posterior"].to_dataset(), model, progress)
    idata["log_likelihood"] = xr.DataTree(idata["log_likelihood"].to_dataset().merge(likelihood))
    idata["log_prior"] = xr.DataTree(idata["log_prior"].to_dataset().merge(prior))
    return idata


def divergences(idata: xr.DataTree) -> int:
    return int(np.asarray(idata["sample_stats"]["diverging"]).sum())
