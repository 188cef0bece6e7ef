"""Chain-mode detection on synthetic posteriors whose truth is known by construction."""

import numpy as np
import pytest
import xarray as xr
from allypot.diagnostics.modes import ModeThresholds, detect_chain_modes, group_chains

N_CHAINS, N_DRAWS = 4, 1000


def _autocorrelated(rng, centre, sd, rho=0.5):
    """(draw,) AR(1) draws with stationary mean ``centre`` and SD ``sd`` (a healthy chain)."""
    noise = rng.normal(0.0, sd * np.sqrt(1 - rho**2), N_DRAWS)
    x = np.empty(N_DRAWS)
    x[0] = rng.normal(0.0, sd)
    for t in range(1, N_DRAWS):
        x[t] = rho * x[t - 1] + noise[t]
    return centre + x


def _posterior(effect_centres, theta_centres, seed):
    """A DataTree with a scalar effect and a theta over three alliances, chain centres given."""
    rng = np.random.default_rng(seed)
    effect = np.stack([_autocorrelated(rng, c, 0.004) for c in effect_centres])
    theta = np.stack([np.stack([_autocorrelated(rng, c + k, 0.5) for k in range(3)], axis=-1) for c in theta_centres])
    posterior = xr.Dataset(
        {"potential_effect": (("chain", "draw"), effect), "depth_theta": (("chain", "draw", "alliance"), theta)},
        coords={"chain": np.arange(N_CHAINS), "draw": np.arange(N_DRAWS), "alliance": [3075, 3150, 3180]},
    )
    return xr.DataTree.from_dict({"posterior": posterior})


def test_two_modes_are_flagged_with_their_chain_groups():
    # chains 0 and 3 in one mode, 1 and 2 in the other (the README's bimodal joint fit)
    idata = _posterior([-0.007, 0.012, 0.012, -0.007], [1.5, -0.6, -0.6, 1.5], seed=1)
    modes = detect_chain_modes(idata, us_alliances=[3150, 3180])
    assert modes.any_split
    assert set(modes.split_parameters) == {"potential_effect", "depth_theta[3150]", "depth_theta[3180]"}
    effect = modes.table.set_index("parameter").loc["potential_effect"]
    assert effect["modes"] == "0,3 | 1,2"
    assert effect["chains_healthy"] and effect["gap_sd"] > 3
    assert "3075" not in " ".join(modes.table["parameter"])  # only the alliances asked for
    assert "modes" in modes.describe()


def test_mixed_chains_are_not_flagged():
    idata = _posterior([0.0] * N_CHAINS, [0.0] * N_CHAINS, seed=2)
    modes = detect_chain_modes(idata, us_alliances=[3075, 3150, 3180])
    assert not modes.any_split
    assert (modes.table["verdict"] == "agree").all()
    assert len(modes.chains) == N_CHAINS * len(modes.table)
    assert modes.describe().startswith("Chains agree")


def test_high_rhat_with_healthy_chains_is_a_split_even_below_the_gap():
    # means 1.5 SD apart: below the 3-SD gap rule, but each chain is healthy and R-hat is high
    idata = _posterior([0.0, 0.0, 0.006, 0.006], [0.0] * N_CHAINS, seed=3)
    row = detect_chain_modes(idata, var_names=["potential_effect"]).table.iloc[0]
    assert row["gap_sd"] < 3 and row["rhat"] > 1.01
    assert row["split"] and row["verdict"] == "split"
    strict = detect_chain_modes(idata, var_names=["potential_effect"], thresholds=ModeThresholds(max_rhat=2.0))
    assert not strict.any_split


def test_a_small_gap_with_a_high_rhat_is_slow_mixing_not_modes():
    """As in the real joint fit: R-hat just above 1.01 with means 0.3 SD apart (strongly
    autocorrelated, healthy chains) is slow mixing; the chains are not in different modes."""
    rng = np.random.default_rng(5)
    effect = np.stack([_autocorrelated(rng, c, 0.004, rho=0.8) for c in (0.0, 0.0006, 0.0015, 0.0003)])
    idata = xr.DataTree.from_dict({"posterior": xr.Dataset({"potential_effect": (("chain", "draw"), effect)})})
    row = detect_chain_modes(idata, var_names=["potential_effect"]).table.iloc[0]
    assert row["chains_healthy"] and row["rhat"] > 1.01  # the old rule called this a split
    assert row["gap_sd"] < 1 and row["gap_mcse"] < 6
    assert not row["split"] and row["modes"] == "0,1,2,3"
    assert row["verdict"] == "slow"


def test_grouping_and_input_errors():
    assert group_chains(np.array([0.0, 10.0, 0.1, 10.2]), 1.0, 3.0) == [[0, 2], [1, 3]]
    assert group_chains(np.array([0.0, 1.0, 2.0]), 1.0, 3.0) == [[0, 1, 2]]
    one_chain = _posterior([0.0] * N_CHAINS, [0.0] * N_CHAINS, seed=4)
    one_chain = xr.DataTree.from_dict({"posterior": one_chain["posterior"].to_dataset().isel(chain=[0])})
    with pytest.raises(ValueError, match="at least two chains"):
        detect_chain_modes(one_chain)
    with pytest.raises(KeyError, match="log_beta"):
        detect_chain_modes(_posterior([0.0] * N_CHAINS, [0.0] * N_CHAINS, seed=4), var_names=["log_beta"])
