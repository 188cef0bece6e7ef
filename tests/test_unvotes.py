"""UN agreement counts (synthetic known answer incl. Namibia "NA") and ideal-point distances."""

import io

import pandas as pd
import pytest
from allypot.data.pipeline.crosswalk import CountryResolver
from allypot.data.pipeline.unvotes import (
    IDEAL_FILE,
    SYSTEM_FILE,
    UN_AGREEMENT_SCHEMA,
    agreement_counts,
    build_ideal_points,
    build_un_agreement,
    write_unvote_tables,
)
from allypot.data.schema import DataValidationError, ExclusionLog, validate



# rcid 1, 2: session 56 (2001); rcid 3: session 57 (2002); rcid 4: the US did not vote;
# rcid 5: session 55 (2000), outside the window
VOTES_CSV = """rcid,country,country_code,vote
1,United States,US,yes
1,Namibia,NA,yes
1,Germany,DE,no
2,United States,US,abstain
2,Namibia,NA,abstain
2,Germany,DE,abstain
3,United States,US,no
3,Namibia,NA,yes
4,Namibia,NA,yes
5,United States,US,yes
5,Namibia,NA,yes
"""
CALLS = pd.DataFrame({"rcid": [1, 2, 3, 4, 5], "session": [56, 56, 57, 57, 55]})


def _codes(iso2: pd.Series) -> pd.Series:
    crosswalk = pd.DataFrame({"ccode": [2, 565, 255], "stateabb": ["USA", "NAM", "GMY"],
                              "name": ["United States", "Namibia", "Germany"], "iso2": ["US", "NA", "DE"],
                              "iso3": ["USA", "NAM", "DEU"], "gwcode": ["2", "565", "260"]})
    aliases = pd.DataFrame(columns=["alias", "ccode", "kind"])
    return CountryResolver.from_tables(crosswalk, aliases).to_ccode(iso2, "iso2", "test", "country_code")


def test_agreement_known_answer_with_namibia():
    votes = pd.read_csv(io.StringIO(VOTES_CSV), dtype=str, keep_default_na=False)
    assert (votes["country_code"] == "NA").sum() == 5  # "NA" survived as text
    votes["rcid"] = votes["rcid"].astype("int64")
    votes["ccode"] = _codes(votes["country_code"]).astype("int64")
    log = ExclusionLog()
    out = agreement_counts(votes[["rcid", "ccode", "vote"]], CALLS, log).set_index(["ccode", "year"])
    assert out.loc[(565, 2001)].tolist() == [2, 2]  # yes/yes and abstain/abstain agree
    assert out.loc[(255, 2001)].tolist() == [2, 1]  # no vs yes disagrees, abstain/abstain agrees
    assert out.loc[(565, 2002)].tolist() == [1, 0]  # rcid 4 without a US vote is not counted
    assert len(out) == 3 and 2 not in out.index.get_level_values("ccode")
    reasons = {e.reason: e.n_rows for e in log.entries}
    assert reasons["the US did not vote on this roll call (no comparison possible)"] == 1
    assert reasons["vote outside 2001-2014"] == 2


def test_schema_rejects_more_agreements_than_votes():
    bad = pd.DataFrame({"ccode": [565], "year": [2001], "n_votes": [3], "n_agree": [4]})
    with pytest.raises(DataValidationError, match="n_agree exceeds n_votes"):
        validate(bad, UN_AGREEMENT_SCHEMA)


@pytest.mark.needs_raw
def test_real_agreement(raw_dir):
    out = build_un_agreement(raw_dir, ExclusionLog())
    assert (out["n_agree"] <= out["n_votes"]).all() and (out["n_votes"] > 0).all()
    assert not (out["ccode"] == 2).any()
    assert set(out["year"]) == set(range(2001, 2015))
    assert (565, 2005) in set(zip(out["ccode"], out["year"]))  # Namibia mapped, not lost as NaN


@pytest.mark.needs_raw
def test_real_ideal_points(raw_dir):
    ip = build_ideal_points(raw_dir, ExclusionLog())
    us = ip[ip["ccode"] == 2]
    assert len(us) == 14 and (us["ideal_distance"] == 0).all()
    assert {255, 345, 565} <= set(ip["ccode"])  # COW codes: Germany, Yugoslavia/Serbia, Namibia
    assert (ip["ideal_distance"] >= 0).all()


@pytest.mark.needs_raw
def test_write_is_deterministic(raw_dir, tmp_path):
    a = write_unvote_tables(raw_dir, tmp_path / "a", ExclusionLog())
    b = write_unvote_tables(raw_dir, tmp_path / "b", ExclusionLog())
    assert a == b
    for name in a:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (tmp_path / "b" / f"{name}.csv").read_bytes()


def test_ideal_points_reject_non_cow_code(tmp_path):
    (tmp_path / SYSTEM_FILE).parent.mkdir(parents=True)
    (tmp_path / IDEAL_FILE).parent.mkdir(parents=True)
    (tmp_path / SYSTEM_FILE).write_text("stateabb,ccode,year,version\nUSA,2,2001,2016\nGMY,255,2001,2016\n")
    header = '"","ccode","session","NVotesAll","IdealPointAll","QO%All","Q5%All","Q10%All","Q50%All","Q90%All","Q95%All","Q100%All","iso3c","Countryname"\n'
    rows = ['"1",2,56,70,2.9,2.5,2.7,2.8,2.9,3.0,3.1,3.3,"USA","United States"\n',
            '"2",260,56,70,1.0,0.6,0.8,0.9,1.0,1.1,1.2,1.4,"DEU","Germany"\n']
    (tmp_path / IDEAL_FILE).write_text(header + "".join(rows))
    with pytest.raises(ValueError, match="260"):
        build_ideal_points(tmp_path, ExclusionLog())
    (tmp_path / IDEAL_FILE).write_text(header + rows[0] + rows[1].replace(",260,", ",255,"))
    ip = build_ideal_points(tmp_path, ExclusionLog()).set_index("ccode")
    assert ip.loc[2, "ideal_distance"] == 0 and ip.loc[255, "ideal_distance"] == pytest.approx(1.9)
