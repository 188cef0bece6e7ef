"""ATOP depth items and US alliance membership: recodes, phase unions, real-data anchors."""

import numpy as np
import pandas as pd
import pytest
from allypot.data.pipeline.alliances import (
    ALLIANCE_ITEMS_SCHEMA,
    ATOP_COVERAGE_END,
    INSTITUTION_FILE,
    ITEMS,
    PHASE_FILE,
    AllianceRules,
    build_alliance_items,
    build_us_membership,
    in_universe,
    item_phase,
    load_alliance_rules,
    load_milinst,
    membership_years,
    recode_items,
    us_membership,
    write_alliance_tables,
)
from allypot.data.schema import ExclusionLog, read_table



def _atop(**cols):
    base = {"atopid": [1, 2, 3, 4], "milcon": [2, 3, 0, np.nan], "intcom": [1, 0, 0, np.nan],
            "milaid": [4, 0, 1, 2], "base": [3, 0, 0, 1], "contrib": [1, 0, 0, 0], "organ1": [3, 0, 1, 2],
            "ecaid": [3, 0, 1, np.nan], "pubsecr": [0, 2, 1, 0]}
    base.update(cols)
    return pd.DataFrame(base)


def test_recode_items_on_synthetic_alliances():
    out = recode_items(_atop()).set_index("atopid")
    assert out.loc[1, "milcontact"] == 1 and out.loc[1, "commondef"] == 0
    assert out.loc[2, "milcontact"] == 0 and out.loc[2, "commondef"] == 1
    assert out.loc[3, "milcontact"] == 0 and out.loc[3, "commondef"] == 0
    # an uncoded milcon leaves both items missing, not 0
    assert pd.isna(out.loc[4, "milcontact"]) and pd.isna(out.loc[4, "commondef"])
    assert out["ecaid"].tolist()[:3] == [1, 0, 1] and pd.isna(out.loc[4, "ecaid"])
    assert out["secrecy"].tolist() == [0, 2, 1, 0]
    assert out.loc[1, "milaid"] == 4 and out.loc[1, "base"] == 3 and out.loc[4, "organ1"] == 2
    assert list(out.columns) == list(ITEMS)


def test_recode_rejects_unknown_code():
    with pytest.raises(ValueError, match="milcon"):
        recode_items(_atop(milcon=[2, 9, 0, 1]))


def _phases(**flags):
    base = {"atopid": [10, 10, 20], "phase": [1, 2, 0], "defense": [1, 0, 1], "offense": [0, 0, 0], "begyr": [1990, 2003, 2004]}
    base.update(flags)
    return pd.DataFrame(base)


def test_membership_open_exit_and_phase_union():
    members = pd.DataFrame({
        "atopid": [10, 10, 10, 10, 20],
        "member": [2, 2, 255, 255, 255],
        "phase": [1, 2, 1, 2, 0],
        "yrent": [1990, 2003, 2000, 2002, 2004],
        "yrexit": [2004, 0, 2003, 2005, 2006],
    })
    years = membership_years(members, coverage_end=2018)
    us = years[(years["atopid"] == 10) & (years["member"] == 2)]
    assert us["year"].tolist() == list(range(1990, 2019))  # overlapping phases unioned, open exit runs to 2018
    ger = years[(years["atopid"] == 10) & (years["member"] == 255)].set_index("year")["phase"]
    assert ger.index.tolist() == list(range(2000, 2006))  # 2002-2003 overlap counted once
    assert ger.loc[2001] == 1 and ger.loc[2002] == 2 and ger.loc[2003] == 2  # a shared year takes the later phase
    log = ExclusionLog()
    dyads = us_membership(members, _phases(), log, 2001, 2014)
    assert set(map(tuple, dyads[["ccode", "year", "atopid"]].to_numpy())) == {(255, y, 10) for y in range(2001, 2006)}
    assert (dyads["ccode"] != 2).all()  # the US alone in 20 and the US itself never appear
    assert log.entries and "US" in log.entries[0].reason
    # obligations are those of the phase in force: phase 1 (defence) in 2001, phase 2 (none) from 2002
    flags = dyads.set_index("year")[["phase", "defense"]]
    assert flags.loc[2001].tolist() == [1, 1] and (flags.loc[2002:, "defense"] == 0).all()
    assert in_universe(dyads, "defence_offence").tolist() == [True, False, False, False, False]
    assert in_universe(dyads, "all").all()


def test_membership_phase_missing_from_phase_file_is_an_error():
    members = pd.DataFrame({"atopid": [10, 10], "member": [2, 255], "phase": [3, 3], "yrent": [2001, 2001], "yrexit": [0, 0]})
    with pytest.raises(ValueError, match=r"\(atopid, phase\) \[\[10, 3\]\]"):
        us_membership(members, _phases(), ExclusionLog(), 2001, 2014)


