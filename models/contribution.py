"""Part D: the contribution regression (country-year).

Gaussian (the published family), on the standardised outcome z = (share - m) / s::

    z_n   ~ Normal(mu_n, sigma)
    mu_n  = a0 + beta * potential_n + gamma' X_n + u_i[n] + v_t[n]
    u_i   ~ Normal(0, tau_u),  v_t ~ Normal(0, tau_v)        (non-centred by default)

Hurdle (many exact zeros, bounded outcome)::

    P(share_n > 0)         = logistic(a_h + beta_h * potential_n + gamma_h' X_n + u_h + v_h)
    log share_n | share>0  ~ Normal(a_l + beta_l * potential_n + gamma_l' X_n + u_l + v_l, sigma_l)

Both families register ``potential_effect``: the average derivative of the expected share
with respect to potential (for the Gaussian family simply ``beta * s``; for the hurdle
``mean_n[ p(1-p) beta_h m + p m beta_l ]`` with m = exp(mu_l + sigma_l^2 / 2)). That is the
number comparable across families and with the published OLS coefficient.

Controls arrive standardised (per SD), so their priors are unit-scale.

Parameterisation (``model.parameterisation``), a sampler choice, not a model choice: both
give one posterior. ``direct`` samples (a, beta, gamma) as written. ``orthogonal`` samples
beta with the intercept and control coefficients of potential's least-squares residual on
[1, X] (recomputed every draw, as potential is latent). Why: on the real panel potential is
largely the US-ally dummy (correlation -0.85), so in ``direct`` coordinates beta_log and
gamma_log[us_ally] trade off along a ridge whose direction moves with the latent depths; in
``orthogonal`` coordinates the data inform beta only through the part of potential the
controls do not explain. See :func:`_linear_predictor` for the priors it carries.

Centring (``model.centring``), also a sampler choice: ``by_data`` centres, in the hurdle's log
part, the country and year effects of levels with at least CENTRED_MIN_ROWS positive shares.
The data then pin down the intercept plus the mean of those effects, not each: a ridge of
width sigma / sqrt(n levels) between them (real panel: log intercept R-hat 1.025, ESS 216 of
4000). ``by_data_meansplit`` samples that mean apart from the deviations and inside the
intercept (:func:`split_group_effect`), which removes the ridge (R-hat 1.002, ESS 718).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from allypot.priors import Prior, PriorConfigError, require

FAMILIES = ("gaussian", "hurdle")
PARAMETERISATIONS = ("direct", "orthogonal")
# priors whose first argument is a location ``mu``, so they can be shifted (orthogonal parameterisation)
LOCATION_FAMILIES = {"Normal", "StudentT", "Laplace", "Logistic", "SkewNormal"}
# group-effect centring: "prior" = each prior's `centered` flag; "by_data" = in the positive
# (log) part of the hurdle, levels with at least CENTRED_MIN_ROWS positive shares are centred;
# "by_data_meansplit" = the same levels centred, their mean split off into the intercept
# (see split_group_effect)
CENTRINGS = ("prior", "by_data", "by_data_meansplit")
CENTRED_MIN_ROWS = 3
GAUSSIAN_PRIORS = {"beta", "gamma", "intercept", "sigma", "country_sigma", "year_sigma"}
HURDLE_PRIORS = {
    "intercept_logit", "intercept_log", "beta_logit", "beta_log", "gamma_logit", "gamma_log",
    "sigma_log", "country_sigma", "year_sigma",
}


def group_effect(name: str, sigma_prior: Prior, dim: str, centred_levels: np.ndarray | None = None):
    """A zero-mean group effect whose parameterisation (centred or not) is a prior switch.

    ``centred_levels`` (a boolean per level) overrides the switch level by level: levels the
    part's likelihood pins down are sampled centred, the others as ``{name}_offset * sigma``
    (Papaspiliopoulos, Roberts & Skold 2007: centring suits informative groups, non-centring
    uninformative ones). Levels without data are then plain N(0, 1) offsets, not a funnel.
    """
    sigma = sigma_prior.create(f"{name}_sigma")
    if centred_levels is None:
        if sigma_prior.centered:
            return pm.Normal(name, 0.0, sigma, dims=dim)
        offset = pm.Normal(f"{name}_offset", 0.0, 1.0, dims=dim)
        return pm.Deterministic(name, offset * sigma, dims=dim)
    centred = np.flatnonzero(centred_levels)
    other = np.flatnonzero(~centred_levels)
    effect = pt.zeros(len(centred_levels))
    if len(centred):
        effect = pt.set_subtensor(effect[centred], pm.Normal(f"{name}_centred", 0.0, sigma, shape=len(centred)))
    if len(other):
        effect = pt.set_subtensor(effect[other], pm.Normal(f"{name}_offset", 0.0, 1.0, shape=len(other)) * sigma)
    return pm.Deterministic(name, effect, dims=dim)


def split_group_effect(name: str, sigma_prior: Prior, dim: str, centred_levels: np.ndarray):
    """The group effect of :func:`group_effect` with the centred levels' mean as its own variable.

    For n iid u_i ~ N(0, sigma), the level mean m ~ N(0, sigma / sqrt(n)) and the deviations
    u - m ~ ZeroSumNormal(sigma) are independent, and (m, deviations) is a linear, unit-free
    re-coordinatisation of u, so this is the same prior. Returns (effect, m): the caller moves
    m into the intercept, whose sum with m is what the data pin down (the ridge of width
    sigma / sqrt(n) that the plain centred effect leaves between them).
    Non-centred levels stay ``{name}_offset * sigma`` and keep m out of their effect.
    """
    sigma = sigma_prior.create(f"{name}_sigma")
    centred = np.flatnonzero(centred_levels)
    other = np.flatnonzero(~centred_levels)
    effect = pt.zeros(len(centred_levels))
    level_mean = pt.constant(0.0)
    if len(centred):
        level_mean = pm.Normal(f"{name}_level_mean", 0.0, sigma / np.sqrt(len(centred)))
        centred_effect = level_mean + (
            pm.ZeroSumNormal(f"{name}_deviation", sigma=sigma, shape=len(centred)) if len(centred) > 1 else 0.0
        )
        effect = pt.set_subtensor(effect[centred], centred_effect)
    if len(other):
        effect = pt.set_subtensor(effect[other], pm.Normal(f"{name}_offset", 0.0, 1.0, shape=len(other)) * sigma)
    return pm.Deterministic(name, effect, dims=dim), level_mean


def levels_with_data(index: np.ndarray, n_levels: int, rows: np.ndarray, minimum: int = CENTRED_MIN_ROWS) -> np.ndarray:
    """Which levels of a group have at least ``minimum`` of the given rows."""
    return np.bincount(index[rows], minlength=n_levels) >= minimum


def projection_on_controls(controls: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Design ``[1, X]`` and the operator H with ``H @ v`` = weighted least-squares coefficients of v on it.

    Both are data, so the per-draw projection of the latent potential is one matrix product.
    """
    design = np.column_stack([np.ones(len(controls)), controls])  # (n, 1 + p)
    weighted = design * weights[:, None]
    return design, np.linalg.solve(design.T @ weighted, weighted.T)  # (n, 1 + p), (1 + p, n)


