"""allypot audit: Table 1 through the audit path, the depth-direction finding (committed tables
and raw files), N explained at every step, and each repair changing what it says it changes."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from allypot.data.pipeline.alliances import in_universe
from allypot.inference.replicate import fit_ols, replicate_table1
from allypot.inference.replicate_cli import rebuilt_for_replication
from allypot.models.inputs import us_alliances_in_universe, with_universe_allies
from allypot.models.sample import NON_CONTRIBUTORS
from allypot.sensitivity.audit import (
    BASELINE_LABEL,
    OLS_FLAGS,
    audit_panel,
    depth_direction,
    expected_run_id,
    explain_n,
    find_run,
    load_audit_tables,
    mcmc_config,
    published_depth_offset,
    reproduces_table1,
    run_mcmc_steps,
    run_ols_steps,
    step_specification,
    term_frame,
)

from allypot.paths import REPO_ROOT, TABLES_DIR

KEY = ["ccode", "year"]


@pytest.fixture(scope="module")
def tables():
    return load_audit_tables(TABLES_DIR)


@pytest.fixture(scope="module")
def baseline(tables):
    return audit_panel(tables)


def _allied(panel):
    return panel[panel["atopid"].notna() & ~panel["ccode"].isin(list(NON_CONTRIBUTORS))]


def test_table1_reproduced_through_the_audit_path(tables):
    results = run_ols_steps(tables, steps=())
    assert set(results["step"]) == {BASELINE_LABEL}
    check = reproduces_table1(results)
    assert len(check) == 4 and check["matches_print"].all(), check


def test_baseline_recipe_rebuilds_the_published_regressor(tables, baseline):
    """No repair = the published pot_gain and the published alliance of every state-year."""
    pub = tables.published
    both = baseline.merge(pub[[*KEY, "potential", "atopid", "depth"]], on=KEY, suffixes=("", "_pub"))
    kept = both[~both["ccode"].isin(list(NON_CONTRIBUTORS))]
    assert (kept["potential"].isna() == kept["potential_pub"].isna()).all()
    assert np.nanmax(np.abs(kept["potential"] - kept["potential_pub"])) < 1e-9
    assert (both["atopid"].fillna(-1) == both["atopid_pub"].fillna(-1)).all()
    allied = both.dropna(subset=["depth"])
    assert np.abs(allied["alliance_depth"] - allied["depth"]).max() < 1e-9


def test_depth_direction_from_committed_tables(tables):
    finding = depth_direction(tables.published, tables.items)
    assert finding["offset"] == pytest.approx(2.141, abs=1e-9)
    assert finding["r_published_depth_log_kent"] > 0.999999
    assert finding["n_common_alliances"] == 479
    assert finding["r_kent_bc"] == pytest.approx(-0.989, abs=0.0005)
    # the items that load most on depth run against the published scores and with B&C's
    for item in ("milaid", "base", "intcom", "organ1", "contrib", "milcontact"):
        assert finding["r_items_kent"][item] < -0.3 < 0.3 < finding["r_items_bc"][item]
    depth = finding["published_depth_by_alliance"]
    bc = tables.items.set_index("atopid")["bc_depth"]
    # published: Rio Treaty deeper than NATO; Benson & Clinton: the reverse
    assert depth[3075] > depth[3180] and bc[3180] > bc[3075]


def test_offset_refuses_a_depth_that_is_not_the_transformation(tables):
    shifted = tables.published.assign(depth=tables.published["depth"] * 1.01)
    with pytest.raises(ValueError, match="not log"):
        published_depth_offset(shifted, tables.items)


@pytest.mark.needs_raw
def test_depth_direction_from_raw_files(raw_dir):
    """The finding from the raw files alone, without the project's build."""
    atop = raw_dir / "atop" / "jandresgannon__DoDL"
    kent = pd.read_csv(atop / "AllianceDataScore_Kent.csv").rename(columns={"V1": "atopid", "depth.score": "kent"})
    bc = pd.read_csv(atop / "AllianceDataScoreJCR_RR.csv")[["atopid", "Depth.score"]]
    common = kent.merge(bc, on="atopid")
    assert len(common) == 479
    assert common["kent"].corr(common["Depth.score"]) == pytest.approx(-0.989, abs=0.0005)

    pub = pd.read_csv(raw_dir / "afghanistan" / "CenterForPeaceAndSecurityStudies__ISAF" / "converted"
                      / "iiss_afghan_complete.rds.csv")
    allied = pub.dropna(subset=["atopid"]).merge(kent, on="atopid", how="left")
    assert allied["kent"].notna().all()
    implied = np.log(allied["kent"] + 2.141)
    finite = np.isfinite(implied)
    assert np.corrcoef(implied[finite], allied.loc[finite, "depth"])[0, 1] > 0.999999
    assert np.abs(implied[finite] - allied.loc[finite, "depth"]).max() < 1e-9
    # log(0): Afghanistan's own pact (6050, score -2.141) became depth 0
    assert set(allied.loc[~finite, "ccode"]) == {700} and (allied.loc[~finite, "depth"] == 0).all()
    # non-allies have depth 0
    assert (pub.loc[pub["atopid"].isna() & pub["depth"].notna(), "depth"] == 0).all()

    # each allied state-year took its lowest-numbered scored US alliance (ATOP 5.1 membership)
    members = pd.read_csv(atop / "atop5_1m.csv", usecols=["atopid", "member", "yrent", "yrexit"])
    members["yrexit"] = members["yrexit"].where(members["yrexit"] > 0, 2018)
    years = pd.DataFrame({"year": range(2001, 2015)})
    spells = members.merge(years, how="cross")
    spells = spells[(spells["yrent"] <= spells["year"]) & (spells["year"] <= spells["yrexit"])]
    us = spells.loc[spells["member"] == 2, ["atopid", "year"]].drop_duplicates()
    shared = spells.merge(us, on=["atopid", "year"]).rename(columns={"member": "ccode"})
    shared = shared[(shared["ccode"] != 2) & shared["atopid"].isin(kent["atopid"])]
    lowest = shared.groupby(["ccode", "year"])["atopid"].min().rename("lowest").reset_index()
    both = pub.merge(lowest, on=KEY, how="left")
    agree = both["atopid"].fillna(-1) == both["lowest"].fillna(-1)
    assert agree[both["atopid"].notna()].all()
    # where they disagree the published panel has no alliance although a scored one exists:
    # Uzbekistan's 2002 pact (4998), the only exception
    odd = both[~agree]
    assert set(odd["ccode"]) == {704} and set(odd["lowest"]) == {4998} and odd["atopid"].isna().all()