def test_unknown_universe_and_rules_are_rejected():
    with pytest.raises(ValueError, match="universe"):
        in_universe(pd.DataFrame({"defense": [1], "offense": [0]}), "military")
    with pytest.raises(ValueError, match="milinst_phase"):
        AllianceRules(milinst_phase="max")
    rules = AllianceRules.from_config({"alliances": {"universe": "all"}, "years": {"end": 2010}})
    assert rules.universe == "all" and rules.end_year == 2010
    assert load_alliance_rules() == AllianceRules()  # the committed config states the defaults


def test_item_phase_rules():
    phases = pd.DataFrame({
        "atopid": [1, 1, 2, 2, 2, 3, 4, 4],
        "phase": [1, 2, 1, 2, 3, 0, 1, 2],
        "begyr": [1950, 1977, 1990, 2008, 2016, 1960, 2015, 2017],
    })
    study_end = item_phase(phases, "study_end", 2014).set_index("atopid")["phase"].to_dict()
    # in force at the end of the study (1: since 1977; 2: phase 2, as phase 3 begins after 2014),
    # single phase, and an alliance begun after the study: its last phase
    assert study_end == {1: 2, 2: 2, 3: 0, 4: 2}
    assert item_phase(phases, "last").set_index("atopid")["phase"].to_dict() == {1: 2, 2: 3, 3: 0, 4: 2}


def _write_inst(tmp_path, rows):
    folder = tmp_path / INSTITUTION_FILE.parent
    folder.mkdir(parents=True, exist_ok=True)
    (tmp_path / INSTITUTION_FILE).write_text("atopid,atopidphase,milinst,formal,version\n" + "\n".join(rows) + "\n")
    return tmp_path


def test_load_milinst_reads_float_phase_ids(tmp_path):
    raw = _write_inst(tmp_path, ["3180,3180.1001,1,2,5.0999999", "3180,3180.2000,2,2,5.0999999", "3150,3150,,2,5.0999999"])
    phases = pd.DataFrame({"atopid": [3180, 3180, 3150], "phase": [1, 2, 0]})
    got = load_milinst(raw, phases).set_index(["atopid", "phase"])["milinst"]
    assert got[(3180, 1)] == 1 and got[(3180, 2)] == 2 and pd.isna(got[(3150, 0)])  # not coded stays missing


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (["3180,3180.1001,3,2,5.1", "3180,3180.2,2,2,5.1", "3150,3150,1,2,5.1"], "milinst value"),
        (["3180,3180.1001,1,2,5.1", "3180,3180.3,2,2,5.1", "3150,3150,1,2,5.1"], "same alliance phases"),
        (["3180,3180.15,1,2,5.1", "3180,3180.2,2,2,5.1", "3150,3150,1,2,5.1"], "atopid.phase"),
    ],
)
def test_load_milinst_rejects_bad_rows(tmp_path, rows, match):
    raw = _write_inst(tmp_path, rows)
    phases = pd.DataFrame({"atopid": [3180, 3180, 3150], "phase": [1, 2, 0]})
    with pytest.raises(ValueError, match=match):
        load_milinst(raw, phases)


@pytest.fixture(scope="module")
def real(raw_dir):
    log = ExclusionLog()
    return build_alliance_items(raw_dir, log), build_us_membership(raw_dir, log), log


@pytest.mark.needs_raw
def test_real_alliance_items(real):
    items, _, log = real
    assert len(items) == 789 and items["atopid"].is_unique
    nato = items.set_index("atopid").loc[3180]
    # ATOP 5.1 codes NATO intcom = 0 (as B&C's ATOP 3.0 input did); depth rests on base/organ1
    assert nato["base"] == 3 and nato["organ1"] == 3 and nato["defense"] == 1 and bool(nato["us_member"])
    assert items["bc_depth"].notna().sum() == 487
    assert items["bc_depth_sd"].notna().sum() == 487 and (items["bc_depth_sd"].dropna() > 0).all()
    unmatched = [e for e in log.entries if "not in ATOP 5.1" in e.reason]
    assert unmatched and unmatched[0].n_rows == 5


@pytest.mark.needs_raw
def test_real_us_membership(real):
    _, dyads, _ = real
    rows = set(map(tuple, dyads[["ccode", "year", "atopid"]].to_numpy()))
    assert (255, 2005, 3180) in rows
    japan = dyads[dyads["ccode"] == 740]
    assert set(japan["year"]) == set(range(2001, 2015))
    assert (japan.groupby("atopid")["year"].nunique() == 14).any()  # the bilateral treaty, every year
    assert not (dyads["ccode"] == 630).any()  # Iran is no US ally
    assert not (dyads["ccode"] == 2).any()
    assert dyads["atopid"].nunique() == 19