def _shifted(prior: Prior, name: str, shift, **dims):
    """``prior`` moved by ``shift``: a coefficient c* = c + shift whose density is the prior of c at c* - shift."""
    if "mu" not in prior.kwargs or prior.dist not in LOCATION_FAMILIES:
        raise PriorConfigError(
            f"the orthogonal parameterisation needs a location-family prior with 'mu' ({sorted(LOCATION_FAMILIES)}) "
            f"for {name!r}; got {prior.dist} {prior.kwargs}"
        )
    return getattr(pm, prior.dist)(name, **(prior.kwargs | {"mu": prior.kwargs["mu"] + shift}), **dims)


def _linear_predictor(tag, potential, controls, country_idx, year_idx, priors, keys, weights,
                      parameterisation, country_effects, year_effects, centred_rows=None, mean_split=False):
    """a + beta * potential + gamma' X (+ u_country + v_year), for one part of the model.

    ``parameterisation == "orthogonal"`` samples the same model in other coordinates.
    With ``potential = b0 + X b + r`` (r the ``weights``-least-squares residual of potential on
    [1, X], recomputed each draw because potential is latent), the predictor is
    ``(a + beta b0) + beta r + (gamma + beta b)' X``. The sampler moves ``a* = a + beta b0`` and
    ``gamma* = gamma + beta b`` (``{tag}intercept_orth``, ``{tag}gamma_orth``), which the data
    inform independently of beta; the model's ``a`` and ``gamma`` are kept as deterministics.
    Priors: a* ~ prior_a shifted by beta b0 and gamma* ~ prior_gamma shifted by beta b, i.e.
    the density of a* and gamma* is exactly the file prior of a and gamma at a* - beta b0 and
    gamma* - beta b. The map has unit Jacobian, so both parameterisations are one posterior.

    ``mean_split`` (with ``centred_rows``): the centred levels' means m (country) and w (year)
    are sampled apart from their deviations (:func:`split_group_effect`) and the intercept moves
    by m + w as well (``{tag}intercept_split`` in direct coordinates, inside
    ``{tag}intercept_orth`` in orthogonal ones), again a unit-Jacobian shift of a's prior.
    """
    intercept_key, beta_key, gamma_key = keys
    groups = [(group, index) for wanted, group, index in
              ((country_effects, "country", country_idx), (year_effects, "year", year_idx)) if wanted]
    effects, level_means = [], []
    for group, index in groups if mean_split else ():
        n_levels = len(pm.modelcontext(None).coords[group])
        effect, level_mean = split_group_effect(
            f"{tag}{group}_effect", priors[f"{group}_sigma"], group, levels_with_data(index, n_levels, centred_rows)
        )
        effects.append(effect[index])
        level_means.append(level_mean)
    beta = priors[beta_key].create(f"{tag}beta")
    if parameterisation == "direct":
        if level_means:
            intercept = _shifted(priors[intercept_key], f"{tag}intercept_split", sum(level_means))
            eta = pm.Deterministic(f"{tag}intercept", intercept - sum(level_means)) + beta * potential
        else:
            eta = priors[intercept_key].create(f"{tag}intercept") + beta * potential
        if controls.shape[1]:
            gamma = priors[gamma_key].create(f"{tag}gamma", dims="control")
            eta = eta + pt.dot(controls, gamma)  # (n, p) @ (p,) -> (n,)
    else:
        design, operator = projection_on_controls(controls, weights)
        coefficients = pt.dot(operator, potential)  # (1 + p,): b0, b
        residual = potential - pt.dot(design, coefficients)
        shift = beta * coefficients[0] + sum(level_means) if level_means else beta * coefficients[0]
        intercept = _shifted(priors[intercept_key], f"{tag}intercept_orth", shift)
        pm.Deterministic(f"{tag}intercept", intercept - shift)
        # the group effects added below carry m + w back in
        eta = (intercept - sum(level_means) if level_means else intercept) + beta * residual
        if controls.shape[1]:
            gamma = _shifted(priors[gamma_key], f"{tag}gamma_orth", beta * coefficients[1:], dims="control")
            pm.Deterministic(f"{tag}gamma", gamma - beta * coefficients[1:], dims="control")
            eta = eta + pt.dot(controls, gamma)
    for group, index in groups if not mean_split else ():
        n_levels = len(pm.modelcontext(None).coords[group])
        centred = None if centred_rows is None else levels_with_data(index, n_levels, centred_rows)
        effects.append(group_effect(f"{tag}{group}_effect", priors[f"{group}_sigma"], group, centred)[index])
    for effect in effects:
        eta = eta + effect
    return eta


