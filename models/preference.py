"""Part B: preference similarity with the US, per country-year.

"agreement" (default)::

    logit_pi[i, 1]  ~ Normal(.)                       (walk_init)
    logit_pi[i, t]  ~ Normal(logit_pi[i, t-1], s)     s ~ walk_sigma
    k_it            ~ Binomial(n_it, pi_it)           only where n_it > 0
    pref_it         = pi_it

The walk is sampled *centred* (``pm.GaussianRandomWalk``): MODEL.md measured 31 leapfrog
steps per iteration against 127 for the offsets-plus-cumsum form, because ~80 roll calls a
year pin each year down. Years without votes are filled by the walk, not dropped.

"idealpoint"::

    ideal[i, t]      ~ Normal(.)                      latent ideal point
    ideal_obs[i, t]  ~ Normal(ideal[i, t], sd_it)     sd_it = (q95 - q05) / 3.29
    pref_it          = -|ideal[i, t] - ideal[US, t]| / scale

``scale`` is the SD of the published distances, so ``pref`` has a unit comparable across
releases; it is data, not a parameter.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from allypot.priors import Prior, require

MEASURES = ("agreement", "idealpoint")
PRIOR_PARAMETERS = {"walk_init", "walk_sigma", "ideal_latent"}


def agreement_walk(n_votes: np.ndarray, n_agree: np.ndarray, priors: dict[str, Prior], prefix: str = "pref"):
    """Register the vote-agreement random walk; return pref (country, year) in 0..1 as a tensor.

    ``n_votes`` and ``n_agree`` are (n_country, n_year) integer arrays; 0 votes = no data.
    """
    require(priors, "preference", PRIOR_PARAMETERS)
    if np.any(n_agree > n_votes):
        raise ValueError("agreement counts exceed the number of shared votes")
    sigma = priors["walk_sigma"].create(f"{prefix}_walk_sigma")
    init = priors["walk_init"]
    logit_pi = pm.GaussianRandomWalk(
        f"{prefix}_logit",
        sigma=sigma,
        init_dist=getattr(pm, init.dist).dist(**init.kwargs),
        dims=("country", "year"),
    )
    observed = np.nonzero(n_votes > 0)
    pm.Binomial(
        f"{prefix}_agree",
        n=n_votes[observed],
        logit_p=logit_pi[observed],
        observed=n_agree[observed],
    )
    # not stored as a Deterministic: the rows that matter are kept as ``pref_row`` and the
    # grid is one invlogit away from ``pref_logit``
    return pm.math.invlogit(logit_pi)


def idealpoint_measurement(
    ideal: np.ndarray, ideal_sd: np.ndarray, us_ideal: np.ndarray, us_ideal_sd: np.ndarray,
    priors: dict[str, Prior], prefix: str = "pref",
):
    """Register latent ideal points measured with error; return pref (country, year) as a tensor.

    ``ideal``/``ideal_sd`` are (n_country, n_year) with NaN where there is no estimate;
    ``us_ideal``/``us_ideal_sd`` are (n_year,).
    """
    require(priors, "preference", PRIOR_PARAMETERS)
    # PyMC would silently impute a NaN observation, and no observed ideal point leaves the
    # distance scale undefined
    if np.isnan(ideal).all():
        raise ValueError("idealpoint preference: no country-year has an ideal-point estimate")
    if np.isnan(us_ideal).any() or np.isnan(us_ideal_sd).any():
        raise ValueError(f"idealpoint preference: the US ideal point is missing in year positions "
                         f"{np.flatnonzero(np.isnan(us_ideal) | np.isnan(us_ideal_sd)).tolist()}")
    latent = priors["ideal_latent"].create(f"{prefix}_ideal", dims=("country", "year"))
    us_latent = priors["ideal_latent"].create(f"{prefix}_ideal_us", dims="year")
    seen = np.nonzero(~np.isnan(ideal))
    pm.Normal(f"{prefix}_ideal_obs", latent[seen], ideal_sd[seen], observed=ideal[seen])
    pm.Normal(f"{prefix}_ideal_us_obs", us_latent, us_ideal_sd, observed=us_ideal)
    scale = float(np.nanstd(np.abs(ideal - us_ideal[None, :])))
    distance = pt.abs(latent - us_latent[None, :])
    return -distance / scale


def simulate_agreement(n_country: int, n_year: int, walk_sigma: float, rng, votes_per_year: int = 80, init_mean=0.0):
    """Draw agreement paths and counts from the walk (for recovery tests)."""
    first = rng.normal(np.broadcast_to(init_mean, (n_country,))[:, None], 0.8, (n_country, 1))
    logit = np.cumsum(np.concatenate([first, rng.normal(0.0, walk_sigma, (n_country, n_year - 1))], axis=1), axis=1)
    pi = 1.0 / (1.0 + np.exp(-logit))
    n_votes = rng.poisson(votes_per_year, size=(n_country, n_year))
    n_agree = rng.binomial(n_votes, pi)
    return pi, n_votes, n_agree
