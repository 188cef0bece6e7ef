"""Troops, armed forces and casualties: parsing, the switchable rules, and real-data checks."""

from pathlib import Path

import pandas as pd
import pytest
from allypot.data.pipeline import troops as T
from allypot.data.pipeline.casualties import build_casualties, write_casualties
from allypot.data.pipeline.crosswalk import CountryResolver, build_crosswalk, read_aliases
from allypot.data.schema import ExclusionLog



@pytest.fixture(scope="module")
def resolver(raw_dir) -> CountryResolver:
    return CountryResolver.from_tables(build_crosswalk(raw_dir, ExclusionLog()), read_aliases())


@pytest.fixture(scope="module")
def rules() -> T.TroopRules:
    return T.load_rules()


@pytest.fixture(scope="module")
def built(raw_dir, resolver, rules):
    log = ExclusionLog()
    obs = T.build_troop_observations(raw_dir, resolver, rules, log)
    cy = T.build_troops_country_year(obs, rules, log)
    forces = T.build_armed_forces(raw_dir, resolver, rules, log)
    return obs, cy, forces, log


def _tiny_resolver() -> CountryResolver:
    cw = pd.DataFrame({
        "ccode": [316, 2, 255], "stateabb": ["CZR", "USA", "GMY"], "name": ["Czech Republic", "United States", "Germany"],
        "iso2": ["CZ", "US", "DE"], "iso3": ["CZE", "USA", "DEU"], "gwcode": [316, 2, 260],
    })
    return CountryResolver.from_tables(cw, pd.DataFrame(columns=["alias", "ccode", "kind"]))


# --- parsing ---------------------------------------------------------------------------

def test_parse_counts_thousands_separators_and_words():
    values, empty, invalid = T.parse_counts(pd.Series(["1,550", "1550", "some", "", "1,55", " 35 ", "12,000,000"]))
    assert values.tolist()[:2] == [1550, 1550]
    assert values.iloc[5] == 35 and values.iloc[6] == 12_000_000
    assert invalid.tolist() == [False, False, True, False, True, False, False]
    assert empty.tolist() == [False, False, False, True, False, False, False]
    assert values[invalid | empty].isna().all()


def _write_deployments(raw: Path, rows: list[dict]) -> None:
    cols = ["year", "location", "intlorg", "operational_org", "operational_name", "country", "count_total",
            "count_un_troops", "count_un_milobservers", "task", "notes"]
    path = raw / T.IISS_DEPLOYMENT
    path.parent.mkdir(parents=True)
    pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows]).to_csv(path, index=False)


def test_iiss_rows_summed_duplicates_once_words_excluded_and_logged(tmp_path):
    rows = [
        {"year": "2008", "location": "Afghanistan", "operational_org": "ISAF", "country": "Czech Republic", "count_total": "435", "task": "security"},
        {"year": "2008", "location": "Afghanistan", "operational_org": "ISAF", "country": "Czech Republic", "count_total": "95", "task": "hospital"},
        {"year": "2008", "location": "Afghanistan", "operational_org": "ISAF", "country": "Germany", "count_total": "3,310"},
        {"year": "2008", "location": "Afghanistan", "operational_org": "ISAF", "country": "Germany", "count_total": "3,310"},
        {"year": "2008", "location": "Afg", "operational_org": "", "operational_name": "ENDURING FREEDOM", "country": "United States", "count_total": "9,650"},
        {"year": "2008", "location": "Afghanistan", "operational_org": "ISAF", "country": "United States", "count_total": "some"},
        {"year": "2008", "location": "Iraq", "operational_org": "MNF", "country": "United States", "count_total": "150,000"},
    ]
    _write_deployments(tmp_path, rows)
    log = ExclusionLog()
    obs = T.read_iiss_observations(tmp_path, _tiny_resolver(), T.TroopRules(), log).set_index(["ccode", "mission"])
    assert obs.loc[(316, "ISAF"), "troops"] == 530          # distinct contingents summed
    assert obs.loc[(255, "ISAF"), "troops"] == 3310         # exact duplicate counted once
    assert obs.loc[(2, "OEF"), "troops"] == 9650
    assert (2, "ISAF") not in obs.index                      # "some" is not 0
    assert set(obs["year"]) == {2007} and set(obs["source_detail"]) == {"MB2008"}
    reasons = log.to_frame().set_index("reason")["n_rows"]
    assert reasons["exact duplicate row (kept once)"] == 1
    assert reasons["count_total not a number (e.g. 'some'; not read as 0)"] == 1
    assert reasons["deployment outside Afghanistan"] == 1


