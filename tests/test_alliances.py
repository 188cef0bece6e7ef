"""ATOP depth items and US alliance membership: recodes, phase unions, real-data anchors."""

import numpy as np
import pandas as pd
import pytest
from allypot.data.build.alliances import (
    ALLIANCE_ITEMS_SCHEMA,
    ITEMS,
    build_alliance_items,
    build_us_membership,
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


def test_membership_open_exit_and_phase_union():
    members = pd.DataFrame({
        "atopid": [10, 10, 10, 10, 20],
        "member": [2, 2, 255, 255, 255],
        "yrent": [1990, 2003, 2000, 2002, 2004],
        "yrexit": [2004, 0, 2003, 2005, 2006],
    })
    years = membership_years(members, coverage_end=2018)
    us = years[(years["atopid"] == 10) & (years["member"] == 2)]["year"].tolist()
    assert us == list(range(1990, 2019))  # overlapping phases unioned, open exit runs to 2018
    ger = years[(years["atopid"] == 10) & (years["member"] == 255)]["year"].tolist()
    assert ger == list(range(2000, 2006))  # 2002-2003 overlap counted once
    log = ExclusionLog()
    dyads = us_membership(members, log, 2001, 2014)
    assert set(map(tuple, dyads.to_numpy())) == {(255, y, 10) for y in range(2001, 2006)}
    assert (dyads["ccode"] != 2).all()  # the US alone in 20 and the US itself never appear
    assert log.entries and "US" in log.entries[0].reason


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
