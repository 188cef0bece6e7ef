"""The one sample rule, the specification registry, the alliance universe and item sets, and
the one plug-in estimator, on the committed tables (no sampling)."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from allypot.data.loaders import load_table
from allypot.inference import modes
from allypot.inference.config import ConfigError, model_options, resolve_config
from allypot.inference.modes import ModeResult, run_plugin
from allypot.inference.replicate import estimation_sample
from allypot.inference.replicate_cli import plugin_frame, rebuilt_for_replication
from allypot.models.inputs import (
    ALLIANCE_UNIVERSES,
    BENSON_CLINTON_ITEMS,
    inputs_from_tables,
    us_alliances_in_universe,
)
from allypot.models.sample import HOST_CCODE, NON_CONTRIBUTORS, SPECIFICATIONS, US_CCODE, select_sample
from allypot.models.simulate import simulate_inputs
from allypot.priors import load_priors

from allypot.paths import TABLES_DIR

YEARS = (2001, 2014)
# COW codes: Russia, Belarus, China, North Korea (allied with the US only through OSCE/Helsinki
# 3740 and the Treaty of Amity and Cooperation 3755, neither with a defence or offence obligation)
NOT_ALLIES = {365: "Russia", 370: "Belarus", 710: "China", 731: "North Korea"}


@pytest.fixture(scope="module")
def panel():
    return load_table("panel", TABLES_DIR)


@pytest.fixture(scope="module")
def inputs_by_case():
    return {(universe, spec): inputs_from_tables(TABLES_DIR, spec, years=YEARS, alliance_universe=universe)
            for universe in ALLIANCE_UNIVERSES for spec in SPECIFICATIONS}


def test_select_sample_counts_every_dropped_row_once_under_its_first_reason():
    frame = pd.DataFrame({
        "ccode": [US_CCODE, HOST_CCODE, 20, 20, 20, 200, 200],
        "year": [2005, 2005, 2000, 2005, 2006, 2005, 2006],
        "share": [0.1, 0.0, 0.2, np.nan, 0.3, 0.01, np.inf],
        "gdp": [1.0, 1.0, 1.0, 1.0, 0.0, 2.0, 3.0],
    })
    chosen = select_sample(frame, ["share", "log_gdp"], years=(2001, 2014))
    assert chosen.rows[["ccode", "year"]].to_numpy().tolist() == [[200, 2005]]
    assert dict(chosen.exclusions) == {
        "outside years 2001-2014": 1, NON_CONTRIBUTORS[US_CCODE]: 1, NON_CONTRIBUTORS[HOST_CCODE]: 1,
        "share missing": 2, "log_gdp missing": 1,  # log of a GDP of 0 is undefined
    }
    assert chosen.n_excluded + len(chosen.rows) == len(frame) == chosen.n_input


def test_no_specification_has_a_row_of_the_us_or_the_host_and_exclusions_add_up(inputs_by_case, panel):
    in_years = panel["year"].between(*YEARS).sum()
    for (universe, spec), inputs in inputs_by_case.items():
        assert not inputs.rows["ccode"].isin([US_CCODE, HOST_CCODE]).any(), (universe, spec)
        excluded = dict(inputs.exclusions)
        assert excluded[NON_CONTRIBUTORS[US_CCODE]] == excluded[NON_CONTRIBUTORS[HOST_CCODE]] == 14
        assert sum(excluded.values()) + len(inputs.rows) == len(panel), (universe, spec, excluded)
        assert len(inputs.rows) + sum(n for r, n in excluded.items() if not r.startswith("outside")) == in_years


def test_replication_rebuilt_panel_follows_the_same_rule(panel):
    # a potential for every panel row, the US and Afghanistan included: the rule, not a
    # missing potential, must keep them out
    potential = panel[["ccode", "year"]].assign(potential=0.1)
    rebuilt = rebuilt_for_replication(panel, potential)
    for spec in SPECIFICATIONS:
        sample = estimation_sample(rebuilt, spec)
        assert not sample["ccode"].isin([US_CCODE, HOST_CCODE]).any(), spec
        excluded = dict(sample.attrs["exclusions"])
        assert excluded[NON_CONTRIBUTORS[HOST_CCODE]] == 14
        assert sum(excluded.values()) + len(sample) == len(rebuilt), (spec, excluded)


def test_default_universe_has_no_treaty_without_defence_or_offence(inputs_by_case):
    for spec in SPECIFICATIONS:
        default, everything = inputs_by_case[("defence_offence", spec)], inputs_by_case[("all", spec)]
        allied_default = set(default.rows.loc[default.us_ally, "ccode"])
        allied_all = set(everything.rows.loc[everything.us_ally, "ccode"])
        assert not allied_default & set(NOT_ALLIES), sorted(allied_default & set(NOT_ALLIES))
        # the wide universe does make them allies, so the default's exclusion is the universe's doing
        assert set(NOT_ALLIES) <= allied_all
        # us_ally, the control, follows the universe too
        if "us_ally" in default.control_names:
            column = default.controls[:, default.control_names.index("us_ally")]
            assert np.array_equal(column > column.min(), default.us_ally)


def test_default_universe_keeps_only_defence_or_offence_phases():
    membership = load_table("us_alliance_membership", TABLES_DIR)
    kept = us_alliances_in_universe(membership)
    assert ((kept["defense"] == 1) | (kept["offense"] == 1)).all()
    assert {3740, 3755}.isdisjoint(kept["atopid"]) and 3180 in set(kept["atopid"])
    assert len(us_alliances_in_universe(membership, "all")) == len(membership)


def test_item_sets(inputs_by_case):
    default = inputs_by_case[("defence_offence", "baseline")]
    assert default.item_names == [*BENSON_CLINTON_ITEMS, "milinst"]
    nato = default.items[list(default.alliances).index(3180), default.item_names.index("milinst")]
    assert nato == 2
    nine = inputs_from_tables(TABLES_DIR, "baseline", years=YEARS, item_set="benson_clinton")
    assert nine.item_names == list(BENSON_CLINTON_ITEMS) and nine.items.shape[1] == 9


def test_config_takes_universe_and_items_and_rejects_unknown_values():
    config = resolve_config({})
    assert (config["model"]["alliance_universe"], config["model"]["items"]) == ("defence_offence", "with_institutions")
    with pytest.raises(ConfigError) as err:
        resolve_config({"model": {"alliance_universe": "nato", "items": "ten"}})
    assert "model.alliance_universe" in str(err.value) and "model.items" in str(err.value)


def test_registry_holds_both_control_sets_under_one_name():
    assert set(SPECIFICATIONS) == {"baseline", "political", "all_controls", "fixed_effects"}
    everything = SPECIFICATIONS["all_controls"]
    assert "log_dist_kabul" in everything.design_controls and "dist_kabul_km" in everything.replication_terms
    assert SPECIFICATIONS["fixed_effects"].fixed_effects
    assert all(s.replication_terms[0] == "potential" for s in SPECIFICATIONS.values())


class _Captured(Exception):
    """Stops run_plugin once it has handed its potential to the regression."""


def test_compare_and_replicate_share_one_plugin_estimator(monkeypatch):
    inputs, _ = simulate_inputs(n_alliances=40, n_us_alliances=5, n_countries=12, n_years=4, seed=3)
    rng = np.random.default_rng(0)
    shape = (2, 50, len(inputs.rows))
    # a measurement posterior whose means differ from any single draw
    posterior = xr.Dataset({
        "depth": (("chain", "draw", "row"), rng.uniform(0, 1, shape) * inputs.us_ally),
        "pref_row": (("chain", "draw", "row"), rng.uniform(0, 1, shape)),
    })
    measurement = ModeResult(xr.DataTree.from_dict({"posterior": posterior}))
    handed = {}

    def capture(inputs, options, priors, potential):
        handed["potential"] = np.asarray(potential)
        raise _Captured

    monkeypatch.setattr(modes, "build_contribution_model", capture)
    config = resolve_config({})
    with pytest.raises(_Captured):
        run_plugin(inputs, model_options(config), load_priors(), config, measurement=measurement)
    replicated = plugin_frame(inputs, posterior, config["model"]["projection"])
    assert np.array_equal(handed["potential"], replicated["potential"].to_numpy())
    # the projection uses every row: the plug-in potential is defined (finite) on all of them
    assert np.isfinite(replicated["potential"]).all()