def test_edition_offset_is_a_switch(tmp_path):
    _write_deployments(tmp_path, [{"year": "2004", "location": "Afghanistan", "operational_org": "ISAF", "country": "Germany", "count_total": "1,909"}])
    r = _tiny_resolver()
    assert T.read_iiss_observations(tmp_path, r, T.TroopRules(), ExclusionLog())["year"].tolist() == [2003]
    assert T.read_iiss_observations(tmp_path, r, T.TroopRules(iiss_edition_offset=0), ExclusionLog())["year"].tolist() == [2004]


# --- rules on a synthetic frame ---------------------------------------------------------

def _obs() -> pd.DataFrame:
    pm = [("2009-02-13", 100), ("2009-10-01", 300), ("2009-06-01", 500)]
    rows = [dict(ccode=1, year=2009, source="placemat", source_detail=d, mission="ISAF", troops=t) for d, t in pm]
    rows.append(dict(ccode=2, year=2009, source="placemat", source_detail="2009-06-01", mission="ISAF", troops=40))
    rows += [
        dict(ccode=1, year=2009, source="iiss", source_detail="MB2010", mission="ISAF", troops=280),
        dict(ccode=1, year=2009, source="iiss", source_detail="MB2010", mission="OEF", troops=20),
        dict(ccode=1, year=2009, source="iiss", source_detail="MB2010", mission="UNAMA", troops=2),
        dict(ccode=3, year=2005, source="iiss", source_detail="MB2006", mission="ISAF", troops=70),
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("rule", "expected"), [("nearest", 300.0), ("mean", 300.0), ("max", 500.0)])
def test_placemat_rule(rule, expected):
    got = T.placemat_by_year(_obs().query("source == 'placemat'"), T.TroopRules(placemat_rule=rule), ExclusionLog())
    assert got.set_index("ccode").loc[1, "troops"] == expected


def test_nearest_uses_one_snapshot_and_nation_absent_from_it_has_no_placemat_figure():
    got = T.placemat_by_year(_obs().query("source == 'placemat'"), T.TroopRules(reference_date="06-01"), ExclusionLog())
    assert got.set_index("ccode")["troops"].to_dict() == {1: 500.0, 2: 40.0}
    got = T.placemat_by_year(_obs().query("source == 'placemat'"), T.TroopRules(), ExclusionLog())
    assert set(got["ccode"]) == {1} and got["detail"].iloc[0] == "placemat 2009-10-01"


def test_mean_over_listing_snapshots_only():
    got = T.placemat_by_year(_obs().query("source == 'placemat'"), T.TroopRules(placemat_rule="mean"), ExclusionLog())
    assert got.set_index("ccode").loc[2, "troops"] == 40.0


@pytest.mark.parametrize(
    ("combine", "oef", "isaf1", "total1"),
    [("placemat_first", True, 300, 320), ("iiss_first", True, 280, 300), ("placemat_first", False, 300, 300), ("iiss_only", True, 280, 300)],
)
def test_combine_rules(combine, oef, isaf1, total1):
    cy = T.build_troops_country_year(_obs(), T.TroopRules(combine=combine, add_iiss_oef=oef), ExclusionLog()).set_index("ccode")
    assert cy.loc[1, "troops_isaf"] == isaf1 and cy.loc[1, "troops_afghanistan"] == total1
    assert cy.loc[1, "troops_oef"] == 20                     # shown even when not added
    assert cy.loc[3, "troops_afghanistan"] == 70              # IISS-only years still count
    assert cy.loc[3, "troops_source"] == "iiss ISAF MB2006"


