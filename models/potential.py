"""Part C: preference-implied depth and alliance potential.

    (alpha_D, beta_D) = argmin sum_n w_n (depth_n - alpha - beta * pref_n)^2
    potential_n       = alpha_D + beta_D * pref_n - depth_n     (> 0: weaker than interests predict)

The projection is computed in closed form inside the model for every draw: it is the
paper's definition, differentiable in the latent depth and preference, and has no likelihood
of its own. Writing it as ``depth ~ Normal(alpha + beta * pref, sigma_D)`` is degenerate
(MODEL.md "Trap"): depth is a function of theta, not data, so the sampler can fit the
equation perfectly by moving theta and shrinking sigma_D.

Projections: ``linear`` (w = 1 over all state-years of the sample, the published definition)
and ``allied`` (w = us_ally: the depth-preference line of states that do have an alliance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor.tensor as pt

PROJECTIONS = ("linear", "allied")


def least_squares_line(depth, pref, weights):
    """Weighted least-squares intercept and slope of depth on pref (works on numpy or tensors)."""
    lib = pt if isinstance(depth, pt.TensorVariable) or isinstance(pref, pt.TensorVariable) else np
    w = weights / weights.sum()
    pref_mean = lib.sum(w * pref)
    depth_mean = lib.sum(w * depth)
    slope = lib.sum(w * (pref - pref_mean) * (depth - depth_mean)) / lib.sum(w * (pref - pref_mean) ** 2)
    return depth_mean - slope * pref_mean, slope


def projection_weights(projection: str, us_ally: np.ndarray) -> np.ndarray:
    if projection not in PROJECTIONS:
        raise ValueError(f"projection {projection!r} not in {PROJECTIONS}")
    weights = np.ones(us_ally.size) if projection == "linear" else us_ally.astype("float64")
    if weights.sum() < 3:
        raise ValueError(f"projection {projection!r} has fewer than 3 state-years to fit on")
    return weights


def alliance_potential(depth, pref, us_ally: np.ndarray, projection: str = "linear", prefix: str = ""):
    """Register alpha_D, beta_D and potential (dims ``row``) as deterministics; return potential."""
    alpha, beta = least_squares_line(depth, pref, projection_weights(projection, us_ally))
    pm.Deterministic(f"{prefix}projection_intercept", alpha)
    pm.Deterministic(f"{prefix}projection_slope", beta)
    return pm.Deterministic(f"{prefix}potential", alpha + beta * pref - depth, dims="row")


def potential_from_point_estimates(depth: np.ndarray, pref: np.ndarray, us_ally: np.ndarray, projection: str = "linear") -> np.ndarray:
    """The two-step ("plug-in") potential from point estimates of depth and preference."""
    alpha, beta = least_squares_line(depth, pref, projection_weights(projection, us_ally))
    return alpha + beta * pref - depth


@dataclass(frozen=True)
class PluginEstimate:
    """The published two-step's point estimates per regression row."""

    depth: np.ndarray
    pref: np.ndarray
    potential: np.ndarray


def plugin_estimate(measurement_posterior, us_ally: np.ndarray, projection: str = "linear") -> PluginEstimate:
    """The one plug-in estimator, shared by ``compare`` (plug-in mode) and ``replicate``.

    Posterior means of ``depth`` and ``pref_row`` from a measurement posterior (dims chain,
    draw, row), then the least-squares projection on those means over **every** row of the
    sample, as the joint and cut modes project: rows whose state cast no UN vote that year
    keep the random walk's interpolated preference, so the three modes define potential on
    the same rows in the same way.
    """
    depth = measurement_posterior["depth"].mean(("chain", "draw")).to_numpy()
    pref = measurement_posterior["pref_row"].mean(("chain", "draw")).to_numpy()
    return PluginEstimate(depth, pref, potential_from_point_estimates(depth, pref, us_ally, projection))
