"""The alternative panels (data/pipeline/panel_variants.py): made from the committed tables alone,
they differ from panel.csv only where their rule says, and a run config or grid axis reads them."""

import json

import numpy as np
import pandas as pd
import pytest
from allypot.data.loaders import load_table
from allypot.data.pipeline import troops
from allypot.data.pipeline.alliances import load_alliance_rules
from allypot.data.pipeline.panel import PANEL_SCHEMA
from allypot.data.pipeline.panel_variants import (
    CONTRIBUTION_COLUMNS,
    PUBLISHED_SHARE_FILE,
    placemat_file,
    placemat_panel,
    variant_files,
    write_panel_variants,
)
from allypot.data.schema import ExclusionLog, write_table
from allypot.models.inputs import inputs_from_tables
from allypot.sensitivity.grid import load_grid, plan_grid

from allypot.paths import REPO_ROOT, TABLES_DIR

KEY = ["ccode", "year"]
RULES = troops.load_rules()
OTHER_RULES = [rule for rule in troops.PLACEMAT_RULES if rule != RULES.placemat_rule]


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"ccode": "int64", "year": "int64"}).set_index(KEY).sort_index()


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _keyed(load_table("panel", TABLES_DIR))


@pytest.fixture(scope="module")
def variants() -> dict[str, pd.DataFrame]:
    return {name: _keyed(load_table("panel", TABLES_DIR, filename=name)) for name in variant_files()}


def test_the_committed_variants_are_what_the_build_writes_from_the_committed_tables(tmp_path):
    written = write_panel_variants(TABLES_DIR, tmp_path)
    assert sorted(written) == sorted(variant_files()) and len(written) == len(troops.PLACEMAT_RULES)
    for name, path in written.items():
        assert path.read_bytes() == (TABLES_DIR / name).read_bytes(), name
        meta = name.replace(".csv", ".meta.json")
        assert (tmp_path / meta).read_text() == (TABLES_DIR / meta).read_text(), meta


def test_the_builds_own_placemat_rule_rebuilds_panel_csv_byte_for_byte(tmp_path):
    """The variant's recipe (troops recombined from troop_observations.csv) is the build's: under
    the build's own rule it gives back panel.csv, so a variant differs only by its rule."""
    rebuilt = placemat_panel(TABLES_DIR, RULES.placemat_rule, RULES, load_alliance_rules().universe, ExclusionLog())
    write_table(rebuilt, tmp_path / "panel.csv", PANEL_SCHEMA, sources={})
    assert (tmp_path / "panel.csv").read_bytes() == (TABLES_DIR / "panel.csv").read_bytes()


@pytest.mark.parametrize("rule", OTHER_RULES)
def test_a_placemat_variant_changes_only_troop_figures_and_in_the_rules_direction(panel, variants, rule):
    variant = variants[placemat_file(rule)]
    assert variant.index.equals(panel.index)
    unchanged = [c for c in PANEL_SCHEMA.column_names if c not in CONTRIBUTION_COLUMNS and c not in KEY]
    pd.testing.assert_frame_equal(variant[unchanged], panel[unchanged])
    changed = ~np.isclose(variant["share"], panel["share"], rtol=1e-9, equal_nan=True)
    assert changed.sum() > 50  # the rule matters for real, in a few hundred state-years
    both_placemat = (variant["troops_source"].str.startswith("placemat", na=False)
                     & panel["troops_source"].str.startswith("placemat", na=False))
    isaf_v, isaf_p = variant.loc[both_placemat, "troops_isaf"], panel.loc[both_placemat, "troops_isaf"]
    if rule == "max":  # the year's largest snapshot is at least the one nearest the reference date
        assert (isaf_v >= isaf_p - 1e-9).all() and (isaf_v > isaf_p).any()
    observations = load_table("troop_observations", TABLES_DIR)
    placemat = observations[observations["source"] == "placemat"].groupby(KEY)["troops"]
    low, high = placemat.min().reindex(isaf_v.index), placemat.max().reindex(isaf_v.index)
    assert ((isaf_v >= low - 1e-9) & (isaf_v <= high + 1e-9)).all()  # every rule picks within the year's snapshots


def test_the_published_share_variant_carries_the_published_outcome_and_the_rebuilt_rest(panel, variants):
    variant = variants[PUBLISHED_SHARE_FILE]
    published = _keyed(load_table("published_panel", TABLES_DIR))
    assert variant.index.equals(panel.index)
    common = variant.index.intersection(published.index)
    np.testing.assert_allclose(variant.loc[common, "share"], published.loc[common, "share"], rtol=1e-9)
    np.testing.assert_allclose(variant.loc[common, "troops_afghanistan"], published.loc[common, "troops_afghanistan"],
                               rtol=1e-9)
    assert variant.loc[variant.index.difference(published.index), "share"].isna().all()
    rest = [c for c in PANEL_SCHEMA.column_names if c not in CONTRIBUTION_COLUMNS and c not in KEY]
    pd.testing.assert_frame_equal(variant[rest], panel[rest])
    # the published false zeros are here: Germany 2008-2010 (SOURCES.md section 1.3) contributed thousands
    germany = [(255, year) for year in (2008, 2009, 2010)]
    assert (variant.loc[germany, "share"] == 0).all() and (panel.loc[germany, "share"] > 0).all()
    meta = json.loads((TABLES_DIR / PUBLISHED_SHARE_FILE.replace(".csv", ".meta.json")).read_text())
    lost = int((variant["share"].isna() & panel["share"].notna()).sum())
    assert meta["differs_from_panel"]["share_only_in_panel"] == lost > 0
    assert any(e["n_rows"] == lost for e in meta["exclusions"])  # every lost outcome is counted in the meta


def test_a_run_config_reads_a_variant_and_the_sample_says_what_it_lost():
    rebuilt = inputs_from_tables(TABLES_DIR, "political")
    published = inputs_from_tables(TABLES_DIR, "political", panel_file=PUBLISHED_SHARE_FILE)
    assert len(published.rows) < len(rebuilt.rows)
    assert dict(published.exclusions)["share missing"] > dict(rebuilt.exclusions)["share missing"]


def test_the_data_rules_grid_shares_its_reference_cell_with_the_default_grid():
    grids = REPO_ROOT / "sensitivity/grids"
    rules = plan_grid(load_grid(grids / "data_rules.toml"), TABLES_DIR)
    default = plan_grid(load_grid(grids / "default.toml"), TABLES_DIR)
    assert rules.cells[0].run_id == default.cells[0].run_id
    assert sorted(c.config["data"]["panel"] for c in rules.cells[1:]) == sorted(variant_files())
    assert len({c.run_id for c in rules.cells}) == len(rules.cells)


def test_an_unknown_build_rule_axis_points_to_the_alternative_panels(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('[axes]\n"data.build_rules.placemat_rule" = ["nearest", "max"]\n')
    with pytest.raises(ValueError, match="vary the axis data.panel"):
        load_grid(path)