def test_direction_repair_flips_the_depth_score_correlation(tables, baseline):
    repaired = audit_panel(tables, {"direction"})
    bc = tables.items.set_index("atopid")["bc_depth"]
    r = [_allied(p)["alliance_depth"].corr(_allied(p)["atopid"].map(bc), method="spearman") for p in (baseline, repaired)]
    # rank correlation over the allied state-years: negative as published (the US pacts' Kent
    # and B&C scores are not exact mirrors), 1 after the repair (depth = log(bc_depth + c))
    assert r[0] < -0.3 and r[1] == pytest.approx(1.0)
    # same alliances, only the score changed; Afghanistan's own pact (6050) has no B&C score
    differs = repaired["atopid"].fillna(-1) != baseline["atopid"].fillna(-1)
    assert set(repaired.loc[differs, "ccode"]) == {700}


def test_deepest_repair_takes_the_deepest_scored_alliance(tables, baseline):
    panel = audit_panel(tables, {"direction", "deepest"})
    bc = tables.items.set_index("atopid")["bc_depth"]
    cand = tables.membership.assign(score=tables.membership["atopid"].map(bc)).dropna(subset=["score"])
    deepest = cand.groupby(KEY)["score"].max().rename("max_score")
    allied = _allied(panel).merge(deepest, on=KEY, how="left")
    assert np.allclose(allied["depth_score"], allied["max_score"])
    changed = (panel["atopid"] != baseline["atopid"]) & panel["atopid"].notna()
    # the Rio Treaty members also in the OAS Charter take the (B&C-deeper) OAS
    assert changed.sum() > 0 and set(panel.loc[changed, "atopid"]) >= {3150}
    # allies stay allies (but Afghanistan, whose only pact B&C did not score)
    lost = panel["atopid"].isna() != baseline["atopid"].isna()
    assert set(panel.loc[lost, "ccode"]) == {700}


