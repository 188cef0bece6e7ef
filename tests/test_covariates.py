"""Covariates: haversine against an independent formula, the capital check, real anchors."""

import math

import pandas as pd
import pytest
from allypot.data.pipeline.covariates import (
    COVARIATES_SCHEMA,
    COW_CAPITALS_FILE,
    EARTH_RADIUS_KM,
    build_covariates,
    check_capital_coordinates,
    haversine_km,
    resolve_capitals,
    write_covariate_tables,
)
from allypot.data.schema import ExclusionLog, read_table



def test_haversine_known_pairs():
    assert haversine_km(0.0, 0.0, 0.0, 90.0) == pytest.approx(math.pi / 2 * EARTH_RADIUS_KM, rel=1e-12)
    assert haversine_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_KM, rel=1e-12)
    # independent spherical law of cosines on a non-trivial pair
    lat1, lon1, lat2, lon2 = 38.9, -77.0, 34.5, 69.2
    p1, p2, dl = map(math.radians, (lat1, lat2, lon2 - lon1))
    expected = EARTH_RADIUS_KM * math.acos(math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl))
    assert haversine_km(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-9)
    assert haversine_km(10.0, 10.0, 10.0, 10.0) == 0.0


def _caps(rows):
    return pd.DataFrame(rows, columns=["ccode", "capital", "stdate", "enddate", "lat", "lng"])


def test_wrong_capital_is_detected_and_replaced_from_other_file():
    primary = _caps([
        (1, "Goodtown", "1900-01-01", "2024-12-31", 10.123456, 20.654321),
        (2, "Swaptown", "1900-01-01", "2024-12-31", 20.654321, 10.123456),  # lat/lon swapped
        (3, "Centroid City", "1900-01-01", "2024-12-31", -10.3333333, -53.2),  # gazetteer point
    ])
    other = primary.rename(columns={"ccode": "gwcode"}).copy()
    other.loc[1, ["lat", "lng"]] = [10.123456, 20.654321]
    third = other.copy()
    third.loc[2, ["lat", "lng"]] = [-15.123456, -47.654321]  # a city-precision point for the centroid capital
    # one other file: the swap is detected, but two files alone cannot say which is wrong
    flags = check_capital_coordinates(primary, {"gw_capitals.csv": other}).set_index("ccode")
    assert set(flags.index) == {2, 3}
    assert "km from the same capital in gw_capitals.csv" in flags.loc[2, "reason"]
    assert flags[["alt_file"]].isna().all().all()
    # two other files agreeing against the primary, and a city geocode for a gazetteer point: fixed
    others = {"gw_capitals.csv": other, "third.csv": third}
    flags = check_capital_coordinates(primary, others).set_index("ccode")
    assert flags.loc[2, "alt_file"] == "gw_capitals.csv" and flags.loc[2, "alt_lat"] == 10.123456
    assert flags.loc[3, "alt_file"] == "third.csv" and flags.loc[3, "alt_lat"] == -15.123456
    log = ExclusionLog()
    fixed = resolve_capitals(primary, {"gw_capitals.csv": other}, "cow_capitals.csv", log).set_index("ccode")
    assert "UNCORRECTED" in fixed.loc[3, "capital_coord_source"] and fixed.loc[3, "lat"] == -10.3333333
    fixed = resolve_capitals(primary, others, "cow_capitals.csv", log).set_index("ccode")
    assert fixed.loc[2, "lat"] == 10.123456 and fixed.loc[2, "capital_coord_source"].startswith("gw_capitals.csv")
    assert fixed.loc[3, "lng"] == -47.654321 and fixed.loc[3, "capital_coord_source"].startswith("third.csv")
    assert fixed.loc[1, "capital_coord_source"] == "cow_capitals.csv"


@pytest.fixture(scope="module")
def built(raw_dir):
    log = ExclusionLog()
    return build_covariates(raw_dir, log), log


@pytest.mark.needs_raw
def test_real_covariates(built):
    cov, log = built
    assert not cov.duplicated(["ccode", "year"]).any() and len(cov) == 2707
    de = cov.set_index(["ccode", "year"])
    assert de.loc[(700, 2005), "dist_kabul_km"] == 0
    assert bool(de.loc[(2, 2010), "us"]) and not cov.loc[cov["ccode"] != 2, "us"].any()
    # Myanmar moved its capital in November 2005: Naypyidaw counts from 2006
    assert de.loc[(775, 2005), "capital"] == "Rangoon" and de.loc[(775, 2006), "capital"] == "Naypyidaw"
    # Brasilia sits on Brazil's centroid in both peacesciencer files: detected, no file to fix it
    assert "UNCORRECTED" in de.loc[(140, 2005), "capital_coord_source"]
    reasons = " | ".join(e.reason for e in log.entries)
    assert "polity2 missing" in reasons and "milper missing" in reasons


@pytest.mark.needs_raw
def test_real_capital_check_flags_brasilia(raw_dir):
    cow = pd.read_csv(raw_dir / COW_CAPITALS_FILE)
    gw = pd.read_csv(raw_dir / COW_CAPITALS_FILE.parent / "gw_capitals.csv")
    flags = check_capital_coordinates(cow, {"gw_capitals.csv": gw})
    assert "Brasilia" in set(flags["capital"]) and "Riyadh" in set(flags["capital"])


@pytest.mark.needs_raw
def test_write_is_deterministic(raw_dir, tmp_path):
    a = write_covariate_tables(raw_dir, tmp_path / "a", ExclusionLog())
    b = write_covariate_tables(raw_dir, tmp_path / "b", ExclusionLog())
    assert a == b
    assert (tmp_path / "a" / "covariates.csv").read_bytes() == (tmp_path / "b" / "covariates.csv").read_bytes()
    assert len(read_table(tmp_path / "a" / "covariates.csv", COVARIATES_SCHEMA)) == 2707