def test_placemat_only_ignores_iiss_isaf():
    cy = T.build_troops_country_year(_obs(), T.TroopRules(combine="placemat_only"), ExclusionLog()).set_index("ccode")
    assert 3 not in cy.index and cy.loc[1, "troops_source"] == "placemat 2009-10-01 + iiss OEF MB2010"


def _zero_obs(counts: str = "int64") -> pd.DataFrame:
    """Nation 1: placemat prints 0, IISS 720. Nation 2: IISS prints 0, placemat 50. Nation 3: both 0.
    Nation 4: placemat prints 0, no IISS figure. ``counts``: the dtype of ccode, year and troops
    (read_table gives pandas' nullable Int64)."""
    rows = [
        dict(ccode=1, year=2012, source="placemat", source_detail="2012-12-03", mission="ISAF", troops=0),
        dict(ccode=1, year=2012, source="iiss", source_detail="MB2013", mission="ISAF", troops=720),
        dict(ccode=2, year=2012, source="placemat", source_detail="2012-12-03", mission="ISAF", troops=50),
        dict(ccode=2, year=2012, source="iiss", source_detail="MB2013", mission="ISAF", troops=0),
        dict(ccode=3, year=2012, source="placemat", source_detail="2012-12-03", mission="ISAF", troops=0),
        dict(ccode=3, year=2012, source="iiss", source_detail="MB2013", mission="ISAF", troops=0),
        dict(ccode=4, year=2012, source="placemat", source_detail="2012-12-03", mission="ISAF", troops=0),
    ]
    return pd.DataFrame(rows).astype({"ccode": counts, "year": counts, "troops": counts})


@pytest.mark.parametrize(
    ("combine", "zero_rule", "expected", "replaced"),
    [
        ("placemat_first", True, {1: 720, 2: 50, 3: 0, 4: 0}, {1}),
        ("placemat_first", False, {1: 0, 2: 50, 3: 0, 4: 0}, set()),
        ("iiss_first", True, {1: 720, 2: 50, 3: 0, 4: 0}, {2}),
        ("iiss_first", False, {1: 720, 2: 0, 3: 0, 4: 0}, set()),
        ("placemat_only", True, {1: 0, 2: 50, 3: 0, 4: 0}, set()),
    ],
)
@pytest.mark.parametrize("counts", ["int64", "Int64"])
def test_printed_zero_yields_to_positive_figure_of_other_source(combine, zero_rule, expected, replaced, counts):
    log = ExclusionLog()
    rules = T.TroopRules(combine=combine, zero_yields_to_positive=zero_rule)
    cy = T.build_troops_country_year(_zero_obs(counts), rules, log).set_index("ccode")
    assert cy["troops_isaf"].to_dict() == expected
    assert set(cy.index[cy["isaf_zero_replaced"]]) == replaced
    logged = [e for e in log.entries if "printed 0" in e.reason]
    assert sum(e.n_rows for e in logged) == len(replaced)
    if 1 in replaced:
        assert cy.loc[1, "troops_source"] == "iiss ISAF MB2013"
    if 2 in replaced:
        assert cy.loc[2, "troops_source"] == "placemat 2012-12-03"


def test_rules_from_config_and_validation():
    rules = T.TroopRules.from_config({"troops": {"placemat_rule": "max", "counted_missions": ["ISAF"]}, "armed_forces": {"fallback": "none"}})
    assert rules.placemat_rule == "max" and rules.counted_missions == ("ISAF",) and rules.armed_forces_fallback == "none"
    with pytest.raises(ValueError):
        T.TroopRules(placemat_rule="median")
    assert T.load_rules() == T.TroopRules()                   # the committed config states the defaults


# --- real data --------------------------------------------------------------------------

@pytest.mark.needs_raw
def test_major_contributors_are_not_false_zeros(built):
    obs, cy, _, _ = built
    total = cy.set_index(["ccode", "year"])["troops_afghanistan"]
    assert total[(255, 2009)] > 3000     # published panel: 0
    assert total[(200, 2010)] > 5000     # published panel: 0
    assert total[(2, 2008)] > 20000      # published panel: 0
    iiss = obs[(obs["source"] == "iiss") & (obs["mission"] == "ISAF")].set_index(["ccode", "year"])["troops"]
    assert iiss[(255, 2009)] > 3000      # the comma-formatted IISS value itself parses


