"""Crosswalk and CountryResolver: every source's countries map, unknown names fail loudly."""


import pandas as pd
import pytest
from allypot.data.pipeline.crosswalk import (
    CROSSWALK_SCHEMA,
    PLACEMATS,
    CountryResolver,
    UnmappedCountryError,
    build_crosswalk,
    read_aliases,
    un_voters,
    write_crosswalk,
)
from allypot.data.schema import ExclusionLog, validate



@pytest.fixture(scope="module")
def crosswalk(raw_dir) -> pd.DataFrame:
    return build_crosswalk(raw_dir, ExclusionLog())


@pytest.fixture(scope="module")
def resolver(crosswalk) -> CountryResolver:
    return CountryResolver.from_tables(crosswalk, read_aliases())


def _tiny_resolver() -> CountryResolver:
    cw = pd.DataFrame({
        "ccode": [2, 565, 437], "stateabb": ["USA", "NAM", "CDI"],
        "name": ["United States of America", "Namibia", "Ivory Coast"],
        "iso2": ["US", "NA", "CI"], "iso3": ["USA", "NAM", "CIV"], "gwcode": [2, 565, 437],
    })
    aliases = pd.DataFrame({"alias": ["Côte d’Ivoire"], "ccode": [437], "kind": ["name"]})
    return CountryResolver.from_tables(cw, aliases)


def test_names_fold_case_space_and_diacritics():
    r = _tiny_resolver()
    got = r.to_ccode(pd.Series(["  NAMIBIA ", "cote d'ivoire", "Côte d’Ivoire", "United States of America"]), "name", "t", "c")
    assert got.tolist() == [565, 437, 437, 2]


def test_unknown_name_raises_listing_all_values_file_and_column():
    r = _tiny_resolver()
    with pytest.raises(UnmappedCountryError) as err:
        r.to_ccode(pd.Series(["Namibia", "Atlantis", "Lemuria"]), "name", "some/file.csv", "country")
    msg = str(err.value)
    assert "'Atlantis'" in msg and "'Lemuria'" in msg and "some/file.csv" in msg and "'country'" in msg
    assert err.value.values == ["Atlantis", "Lemuria"]


def test_ignored_values_come_back_missing():
    got = _tiny_resolver().to_ccode(pd.Series(["Namibia", "NATO", "Total"]), "name", "t", "c", ignore={"NATO", "Total"})
    assert got.iloc[0] == 565 and got.iloc[1:].isna().all()


def test_namibia_iso2_na_is_a_code():
    assert _tiny_resolver().to_ccode(pd.Series(["NA", "us"]), "iso2", "t", "c").tolist() == [565, 2]


def test_conflicting_alias_is_rejected():
    cw = pd.DataFrame({"ccode": [2], "stateabb": ["USA"], "name": ["United States"], "iso2": ["US"], "iso3": ["USA"], "gwcode": [2]})
    aliases = pd.DataFrame({"alias": ["united  states"], "ccode": [20], "kind": ["name"]})
    with pytest.raises(ValueError, match="conflicting"):
        CountryResolver.from_tables(cw, aliases)


@pytest.mark.needs_raw
def test_crosswalk_is_valid_one_row_per_state(crosswalk):
    validate(crosswalk, CROSSWALK_SCHEMA)
    assert crosswalk["ccode"].is_unique
    row = crosswalk.set_index("ccode")
    assert row.loc[565, "iso2"] == "NA"
    assert row.loc[255, "iso3"] == "DEU" and row.loc[255, "gwcode"] == 260
    assert {341, 345, 347, 626, 713, 860} <= set(crosswalk["ccode"])
    assert len(crosswalk) >= 190


@pytest.mark.needs_raw
def test_every_placemat_nation_maps(raw_dir, resolver):
    countries = pd.read_csv(raw_dir / PLACEMATS, dtype=str, keep_default_na=False)["country"]
    codes = resolver.to_ccode(countries, "name", str(PLACEMATS), "country")
    assert codes.notna().all()
    by_name = dict(zip(countries, codes))
    assert by_name["Germany"] == 255 and by_name["Republic of Korea"] == 732
    assert by_name["FYR Macedonia"] == 343 and by_name["Montenegro"] == 341
    assert by_name["Czech Republic"] == 316 and by_name["Bosnia and Herzegovina"] == 346


@pytest.mark.needs_raw
def test_every_un_voter_2001_2014_maps_by_name_and_iso2(raw_dir, resolver):
    voters = un_voters(raw_dir)
    by_name = resolver.to_ccode(voters["country"], "name", "un_votes", "country")
    by_iso2 = resolver.to_ccode(voters["country_code"], "iso2", "un_votes", "country_code")
    assert by_name.notna().all() and (by_name == by_iso2).all()
    codes = dict(zip(voters["country"], by_name))
    assert codes["Namibia"] == 565 and codes["Yugoslavia"] == 345 and codes["Yemen"] == 679
    assert codes["Côte d’Ivoire"] == 437 and codes["Congo - Kinshasa"] == 490
    assert codes["Timor-Leste"] == 860 and codes["South Sudan"] == 626 and codes["Sudan"] == 625


@pytest.mark.needs_raw
def test_gw_codes_map_both_serbia_codes(resolver):
    assert resolver.to_ccode(pd.Series([340, 345, 260, 678]), "gwcode", "t", "gw").tolist() == [345, 345, 255, 679]


@pytest.mark.needs_raw
def test_write_is_deterministic(raw_dir, tmp_path):
    a = write_crosswalk(raw_dir, tmp_path / "a")
    b = write_crosswalk(raw_dir, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    assert a.with_suffix(".meta.json").read_bytes() == b.with_suffix(".meta.json").read_bytes()
