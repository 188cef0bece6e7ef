"""Data simulated from the joint model's own generative process (recovery tests, SBC).

The simulation follows the model of ``compose.py`` part by part, with known parameters:
alliance items from the IRT, state-year alliances with the US drawn from a set of "US"
alliances, agreement counts from the random walk, potential from the least-squares
projection, and the outcome from the Gaussian or hurdle regression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from allypot.models.inputs import DEFAULT_ITEM_SET, ITEM_SETS, ModelInputs, standardise
from allypot.models.irt import simulate_items
from allypot.models.potential import potential_from_point_estimates
from allypot.models.preference import simulate_agreement
from scipy.stats import norm

# category counts of the ten depth items of the default item set (MODEL.md Part A)
ITEM_CATEGORIES = {"milcontact": 2, "commondef": 2, "intcom": 2, "milaid": 5, "base": 4,
                   "contrib": 2, "organ1": 4, "ecaid": 2, "secrecy": 3, "milinst": 3}
ITEMS = ITEM_SETS[DEFAULT_ITEM_SET]


def simulate_inputs(
    n_alliances: int = 200,
    n_us_alliances: int = 12,
    n_countries: int = 40,
    n_years: int = 8,
    n_controls: int = 2,
    beta: float = 0.5,
    family: str = "gaussian",
    votes_per_year: int = 80,
    seed: int = 1,
) -> tuple[ModelInputs, dict]:
    """Return simulated :class:`ModelInputs` and the true values that generated them.

    ``beta`` is the potential coefficient of the linear predictor (for the Gaussian family the
    share is ``0.01 + 0.01 * (linear predictor + noise)``, so the true ``potential_effect``
    is ``0.01 * beta``; for the hurdle family both parts share the linear predictor and the
    true effect is the average derivative of the expected share). Fewer ``votes_per_year`` make preferences, and so potential, less
    certain.
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_alliances)
    loadings = rng.uniform(0.8, 2.5, size=len(ITEMS))
    cutpoints = [np.sort(rng.normal(0.5, 1.0, size=ITEM_CATEGORIES[i] - 1)) for i in ITEMS]
    items = simulate_items(theta, loadings, cutpoints, rng)
    items[rng.random(items.shape) < 0.03] = np.nan  # some provisions not coded

    us_alliances = rng.choice(n_alliances, size=n_us_alliances, replace=False)
    countries = np.arange(100, 100 + n_countries)
    years = np.arange(2001, 2001 + n_years)
    rows = pd.DataFrame([(c, y) for c in countries for y in years], columns=["ccode", "year"])
    country_idx = np.repeat(np.arange(n_countries), n_years)
    year_idx = np.tile(np.arange(n_years), n_countries)
    # about half the countries are allied; an allied country keeps 1-2 alliances every year
    allied_country = rng.random(n_countries) < 0.5
    k_max = 2
    per_country = np.full((n_countries, k_max), -1)
    for c in np.flatnonzero(allied_country):
        k = rng.integers(1, k_max + 1)
        per_country[c, :k] = rng.choice(us_alliances, size=k, replace=False)
    ally_matrix = per_country[country_idx]
    theta_ext = np.append(theta, -np.inf)
    deepest = np.max(theta_ext[ally_matrix], axis=1)
    depth = np.where((ally_matrix >= 0).any(axis=1), norm.cdf(deepest), 0.0)

    # allies agree more with the US (as in the real data), so depth and preference correlate
    # and the projection slope is positive
    pi, n_votes, n_agree = simulate_agreement(
        n_countries, n_years, 0.25, rng, votes_per_year=votes_per_year, init_mean=np.where(allied_country, 0.8, -0.8)
    )
    pref = pi[country_idx, year_idx]
    us_ally = (ally_matrix >= 0).any(axis=1)
    potential = potential_from_point_estimates(depth, pref, us_ally)

    raw_controls = rng.normal(size=(len(rows), n_controls))
    controls, centre, scale = standardise(raw_controls)
    gamma = rng.normal(0, 0.3, size=n_controls)
    country_effect = rng.normal(0, 0.3, size=n_countries)
    year_effect = rng.normal(0, 0.2, size=n_years)
    linear = beta * potential + controls @ gamma + country_effect[country_idx] + year_effect[year_idx]
    if family == "gaussian":
        outcome = 0.01 + 0.01 * (linear + rng.normal(0, 0.5, size=len(rows)))
        truth_effect = beta * 0.01  # share units per unit potential, before standardisation
    else:
        p = 1 / (1 + np.exp(-(-0.5 + linear)))
        positive = rng.random(len(rows)) < p
        log_sigma = 0.5
        outcome = np.where(positive, np.exp(-6 + linear + rng.normal(0, log_sigma, size=len(rows))), 0.0)
        # average derivative of E[share] = p * exp(mu + sigma^2 / 2) w.r.t. potential, as the model defines it
        positive_mean = np.exp(-6 + linear + log_sigma**2 / 2)
        truth_effect = float(np.mean(p * (1 - p) * beta * positive_mean + p * positive_mean * beta))
    inputs = ModelInputs(
        rows=rows,
        countries=countries,
        years=years,
        country_idx=country_idx,
        year_idx=year_idx,
        alliances=np.arange(1, n_alliances + 1),
        item_names=list(ITEMS),
        items=items,
        ally_matrix=ally_matrix,
        n_votes=n_votes,
        n_agree=n_agree,
        ideal=np.full(n_votes.shape, np.nan),
        ideal_sd=np.full(n_votes.shape, np.nan),
        us_ideal=np.full(n_years, np.nan),
        us_ideal_sd=np.full(n_years, np.nan),
        control_names=[f"x{i}" for i in range(n_controls)],
        controls=controls,
        control_centre=centre,
        control_scale=scale,
        outcome=outcome,
    )
    truth = {"theta": theta, "loadings": loadings, "beta": beta, "depth": depth, "pref": pref,
             "potential": potential, "potential_effect": truth_effect, "us_alliances": us_alliances}
    return inputs, truth