@pytest.mark.needs_raw
def test_jordan_printed_zeros_yield_to_iiss(built):
    obs, cy, _, log = built
    cy = cy.set_index(["ccode", "year"])
    for year in (2011, 2012, 2013):
        placemat = obs[(obs["ccode"] == 663) & (obs["year"] == year) & (obs["source"] == "placemat")]["troops"]
        iiss = obs[(obs["ccode"] == 663) & (obs["year"] == year) & (obs["source"] == "iiss") & (obs["mission"] == "ISAF")]
        assert len(placemat) > 0 and (placemat == 0).all() and len(iiss) == 1 and iiss["troops"].iloc[0] > 0
        assert cy.loc[(663, year), "troops_isaf"] == iiss["troops"].iloc[0]
        assert cy.loc[(663, year), "isaf_zero_replaced"]
    assert cy.loc[(663, 2014), "troops_isaf"] > 0 and not cy.loc[(663, 2014), "isaf_zero_replaced"]
    # every replaced cell is a printed 0 against a positive figure, and each is logged
    flagged = cy[cy["isaf_zero_replaced"]]
    assert len(flagged) >= 3 and (flagged["troops_isaf"] > 0).all()
    assert sum(e.n_rows for e in log.entries if "printed 0" in e.reason) == len(flagged)


@pytest.mark.needs_raw
def test_every_year_has_troops_and_counts_are_plausible(built):
    _, cy, _, _ = built
    per_year = cy[cy["troops_afghanistan"] > 0].groupby("year").size()
    assert list(per_year.index) == list(range(2001, 2015))
    assert (per_year >= 20).all()


@pytest.mark.needs_raw
def test_share_of_armed_forces_never_above_one(built):
    _, cy, forces, _ = built
    both = cy.merge(forces, on=["ccode", "year"])
    both = both[both["armed_forces"] > 0]
    share = both["troops_afghanistan"] / both["armed_forces"]
    assert (share <= 1).all(), both[share > 1]


@pytest.mark.needs_raw
def test_armed_forces_cover_every_cow_state_year(built, raw_dir):
    _, _, forces, _ = built
    system = pd.read_csv(raw_dir / T.COW_SYSTEM)
    system = system[system["year"].between(2001, 2014)]
    assert len(forces) == len(system)
    f = forces.set_index(["ccode", "year"])
    assert f.loc[(2, 2008), "armed_forces"] > 1_000_000 and f.loc[(2, 2008), "armed_forces_source"] == "iiss MB2009"
    fb = forces[forces["armed_forces_fallback"]]
    assert (fb["armed_forces_source"] == "cow_milper").all() and (fb["armed_forces"] >= 1000).all()


@pytest.mark.needs_raw
def test_casualties(raw_dir, resolver):
    log = ExclusionLog()
    cas = build_casualties(raw_dir, resolver, log).set_index(["ccode", "year"])
    assert cas.loc[(2, 2001), "casualties"] == 7
    assert cas.loc[(2, 2011), "casualties_cum"] == 1782 and cas.loc[(200, 2011), "casualties_cum"] == 391
    assert 211 not in cas.index.get_level_values("ccode")  # Belgium has no column: unknown, not 0
    assert "column is not a state ('NATO' = nationality not announced; 'Total')" in set(log.to_frame()["reason"])


@pytest.mark.needs_raw
def test_builds_are_byte_identical(raw_dir, resolver, rules, tmp_path):
    outputs = []
    for name in ("a", "b"):
        paths = T.write_troop_tables(raw_dir, tmp_path / name, rules, resolver, ExclusionLog())
        paths["casualties"] = write_casualties(raw_dir, tmp_path / name, resolver, ExclusionLog())
        outputs.append({k: (p.read_bytes(), p.with_suffix(".meta.json").read_bytes()) for k, p in paths.items()})
    assert outputs[0] == outputs[1]
