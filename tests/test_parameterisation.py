"""The orthogonal parameterisation of the contribution part is the same model in other coordinates."""

import numpy as np
import pytest
from allypot.models.compose import ModelOptions, build_joint_model
from allypot.models.contribution import projection_on_controls
from allypot.models.simulate import simulate_inputs
from allypot.priors import PriorConfigError, load_priors


@pytest.fixture(scope="module")
def hurdle_inputs():
    inputs, _ = simulate_inputs(n_alliances=60, n_us_alliances=6, n_countries=15, n_years=5, n_controls=3,
                                family="hurdle", beta=1.0, seed=21)
    return inputs


def _compile(model, names, mode=None):
    """A function of the value variables (a point) returning the named model quantities."""
    outputs = model.replace_rvs_by_values([model[n] for n in names])
    return model.compile_fn(outputs, inputs=model.value_vars, on_unused_input="ignore", mode=mode)


def _random_point(model, rng):
    return {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in model.initial_point().items()}


@pytest.mark.slow  # two joint-model compilations per family
@pytest.mark.parametrize("family", ["hurdle", "gaussian"])
def test_orthogonal_log_density_equals_direct_at_the_mapped_point(hurdle_inputs, family):
    """logp_orthogonal(a + beta b0, beta, gamma + beta b, rest) == logp_direct(a, beta, gamma, rest)
    at arbitrary points: the change of variables has unit Jacobian and carries the file priors."""
    priors = load_priors()
    # by-data centring: the intercept is a free variable of the direct model (the mean split moves
    # it; its own equivalence test is below)
    options = {"family": family, "centring": "by_data"}
    direct = build_joint_model(hurdle_inputs, ModelOptions(parameterisation="direct", **options), priors)
    orthogonal = build_joint_model(hurdle_inputs, ModelOptions(parameterisation="orthogonal", **options), priors)
    potential_of = _compile(direct, ["potential"])
    parts = {"hurdle": [("logit_", None), ("log_", hurdle_inputs.outcome > 0)], "gaussian": [("", None)]}[family]
    names = ["potential_effect"] + [f"{tag}{n}" for tag, _ in parts for n in ("gamma", "intercept")]
    logp_direct, logp_orthogonal = direct.compile_logp(), orthogonal.compile_logp()
    outputs_direct, outputs_orthogonal = _compile(direct, names), _compile(orthogonal, names)
    rng = np.random.default_rng(5)
    for _ in range(3):
        point = _random_point(direct, rng)
        (potential,) = potential_of(point)
        mapped = dict(point)
        for tag, positive in parts:
            weights = np.ones(len(potential)) if positive is None else positive.astype(float)
            _, operator = projection_on_controls(hurdle_inputs.controls, weights)
            b = operator @ potential
            beta = point[f"{tag}beta"]
            mapped[f"{tag}intercept_orth"] = mapped.pop(f"{tag}intercept") + beta * b[0]
            mapped[f"{tag}gamma_orth"] = mapped.pop(f"{tag}gamma") + beta * b[1:]
        assert set(mapped) == set(orthogonal.initial_point())
        np.testing.assert_allclose(logp_orthogonal(mapped), logp_direct(point), rtol=1e-10)
        # the deterministics give back the model's own coefficients and the same effect
        for got, want in zip(outputs_orthogonal(mapped), outputs_direct(point)):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12)


def test_orthogonal_residual_is_uncorrelated_with_the_controls(hurdle_inputs):
    weights = (hurdle_inputs.outcome > 0).astype(float)
    design, operator = projection_on_controls(hurdle_inputs.controls, weights)
    potential = np.random.default_rng(0).normal(size=len(weights)) + hurdle_inputs.controls[:, 0]
    residual = potential - design @ (operator @ potential)
    np.testing.assert_allclose(design.T @ (weights * residual), 0.0, atol=1e-9)


def test_orthogonal_parameterisation_needs_location_priors(hurdle_inputs):
    priors = load_priors({"hurdle": {"gamma_log": {"dist": "HalfNormal", "kwargs": {"sigma": 1.0}}}})
    with pytest.raises(PriorConfigError, match="log_gamma_orth"):
        build_joint_model(hurdle_inputs, ModelOptions(family="hurdle", parameterisation="orthogonal"), priors)
    with pytest.raises(ValueError, match="model.parameterisation = 'qr'"):
        ModelOptions(parameterisation="qr")