def test_contribution_repair_changes_the_share_only(tables, baseline):
    panel = audit_panel(tables, {"contribution"})
    rebuilt = tables.rebuilt.set_index(KEY)["share"]
    assert np.allclose(panel.set_index(KEY)["share"], rebuilt.reindex(panel.set_index(KEY).index), equal_nan=True)
    others = [c for c in baseline.columns if c != "share"]
    pd.testing.assert_frame_equal(panel[others], baseline[others])
    assert not np.allclose(panel["share"], baseline["share"], equal_nan=True)


def test_universe_repair_uses_defence_offence_membership(tables, baseline):
    panel = audit_panel(tables, {"universe"})
    rebuilt_ally = panel[KEY].merge(tables.rebuilt[[*KEY, "us_ally"]], on=KEY, how="left")["us_ally"]
    assert np.allclose(panel["us_ally"], rebuilt_ally.astype("float64"), equal_nan=True)
    universe = tables.membership[in_universe(tables.membership, tables.universe)]
    chosen = panel.dropna(subset=["atopid"]).astype({"atopid": "int64"})
    assert len(chosen.merge(universe, on=[*KEY, "atopid"])) == len(chosen)
    assert (panel["us_ally"].fillna(-1) != baseline["us_ally"].fillna(-1)).any()


def test_controls_repair_on_top_of_all_others_is_allypot_replicate(tables):
    """Steps 1-5b cumulatively = the rebuilt column of ``allypot replicate`` (same potential)."""
    potential = pd.read_csv(REPO_ROOT / "reports" / "plugin_potential.csv")
    tables_with = load_audit_tables(TABLES_DIR)
    tables_with.plugin_potential = potential
    flags = set(OLS_FLAGS) - {"effects"}
    panel = audit_panel(tables_with, flags)
    ours = fit_ols(panel, "political").set_index("term").loc["potential"]
    # as run_replication builds its rebuilt column: us_ally recoded for the alliance universe
    recoded = with_universe_allies(tables.rebuilt, us_alliances_in_universe(tables.membership, tables.universe))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rebuilt = rebuilt_for_replication(recoded, potential)
    # a state-year with an outcome but no potential is announced (none since the projection covers every row)
    announced = [w for w in caught if "no plug-in potential" in str(w.message)]
    assert len(announced) == (1 if rebuilt.attrs["missing_potential"] else 0)
    replicate = replicate_table1({"rebuilt": rebuilt}, specs=["political"])
    theirs = replicate[replicate["term"] == "potential"].iloc[0]
    assert ours["estimate"] == pytest.approx(theirs["estimate"], rel=1e-10) and ours["n"] == theirs["n"]


def test_effects_repair_adds_country_and_year_effects(tables, baseline):
    panel = audit_panel(tables, {"effects"})
    spec = step_specification("political", {"effects"}, panel)
    years = [t for t in spec.replication_terms if t.startswith("year_")]
    assert spec.fixed_effects and len(years) == panel["year"].nunique() - 1
    assert (panel[years].sum(axis=1) <= 1).all()


def _counted(n_change: str) -> int:
    return 0 if n_change == "same rows" else sum(int(part.split()[0]) for part in n_change.split("; "))


def test_every_step_n_is_explained(tables):
    """Each step's N = the previous N (alone: the published N) plus its counted reasons."""
    specs = ["political", "all_controls"]
    results = run_ols_steps(tables, specs=specs, steps=("contribution", "controls"))
    published_n = results[results["step"] == BASELINE_LABEL].set_index("spec")["n"]
    for spec in specs:
        rows = results[results["spec"] == spec]
        previous = published_n[spec]
        for row in rows[rows["path"] == "cumulative"].iloc[1:].itertuples():
            assert previous + _counted(row.n_change) == row.n
            previous = row.n
        for row in rows[rows["path"] == "alone"].itertuples():
            assert published_n[spec] + _counted(row.n_change) == row.n
    # the rebuilt controls change the sample, and say why
    last = results[(results["path"] == "cumulative") & (results["spec"] == "political")].iloc[-1]
    assert "missing" in last["n_change"] and "now present" in last["n_change"]


