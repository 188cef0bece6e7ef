"""The data report: the published-vs-rebuilt comparison, its figures and the written report."""

import numpy as np
import pandas as pd
import pytest
from allypot.data import report
from allypot.data.catalog import SCHEMAS
from allypot.data.loaders import load_table
from allypot.data.schema import read_table
from matplotlib.figure import Figure

from allypot.paths import TABLES_DIR


def _rebuilt(rows):
    cols = ["ccode", "year", "troops_afghanistan", "troops_isaf", "troops_oef", "troops_source", "armed_forces",
            "armed_forces_fallback", "share"]
    frame = pd.DataFrame(rows, columns=cols[:-1])
    frame["share"] = (frame["troops_afghanistan"] / frame["armed_forces"]).where(frame["armed_forces"] > 0)
    return frame


def _published(rows):
    cols = ["ccode", "year", "country", "troops", "troops_afghan_total", "troops_afghan_unama", "armed_forces"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["troops_afghan_final"] = frame["troops"].fillna(frame["troops_afghan_total"])
    frame["troops_afghanistan"] = frame["troops_afghan_final"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["troops_afghan_final_ratio"] = frame["troops_afghan_final"] / frame["armed_forces"]
    frame["share"] = frame["troops_afghan_final_ratio"].where(np.isfinite(frame["troops_afghan_final_ratio"]))
    return frame


@pytest.fixture
def synthetic():
    """Four shared state-years: a false zero, a 2014 zero, an equal cell, a zero-forces state."""
    rebuilt = _rebuilt([
        (255, 2010, 4341.0, 4341.0, np.nan, "placemat 2010-11-15", 251465, False),  # false zero
        (200, 2010, 9500.0, 9500.0, np.nan, "placemat 2010-11-15", 178470, False),  # equal
        (200, 2014, 2837.0, 2837.0, np.nan, "placemat 2014-11-07", 159150, False),  # no IISS edition
        (395, 2008, 8.0, 8.0, np.nan, "placemat 2008-12-01", 0, False),  # zero armed forces, equal troops
    ])
    published = _published([
        (255, 2010, "Germany", np.nan, 0.0, 0.0, 251465),
        (200, 2010, "United Kingdom", np.nan, 9500.0, 0.0, 178470),
        (200, 2014, "United Kingdom", np.nan, 0.0, 0.0, 159150),
        (395, 2008, "Iceland", np.nan, 8.0, 0.0, 0),
    ])
    return rebuilt, published


def test_comparison_finds_exactly_the_planted_disagreements(synthetic):
    rebuilt, published = synthetic
    names = pd.DataFrame({"ccode": [255, 200, 395], "name": ["Germany", "United Kingdom", "Iceland"]})
    out = report.compare_contributions(rebuilt, published, names)
    got = {(r.ccode, r.year): r.reason for r in out.itertuples()}
    assert got == {
        (255, 2010): report.FALSE_ZERO,
        (200, 2014): report.NO_IISS_YEAR,
        (395, 2008): report.INFINITE_SHARE,
    }
    germany = out.set_index(["ccode", "year"]).loc[(255, 2010)]
    assert germany["name"] == "Germany"
    assert germany["troops_rebuilt"] == 4341 and germany["troops_published"] == 0
    assert germany["troops_difference"] == 4341


def test_tolerance_and_one_sided_rows(synthetic):
    rebuilt, published = synthetic
    published = published.copy()
    # 0.5 % apart: within the tolerance, so the equal UK 2010 cell stays equal
    published.loc[1, ["troops_afghan_total", "troops_afghan_final", "troops_afghanistan"]] = 9550.0
    extra = _rebuilt([(2, 2010, 97000.0, 90000.0, 7000.0, "placemat 2010-11-15", 1563996, False)])
    out = report.compare_contributions(pd.concat([rebuilt, extra], ignore_index=True), published)
    reasons = dict(zip(zip(out["ccode"], out["year"]), out["reason"]))
    assert (200, 2010) not in reasons
    assert reasons[(2, 2010)] == report.ONLY_REBUILT


def test_max_vs_nearest_and_oef(synthetic):
    rebuilt = _rebuilt([
        (2, 2010, 97000.0, 90000.0, 7000.0, "placemat 2010-11-15", 1563996, False),
        (740, 2014, 50.0, 50.0, np.nan, "placemat 2014-11-07", 247150, False),
        (200, 2010, 9500.0, 9500.0, np.nan, "placemat 2010-11-15", 178470, False),
    ])
    published = _published([
        (2, 2010, "United States", 90000.0, 0.0, 0.0, 1563996),
        (740, 2014, "Japan", 120.0, 0.0, 0.0, 247150),
        (200, 2010, "United Kingdom", np.nan, 9500.0, 0.0, 178470),
    ])
    out = report.compare_contributions(rebuilt, published).set_index(["ccode", "year"])["reason"]
    assert out[(2, 2010)] == report.OEF_ADDED
    assert out[(740, 2014)] == report.MAX_VS_NEAREST
    assert len(out) == 2


@pytest.fixture(scope="module")
def real():
    panel = load_table("panel")
    published = read_table(TABLES_DIR / "published_panel.csv", SCHEMAS["published_panel"])
    return panel, published


def test_coverage_figure(real):
    coverage = report.coverage_table(real[0])
    assert {"contributors", "contributors_incl_us", "source_placemat", "source_iiss"} <= set(coverage.columns)
    assert (coverage["source_placemat"] + coverage["source_iiss"] == coverage["contributors_incl_us"]).all()
    fig = report.plot_coverage(coverage)
    assert isinstance(fig, Figure)
    left, right = fig.axes
    assert len(left.get_lines()) == 5
    assert len(right.patches) == 2 * len(coverage)


def test_contributors_figure(real):
    panel, published = real
    fig = report.plot_contributors(report.coverage_table(panel), report.published_contributors(published))
    assert len(fig.axes) == 2
    assert all(len(ax.get_lines()) == 2 for ax in fig.axes)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["rebuilt", "published"]


def test_heatmaps(real):
    panel, published = real
    counts = report.reason_counts(report.compare_contributions(panel, published))
    fig = report.plot_reason_heatmap(counts)
    ax = fig.axes[0]
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (len(counts), counts.shape[1] - 1)
    assert len(ax.texts) == int((counts.drop(columns="total").to_numpy() > 0).sum())
    missing = report.missingness_by_year(panel)
    fig = report.plot_missingness(missing)
    assert fig.axes[0].images[0].get_array().shape == missing.shape
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(report.KEY_COLUMNS)


def test_write_data_report(real, tmp_path):
    panel, published = real
    expected = report.compare_contributions(panel, published)
    path = report.write_data_report(TABLES_DIR, tmp_path)
    text = path.read_text()
    assert f"**{len(expected)} state-years disagree**" in text
    listed = pd.read_csv(tmp_path / "published_vs_rebuilt.csv")
    assert len(listed) == len(expected)
    assert listed["reason"].value_counts().to_dict() == expected["reason"].value_counts().to_dict()
    for name in report.FIGURES.values():
        assert (tmp_path / "figures" / name).stat().st_size > 0
        assert f"figures/{name}" in text
    # every printed zero that yielded to a positive figure is listed (Jordan 2011-13)
    troops = load_table("troops_country_year")
    flagged = troops[troops["isaf_zero_replaced"].astype(bool)]
    assert len(flagged) > 0 and f"It applies to {len(flagged)} nation-years" in text
    for _, row in flagged.iterrows():
        assert f"| {row['ccode']} | " in text and f"| {row['year']} | {row['troops_isaf']:g} |" in text
    others = panel[~panel["us"].astype(bool)]
    assert f"{int(others['us_ally'].sum())} under `defence_offence`, {int(others['us_ally_all'].sum())} under `all`" in text


def test_zero_replacements_lists_flagged_cells_with_both_sources():
    troops = pd.DataFrame({
        "ccode": [663, 663, 200], "year": [2011, 2014, 2011], "troops_isaf": [720.0, 616.0, 9500.0],
        "troops_source": ["iiss ISAF MB2012", "placemat 2014-11-07", "placemat 2011-12-01"],
        "isaf_zero_replaced": [True, False, False],
    })
    observations = pd.DataFrame({
        "ccode": [663, 663, 663, 663, 200], "year": [2011] * 5,
        "source": ["placemat", "placemat", "iiss", "iiss", "placemat"],
        "source_detail": ["2011-01-25", "2011-12-01", "MB2012", "MB2012", "2011-12-01"],
        "mission": ["ISAF", "ISAF", "ISAF", "OEF", "ISAF"], "troops": [0, 0, 720, 30, 9500],
    })
    names = pd.DataFrame({"ccode": [663, 200], "name": ["Jordan", "United Kingdom"]})
    got = report.zero_replacements(troops, observations, names)
    assert got[["ccode", "name", "year"]].values.tolist() == [[663, "Jordan", 2011]]
    row = got.iloc[0]
    assert (row["placemat_snapshots"], row["placemat_min"], row["placemat_max"], row["iiss_isaf"]) == (2, 0, 0, 720)


def test_alliances_outside_universe_counts_state_years_that_lose_ally_status():
    membership = pd.DataFrame({
        "ccode": [365, 365, 255, 255], "year": [2009, 2009, 2009, 2009], "atopid": [3740, 3755, 3180, 3740],
        "phase": [2, 0, 2, 2], "defense": [0, 0, 1, 0], "offense": [0, 0, 0, 0],
    })
    panel = pd.DataFrame({"ccode": [365, 255], "year": [2009, 2009], "stateabb": ["RUS", "GMY"],
                          "us_ally": [False, True]})
    items = pd.DataFrame({"atopid": [3180, 3740, 3755], "begyr": [1949, 1975, 1976], "defense": [1, 0, 0],
                          "offense": [0, 0, 0], "nonagg": [1, 1, 1], "consul": [1, 0, 0]})
    got = report.alliances_outside_universe(membership, panel, items, "defence_offence").set_index("atopid")
    assert sorted(got.index) == [3740, 3755]
    assert got.loc[3740, "rows"] == 2 and got.loc[3740, "state_years_no_longer_allied"] == 1  # Germany keeps NATO
    assert got.loc[3740, "states_no_longer_allied"] == "RUS"
    assert report.alliances_outside_universe(membership, panel, items, "all").empty
    items = items.assign(milinst=[2, 1, 0], milinst_phase=[2, 2, 0], base=[3, 0, 0], organ1=[3, 3, 0],
                         bc_depth=[-0.18, None, None])
    inside = report.universe_alliances(membership, items, "defence_offence")
    assert inside["atopid"].tolist() == [3180] and inside.loc[0, "phases_in_force"] == "2"
    assert (inside.loc[0, "milinst"], inside.loc[0, "states"], inside.loc[0, "state_years"]) == (2, 1, 1)
    assert len(report.universe_alliances(membership, items, "all")) == 3