SMALL_SAMPLER = {"backend": "nutpie", "chains": 2, "draws": 400, "tune": 400, "target_accept": 0.9, "adaptation": "diag"}


# (parameterisation, centring) of each fit of the simulated panel
FITTED = {"direct": ("direct", "by_data"), "orthogonal": ("orthogonal", "by_data"),
          "meansplit": ("orthogonal", "by_data_meansplit")}


@pytest.fixture(scope="module")
def simulated_hurdle_fits():
    """One small simulated hurdle data set, fitted jointly in each set of coordinates of FITTED.

    beta = 3: at beta = 2 the effect sat 1.6 posterior SDs from zero, so whether the 90% interval
    cleared zero depended on the machine's floating point; at 3 it sits about 3.3 SDs away."""
    from allypot.inference.sampling import sample_model

    inputs, truth = simulate_inputs(n_alliances=80, n_us_alliances=8, n_countries=30, n_years=6, n_controls=2,
                                    family="hurdle", beta=3.0, votes_per_year=40, seed=8)
    fits = {}
    for name, (parameterisation, centring) in FITTED.items():
        options = ModelOptions(family="hurdle", parameterisation=parameterisation, centring=centring)
        fits[name], _ = sample_model(build_joint_model(inputs, options, load_priors()), SMALL_SAMPLER, seed=3,
                                     progress=False, quiet=True)
    return truth, fits


@pytest.mark.slow
def test_joint_model_recovers_the_effect(simulated_hurdle_fits):
    """The mean split is held to this fit's posterior by test_parameterisations_give_one_posterior."""
    truth, fits = simulated_hurdle_fits
    draws = fits["orthogonal"]["posterior"]["potential_effect"].to_numpy().ravel()
    low, high = np.quantile(draws, [0.05, 0.95])
    assert low <= truth["potential_effect"] <= high, (low, high, truth["potential_effect"])
    assert low > 0  # a clearly positive simulated effect must be detected


def _moments(idata, name):
    """Posterior mean and SD of a scalar with their Monte Carlo standard errors."""
    import arviz as az

    values = idata["posterior"].to_dataset()[[name]]
    return {
        "mean": float(values[name].mean()),
        "sd": float(values[name].std()),
        "mcse_mean": float(az.mcse(values, method="mean")[name]),
        "mcse_sd": float(az.mcse(values, method="sd")[name]),
    }


@pytest.mark.slow
@pytest.mark.parametrize(("reference", "other", "quantity"), [
    ("direct", "orthogonal", "potential_effect"),
    ("orthogonal", "meansplit", "potential_effect"),
    ("orthogonal", "meansplit", "log_intercept"),  # the quantity the mean split re-coordinatises
])
def test_parameterisations_give_one_posterior(simulated_hurdle_fits, reference, other, quantity):
    _, fits = simulated_hurdle_fits
    a, b = _moments(fits[reference], quantity), _moments(fits[other], quantity)
    # within 4 Monte Carlo standard errors of the difference (a false alarm about 1 in 16,000)
    assert abs(a["mean"] - b["mean"]) < 4 * np.hypot(a["mcse_mean"], b["mcse_mean"]), (a, b)
    assert abs(a["sd"] - b["sd"]) < 4 * np.hypot(a["mcse_sd"], b["mcse_sd"]), (a, b)


def test_by_data_centring_centres_the_log_part_where_there_are_positive_shares(hurdle_inputs):
    from allypot.models.contribution import CENTRED_MIN_ROWS

    model = build_joint_model(hurdle_inputs, ModelOptions(family="hurdle", centring="by_data"), load_priors())
    positive = hurdle_inputs.outcome > 0
    per_country = np.bincount(hurdle_inputs.country_idx[positive], minlength=len(hurdle_inputs.countries))
    n_centred = int((per_country >= CENTRED_MIN_ROWS).sum())
    assert 0 < n_centred < len(hurdle_inputs.countries)  # the fixture has both kinds of state
    shapes = {v.name: model.initial_point()[model.rvs_to_values[v].name].shape for v in model.free_RVs}
    assert shapes["log_country_effect_centred"] == (n_centred,)
    assert shapes["log_country_effect_offset"] == (len(hurdle_inputs.countries) - n_centred,)
    # the logit part keeps the prior file's switch (non-centred), and the effect keeps its dims
    assert shapes["logit_country_effect_offset"] == (len(hurdle_inputs.countries),)
    assert model.named_vars_to_dims["log_country_effect"] == ("country",)
    with pytest.raises(ValueError, match="model.centring"):
        ModelOptions(centring="all")


