"""allypot replicate: the rebuilt-panel mapping and an OLS-only end-to-end run (no MCMC)."""

import numpy as np
import pandas as pd
import pytest
from allypot.inference.replicate import PAPER_TABLE1
from allypot.inference.replicate_cli import rebuilt_for_replication, run_replication

from allypot.paths import TABLES_DIR


def tiny_panel() -> pd.DataFrame:
    return pd.DataFrame({
        "ccode": [20, 20, 200, 200, 2, 365],
        "year": [2001, 2002, 2001, 2002, 2001, 2001],
        "share": [0.01, 0.02, 0.0, np.nan, 0.005, 0.0],
        "un_agreement_share": [0.4, 0.5, 0.6, 0.7, np.nan, 0.1],
        "polity2": [10.0, 5.0, 6.0, np.nan, 10.0, -3.0],
        "casualties": [0.0, 3.0, 1.0, 0.0, 7.0, 0.0],
        "casualties_cum": [0.0, 3.0, 1.0, 1.0, 7.0, 0.0],
        "us_ally": [True, True, True, True, False, False],
        "cinc": [0.01, 0.01, 0.02, 0.02, 0.14, 0.05],
        "gdp": [1e6, 1e6, 2e6, 2e6, 1.6e7, 3e6],
        "gdp_per_capita": [4e4, 4e4, 3e4, 3e4, 5e4, 2e4],
        "dist_kabul_km": [10000.0, 10000.0, 5700.0, 5700.0, 11000.0, 3500.0],
    })


def test_columns_are_mapped_with_the_documented_correspondence():
    panel = tiny_panel()
    potential = panel[["ccode", "year"]].assign(potential=np.linspace(-0.2, 0.3, len(panel)))
    out = rebuilt_for_replication(panel, potential)
    assert out["un_agreement_us"].equals(panel["un_agreement_share"])
    # democracy = 1[polity2 >= 6]: 6 is a democracy, 5 is not, missing stays missing
    np.testing.assert_array_equal(out["democracy"].to_numpy(), [1.0, 0.0, 1.0, np.nan, 1.0, 0.0])
    # annual casualties, not the cumulative count
    np.testing.assert_array_equal(out["casualties_annual"], panel["casualties"])
    np.testing.assert_array_equal(out["potential"], potential["potential"])
    assert out["us_ally"].dtype == "float64" and out.attrs["missing_potential"] == 0


def test_missing_potential_is_reported_not_silently_dropped():
    panel = tiny_panel()
    potential = panel[["ccode", "year"]].iloc[[0, 2, 4]].assign(potential=[0.1, 0.2, 0.3])
    with pytest.warns(UserWarning, match="2 rebuilt state-years"):
        out = rebuilt_for_replication(panel, potential)
    # rows stay (the regression's complete-case rule drops them); only outcome rows of
    # non-excluded states count: (20, 2002) and (365, 2001), not (200, 2002) without a share
    assert len(out) == len(panel)
    assert out.attrs["missing_potential"] == 2


def test_duplicate_potential_rows_are_refused():
    panel = tiny_panel()
    potential = pd.DataFrame({"ccode": [20, 20], "year": [2001, 2001], "potential": [0.1, 0.2]})
    with pytest.raises(ValueError, match="duplicate"):
        rebuilt_for_replication(panel, potential)


def test_ols_end_to_end_with_a_supplied_potential(tmp_path):
    """Real tables, a supplied potential (the published one where it exists): OLS only, seconds."""
    published = pd.read_csv(TABLES_DIR / "published_panel.csv")
    potential = published.dropna(subset=["ccode", "year", "potential"])[["ccode", "year", "potential"]]
    potential = potential.astype({"ccode": "int64", "year": "int64"}).drop_duplicates(["ccode", "year"])
    with pytest.warns(UserWarning, match="no plug-in potential"):
        table = run_replication(TABLES_DIR, tmp_path, bayes=False, potential=potential)
    assert set(table["panel"]) == {"published", "rebuilt"} and set(table["method"]) == {"ols"}
    pub = table[(table.panel == "published") & (table.term == "potential")].set_index("spec")
    for spec, printed in PAPER_TABLE1.items():
        assert round(pub.loc[spec, "estimate"], 3) == printed["estimate"]
        assert pub.loc[spec, "n"] == printed["n"]
    rebuilt = table[(table.panel == "rebuilt") & (table.term == "potential")]
    assert len(rebuilt) == 4 and rebuilt["n"].gt(0).all()
    text = (tmp_path / "table1.md").read_text()
    assert "plug-in potential" in text and "ignore the measurement uncertainty" in text
    assert pd.read_csv(tmp_path / "table1.csv").shape[0] == len(table)
    assert (tmp_path / "plugin_potential.csv").exists()