def test_explain_n_names_the_column_that_removed_rows(baseline):
    spec = step_specification("political", set(), baseline)
    sample = term_frame(baseline, spec).dropna().index
    damaged = baseline.copy()
    hit = damaged.set_index(KEY).index.isin(sample[:7])
    damaged.loc[hit, "cinc"] = np.nan
    n_before, n_after, reasons = explain_n(baseline, spec, damaged, spec)
    assert dict(reasons) == {"cinc missing": -(n_before - n_after)} and n_before - n_after > 0
    _, _, back = explain_n(damaged, spec, baseline, spec)
    assert dict(back) == {"cinc now present": n_before - n_after}


def test_mcmc_steps_reuse_only_a_run_folder_whose_id_matches(tmp_path):
    config = mcmc_config("political", quick=True)
    config = config | {"model": config["model"] | {"mode": "plugin"}}
    run_id = expected_run_id(config, TABLES_DIR)
    folder = tmp_path / f"20260101T000000Z-plugin-audit-quick-political-{run_id}"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"id": "not-this"}))
    assert find_run(tmp_path, run_id) is None
    (folder / "meta.json").write_text(json.dumps({"id": run_id}))
    assert find_run(tmp_path, run_id) == folder
    # a different sampler is a different run
    other = mcmc_config("political", quick=False)
    assert expected_run_id(other | {"model": other["model"] | {"mode": "plugin"}}, TABLES_DIR) != run_id


def test_mcmc_steps_without_run_folders_say_not_yet_run(tmp_path):
    rows, notes = run_mcmc_steps(TABLES_DIR, tmp_path, ["political"], fit=False, quick=True)
    assert len(rows) == 3 and ("estimate" not in rows or rows["estimate"].isna().all())
    assert rows["n_change"].str.startswith("not yet run").all() and notes == []


@pytest.mark.slow
def test_audit_writes_report_table_and_figure_outside_the_repository(tmp_path):
    """OLS-only audit (no run folder, no fit): the MCMC steps and step 5 say they were not run."""
    from allypot.sensitivity.audit import run_audit

    results = run_audit(TABLES_DIR, tmp_path / "out", tmp_path / "runs", fit=False)
    text = (tmp_path / "out" / "audit.md").read_text()
    assert (tmp_path / "out" / "audit.png").stat().st_size > 10_000
    assert len(pd.read_csv(tmp_path / "out" / "audit.csv")) == len(results)
    assert "not yet run" in text and text.count("**") >= 2 * 4
    assert reproduces_table1(results)["matches_print"].all()


def test_cli_audit_defaults_write_under_runs_not_into_tracked_files():
    from allypot.cli import build_parser

    args = build_parser().parse_args(["audit", "--quick"])
    assert args.out is None and Path(args.runs).name == "runs"
    assert not args.fit and not args.bayes and args.mcmc_specs == ["political"]
    # runs/ is ignored by git, so a default audit never touches a tracked file
    assert "runs/" in (REPO_ROOT / ".gitignore").read_text().split()


def test_year_dummies_absent_from_a_sample_are_dropped_before_fitting(tables, monkeypatch):
    """All controls: no GDP after 2012, so those years' dummies are constant (Bambi refuses them)."""
    import allypot.sensitivity.audit as audit

    seen = []
    monkeypatch.setattr(audit, "fit_ols", lambda panel, s: seen.append(s) or fit_ols(panel, s))
    panel = audit_panel(tables, {"effects"})
    audit.estimate_step(panel, {"effects"}, ["all_controls"], bayes=False, bambi_kw={})
    years = [t for t in seen[0].replication_terms if t.startswith("year_")]
    sample = term_frame(panel, seen[0]).dropna()
    assert 0 < len(years) < panel["year"].nunique() - 1
    assert all(sample[t].nunique() == 2 for t in years)