@pytest.mark.parametrize("parameterisation", ["orthogonal", pytest.param("direct", marks=pytest.mark.slow)])
def test_mean_split_log_density_equals_by_data_at_the_mapped_point(hurdle_inputs, parameterisation):
    """logp_meansplit(a + m + w, m, z, w, zv, rest) == logp_by_data(a, m + z, w + zv, rest) + log sqrt(n_c n_y).

    (m, z) -> u = m + z is linear with determinant sqrt(n) for n centred levels (ZeroSumNormal's
    free coordinates are orthonormal), so the two log densities differ by that constant only
    and the posteriors are one. Checked at random points, where a wrong prior scale of m or z
    or a missing intercept shift would change the difference.
    """
    from allypot.models.compose import build_contribution_model
    from allypot.models.contribution import levels_with_data

    priors = load_priors()
    potential = np.random.default_rng(1).normal(size=len(hurdle_inputs.outcome))
    models = {
        centring: build_contribution_model(
            hurdle_inputs, ModelOptions(family="hurdle", parameterisation=parameterisation, centring=centring),
            priors, potential,
        )
        for centring in ("by_data", "by_data_meansplit")
    }
    split, plain = models["by_data_meansplit"], models["by_data"]
    # no C compilation: a few evaluations do not repay it
    effects_of = _compile(split, ["log_country_effect", "log_year_effect"], mode="FAST_COMPILE")
    positive = hurdle_inputs.outcome > 0
    centred = {
        "country": levels_with_data(hurdle_inputs.country_idx, len(hurdle_inputs.countries), positive),
        "year": levels_with_data(hurdle_inputs.year_idx, len(hurdle_inputs.years), positive),
    }
    assert 0 < centred["country"].sum() < len(centred["country"])  # the mixed case is exercised
    intercept = "log_intercept_orth" if parameterisation == "orthogonal" else ("log_intercept_split", "log_intercept")
    logp_split, logp_plain = split.compile_logp(mode="FAST_COMPILE"), plain.compile_logp(mode="FAST_COMPILE")
    expected = 0.5 * np.log(centred["country"].sum() * centred["year"].sum())
    rng = np.random.default_rng(9)
    for _ in range(3):
        point = _random_point(split, rng)
        country, year = effects_of(point)
        mapped = {k: v for k, v in point.items() if k in plain.initial_point()}
        means = point["log_country_effect_level_mean"] + point["log_year_effect_level_mean"]
        new_name, old_name = intercept if isinstance(intercept, tuple) else (intercept, intercept)
        mapped[old_name] = point[new_name] - means
        mapped["log_country_effect_centred"] = country[centred["country"]]
        mapped["log_year_effect_centred"] = year[centred["year"]]
        assert set(mapped) == set(plain.initial_point())
        np.testing.assert_allclose(logp_split(point) - logp_plain(mapped), expected, rtol=0, atol=1e-8)


def test_mean_split_effect_has_the_prior_of_iid_levels(hurdle_inputs):
    """Prior draws of the split effect: each centred level ~ N(0, sigma), levels uncorrelated."""
    import pymc as pm

    priors = load_priors({"hurdle": {"country_sigma": {"dist": "HalfNormal", "kwargs": {"sigma": 1.0}}}})
    from allypot.models.compose import build_contribution_model

    options = ModelOptions(family="hurdle", centring="by_data_meansplit")
    model = build_contribution_model(hurdle_inputs, options, priors, np.zeros(len(hurdle_inputs.outcome)))
    draws = pm.draw([model["log_country_effect"], model["log_country_effect_sigma"]], draws=4000, random_seed=4)
    effect, sigma = draws
    standardised = effect / sigma[:, None]  # given sigma every level is N(0, 1) and independent
    # 4000 draws: SE 0.011 for an SD of 1, 0.016 for a correlation of 0 (bounds at about 4.5 SE);
    # a level mean with SD sigma instead of sigma/sqrt(n) would correlate the centred levels by ~0.5
    np.testing.assert_allclose(standardised.std(axis=0), 1.0, atol=0.05)
    correlation = np.corrcoef(standardised, rowvar=False)
    np.testing.assert_allclose(correlation[np.triu_indices_from(correlation, 1)], 0.0, atol=0.07)
