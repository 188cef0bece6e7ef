"""The published Gannon & Kent panel: key, kept defects, and our column names."""

import numpy as np
import pandas as pd
import pytest
from allypot.data.pipeline.published import (
    NAMED_COLUMNS,
    PUBLISHED_SCHEMA,
    build_published_panel,
)
from allypot.data.schema import ExclusionLog, read_table

from allypot.paths import TABLES_DIR

COMMITTED = TABLES_DIR / "published_panel.csv"


@pytest.fixture(scope="module")
def built(raw_dir):
    log = ExclusionLog()
    return build_published_panel(raw_dir, log), log


@pytest.fixture(scope="module")
def committed():
    return read_table(COMMITTED, PUBLISHED_SCHEMA)


def _check_panel(panel: pd.DataFrame) -> None:
    assert not panel.duplicated(["ccode", "year"]).any()
    assert len(panel) == 2383
    # SOURCES §1.3: comma-formatted IISS values became 0 and stay 0 as published
    de = panel.set_index(["ccode", "year"])
    assert de.loc[(255, 2009), "troops_afghan_final"] == 0
    assert de.loc[(255, 2009), "troops_afghanistan"] == 0
    assert de.loc[(200, 2010), "troops_afghan_final"] == 0
    # copied columns equal their originals wherever the original is a usable number
    for ours, (orig, _, _) in NAMED_COLUMNS.items():
        a, b = panel[ours], panel[orig].astype(float)
        usable = b.notna() & np.isfinite(b) & (b != -9)
        if ours == "dist_kabul_km":
            b = b * 1.609344
        np.testing.assert_allclose(a[usable], b[usable], err_msg=ours)
    # recodes only in our columns: Iceland's inf share, Afghanistan's COW -9
    ice = panel[(panel["ccode"] == 395) & (panel["year"] == 2008)].iloc[0]
    assert np.isinf(ice["troops_afghan_final_ratio"]) and np.isnan(ice["share"])
    afg = panel[(panel["ccode"] == 700) & (panel["year"] == 2001)].iloc[0]
    assert afg["milper"] == -9 and np.isnan(afg["military_personnel_k"])
    # London-Kabul is about 5,700 km
    uk = panel[panel["ccode"] == 200]["dist_kabul_km"].iloc[0]
    assert 5600 < uk < 5800


@pytest.mark.needs_raw
def test_built_panel(built):
    panel, log = built
    _check_panel(panel)
    assert log.to_frame().empty  # the published file has a unique, complete key
    assert list(panel.columns) == PUBLISHED_SCHEMA.column_names


@pytest.mark.needs_raw
def test_casualties_are_annual(built, raw_dir):
    """The published 'casualties' equal afghan_casualties.csv year by year, so are annual."""
    panel, _ = built
    cas = pd.read_csv(raw_dir / "afghanistan" / "CenterForPeaceAndSecurityStudies__ISAF" / "afghan_casualties.csv")
    uk = panel[panel["ccode"] == 200].set_index("year")["casualties_annual"]
    expected = cas.set_index("Year")["United Kingdom"].loc[2001:2014]
    assert (uk.to_numpy() == expected.to_numpy()).all()


def test_committed_panel(committed):
    _check_panel(committed)


@pytest.mark.needs_raw
def test_committed_matches_build(built, committed):
    panel, _ = built
    pd.testing.assert_frame_equal(
        committed[["ccode", "year", "share", "potential"]],
        panel.sort_values(["ccode", "year"]).reset_index(drop=True)[["ccode", "year", "share", "potential"]],
        check_dtype=False,
        rtol=1e-8,
    )