@pytest.mark.needs_raw
def test_write_is_deterministic(raw_dir, tmp_path):
    a = write_alliance_tables(raw_dir, tmp_path / "a", ExclusionLog())
    b = write_alliance_tables(raw_dir, tmp_path / "b", ExclusionLog())
    assert a == b
    for name in a:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (tmp_path / "b" / f"{name}.csv").read_bytes()
    back = read_table(tmp_path / "a" / "alliance_items.csv", ALLIANCE_ITEMS_SCHEMA)
    assert len(back) == 789


# states allied with the US only through non-aggression pacts (OSCE/Helsinki 3740, the Treaty of
# Amity and Cooperation 3755 from 2009, the US-Russia 4265)
NOT_MILITARY_ALLIES = {365: "Russia", 370: "Belarus", 710: "China", 731: "North Korea"}


@pytest.mark.needs_raw
@pytest.mark.parametrize("ccode", sorted(NOT_MILITARY_ALLIES))
def test_non_aggression_partners_are_allies_only_in_the_all_universe(real, ccode):
    _, dyads, _ = real
    rows = dyads[dyads["ccode"] == ccode]
    assert len(rows) > 0, f"{NOT_MILITARY_ALLIES[ccode]} shares no alliance with the US even under 'all'"
    assert not in_universe(rows, "defence_offence").any(), rows[in_universe(rows, "defence_offence")]


@pytest.mark.parametrize("ccode", sorted(NOT_MILITARY_ALLIES))
def test_committed_panel_follows_the_default_universe(ccode):
    from allypot.data.loaders import load_table

    panel = load_table("panel")
    rows = panel[panel["ccode"] == ccode]
    assert not rows["us_ally"].astype(bool).any() and (rows["n_us_alliances"] == 0).all()
    assert rows["us_ally_all"].astype(bool).any()
    assert panel.loc[panel["ccode"] == 255, "us_ally"].astype(bool).all()  # Germany: NATO in every year


@pytest.mark.needs_raw
def test_every_membership_row_takes_the_obligations_of_the_phase_in_force(real, raw_dir):
    """Independent of the member file's phase numbers: the alliance phase whose years cover the row's year."""
    _, dyads, _ = real
    phases = pd.read_csv(raw_dir / PHASE_FILE, usecols=["atopid", "phase", "begyr", "endyr", "defense", "offense"])
    phases["last_year"] = phases["endyr"].where(phases["endyr"] != 0, ATOP_COVERAGE_END)
    expanded = dyads.merge(phases[["atopid", "phase", "begyr", "last_year", "defense", "offense"]], on="atopid",
                           suffixes=("", "_raw"))
    covering = expanded[(expanded["begyr"] <= expanded["year"]) & (expanded["year"] <= expanded["last_year"])]
    in_force = covering.sort_values("phase").groupby(["ccode", "year", "atopid"]).tail(1)  # a shared year: later phase
    assert len(in_force) == len(dyads)
    assert (in_force["phase"] == in_force["phase_raw"]).all()
    assert (in_force["defense"] == in_force["defense_raw"]).all() and (in_force["offense"] == in_force["offense_raw"]).all()
    # the alliance with a phase change inside the study years is matched on both sides of it
    assert set(dyads.loc[dyads["atopid"] == 6032, "phase"]) == {1, 2}


@pytest.mark.needs_raw
@pytest.mark.parametrize(("atopid", "expected"), [(3180, 2), (3150, 1), (3075, 0)])
def test_milinst_nato_oas_rio(real, raw_dir, atopid, expected):
    """NATO 2, OAS Charter (1948) 1, Rio Treaty (1947) 0: as built, and as printed in the raw file."""
    items, _, _ = real
    row = items.set_index("atopid").loc[atopid]
    assert row["milinst"] == expected
    raw_lines = (raw_dir / INSTITUTION_FILE).read_text().splitlines()
    header = raw_lines[0].split(",")
    raw = [dict(zip(header, line.split(","))) for line in raw_lines[1:]]
    phase_rows = [r for r in raw if int(r["atopid"]) == atopid]
    chosen = [r for r in phase_rows if round(10 * (float(r["atopidphase"]) - atopid)) == row["milinst_phase"]]
    assert len(chosen) == 1 and float(chosen[0]["milinst"]) == expected


@pytest.mark.needs_raw
def test_milinst_covers_every_alliance_and_separates_nato_from_oas(real, raw_dir):
    items, _, _ = real
    uncoded_phases = int(pd.read_csv(raw_dir / INSTITUTION_FILE)["milinst"].isna().sum())
    assert items["milinst"].isna().sum() <= uncoded_phases and set(items["milinst"].dropna().unique()) <= {0, 1, 2}
    by_id = items.set_index("atopid")
    assert by_id.loc[3260, "milinst_phase"] == 2 and by_id.loc[3260, "milinst"] == 0  # SEATO after 1977
    assert by_id.loc[3180, "milinst"] > by_id.loc[3150, "milinst"] > by_id.loc[3075, "milinst"]
