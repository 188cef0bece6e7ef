"""One place that runs NUTS, whatever the backend, and adds what later checks need.

A fit stopped by Ctrl-C must never pass as a posterior. nutpie catches the interrupt itself and
returns what it has: during tuning a trace with zero draws, during sampling the requested number
of draws of which the unfinished ones are NaN, or fewer draws. :func:`run_guarded` therefore
notes any SIGINT that arrives while sampling and checks the returned trace against the request
(:func:`check_complete`); either way it raises :class:`SamplingInterrupted`, so nothing is saved.

Every posterior leaves here with the pointwise log likelihood of the *contribution* part
(LOO, power-scaling of the likelihood) and the log prior of the parameters that have a
prior file entry (power-scaling by component), so diagnostics and sensitivity analyses never
need a refit.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import pymc as pm
import xarray as xr
from allypot.models.contribution import FAMILY_TO_OUTCOME_VAR


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