def gaussian_contribution(
    potential, share: np.ndarray, controls: np.ndarray, country_idx: np.ndarray, year_idx: np.ndarray,
    priors: dict[str, Prior], country_effects: bool = True, year_effects: bool = True,
    parameterisation: str = "direct", centring: str = "prior",
):
    """Register the Gaussian regression on the standardised share; return ``potential_effect``.

    ``centring`` is accepted for a common signature; every row is in this likelihood, so the
    prior files' ``centered`` flags decide."""
    require(priors, "contribution", GAUSSIAN_PRIORS)
    _check_parameterisation(parameterisation)
    centre, scale = float(share.mean()), float(share.std())
    mu = _linear_predictor(
        "", potential, controls, country_idx, year_idx, priors, ("intercept", "beta", "gamma"),
        np.ones(len(share)), parameterisation, country_effects, year_effects,
    )
    sigma = priors["sigma"].create("sigma")
    pm.Normal("share_z", mu, sigma, observed=(share - centre) / scale, dims="row")
    # the model's beta is per outcome-SD; the reported effect is on the share itself
    return pm.Deterministic("potential_effect", pm.modelcontext(None)["beta"] * scale)


def hurdle_contribution(
    potential, share: np.ndarray, controls: np.ndarray, country_idx: np.ndarray, year_idx: np.ndarray,
    priors: dict[str, Prior], country_effects: bool = True, year_effects: bool = True,
    parameterisation: str = "direct", centring: str = "prior",
):
    """Register the hurdle log-normal regression; return ``potential_effect`` on the expected share.

    The orthogonal parameterisation projects potential on the controls over all rows for the
    logit part and over the positive shares only for the log part: those are the rows whose
    likelihood the log part has, and where beta_log and gamma_log[us_ally] competed.
    """
    require(priors, "hurdle", HURDLE_PRIORS)
    _check_parameterisation(parameterisation)
    if centring not in CENTRINGS:
        raise ValueError(f"model.centring = {centring!r}; choose one of {list(CENTRINGS)}")
    positive = share > 0
    if positive.sum() < 2:
        raise ValueError("the hurdle family needs at least two positive shares")
    log_centre = float(np.log(share[positive]).mean())  # data-driven location of the positive part
    eta = _linear_predictor(
        "logit_", potential, controls, country_idx, year_idx, priors,
        ("intercept_logit", "beta_logit", "gamma_logit"), np.ones(len(share)),
        parameterisation, country_effects, year_effects,
    )
    mu = log_centre + _linear_predictor(
        "log_", potential, controls, country_idx, year_idx, priors,
        ("intercept_log", "beta_log", "gamma_log"), positive.astype("float64"),
        parameterisation, country_effects, year_effects,
        centred_rows=positive if centring.startswith("by_data") else None, mean_split=centring == "by_data_meansplit",
    )
    sigma = priors["sigma_log"].create("log_sigma")
    psi = pm.math.invlogit(eta)
    pm.HurdleLogNormal("share", psi=psi, mu=mu, sigma=sigma, observed=share, dims="row")
    model = pm.modelcontext(None)
    positive_mean = pt.exp(mu + sigma**2 / 2)
    derivative = psi * (1 - psi) * model["logit_beta"] * positive_mean + psi * positive_mean * model["log_beta"]
    pm.Deterministic("expected_share", psi * positive_mean, dims="row")
    return pm.Deterministic("potential_effect", pt.mean(derivative))


def _check_parameterisation(parameterisation: str) -> None:
    if parameterisation not in PARAMETERISATIONS:
        raise ValueError(f"model.parameterisation = {parameterisation!r}; choose one of {list(PARAMETERISATIONS)}")


FAMILY_TO_REGRESSION = {"gaussian": gaussian_contribution, "hurdle": hurdle_contribution}
FAMILY_TO_PRIOR_COMPONENT = {"gaussian": "contribution", "hurdle": "hurdle"}
FAMILY_TO_OUTCOME_VAR = {"gaussian": "share_z", "hurdle": "share"}
