"""README claims that a fresh clone can check (issue 7, First contact): the make targets and the
quick tour reach the virtual environment, the Python snippet runs as written, and the numbers
quoted are the committed reports'."""

import re
from pathlib import Path

import pandas as pd
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
README = (REPOSITORY / "README.md").read_text()


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def test_python_snippet_runs_with_only_the_names_it_imports(monkeypatch):
    """Every name the snippet uses is imported in it (it once used undefined tables_dir and
    runs_dir); the fit itself is replaced by a recorder, so this checks the calls, not MCMC."""
    from allypot.inference import fit, runs
    from allypot.inference.fit import FitOutcome
    from allypot.paths import RUNS_DIR, TABLES_DIR

    calls = {}

    def fit_config(config, tables_dir, runs_dir, progress=True):
        calls["fit"] = (config, tables_dir, runs_dir)
        return FitOutcome(Path("runs/recorded"), pd.DataFrame(), [])

    def load_run(path, verify=True):
        calls["load"] = path
        return None, {}, {}

    monkeypatch.setattr(fit, "fit_config", fit_config)
    monkeypatch.setattr(runs, "load_run", load_run)
    (snippet,) = _python_blocks()
    exec(compile(snippet, "README.md", "exec"), {})
    config, tables_dir, runs_dir = calls["fit"]
    assert (tables_dir, runs_dir) == (TABLES_DIR, RUNS_DIR)
    assert config["run"]["name"] == "joint-default"  # the bundled default config, resolved
    assert calls["load"] == Path("runs/recorded")


def _readme_row(label: str) -> str:
    (row,) = [line for line in README.splitlines() if line.startswith(f"| rebuilt panel, **{label}**")]
    return row


@pytest.mark.parametrize(("mode", "label"), [("plugin", "plug-in"), ("cut", "cut"), ("joint", "joint")])
def test_headline_effects_quoted_in_the_readme_are_the_committed_comparison(mode, label):
    """The README's table of results quotes reports/compare.md: median, R-hat (cut: the worst
    within a fit, as compare reports it) and, where quoted, bulk ESS."""
    lines = [line for line in (REPOSITORY / "reports" / "compare.md").read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {cells[0]: dict(zip(header, cells)) for cells in
            ([cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:])}
    committed = rows[mode]
    row = _readme_row(label)
    assert f"median {float(committed['median']):+.5f}" in row, (committed["median"], row)
    assert f"R-hat {float(committed['rhat']):.3f}" in row, (committed["rhat"], row)
    if "ESS" in row:
        assert f"ESS {float(committed['ess_bulk']):,.0f}" in row, (committed["ess_bulk"], row)


def test_the_committed_prior_check_is_the_one_the_readme_says():
    """The README's 44% of negative shares is the Gaussian family's; the committed
    reports/priors/ is the hurdle default's, which has no negative shares."""
    committed = (REPOSITORY / "reports" / "priors" / "prior_check.md").read_text()
    assert "family `hurdle`" in committed and "Simulated shares: 0.0% below 0" in committed
    flat = " ".join(README.split())  # wrapped as it may be
    assert "with the Gaussian family 44% of simulated shares are negative" in flat
    assert "the committed `reports/priors/` is the check of the hurdle default, which has none" in flat


def test_disagreement_counts_quoted_in_the_readme_are_the_committed_list():
    """The README's count of published-vs-rebuilt disagreements, and the reasons it names, are
    those of data/report/published_vs_rebuilt.csv (which test_report ties to the tables)."""
    listed = pd.read_csv(REPOSITORY / "data" / "report" / "published_vs_rebuilt.csv")
    by_reason = listed["reason"].value_counts()
    flat = " ".join(README.split())
    assert f"**{len(listed)} state-years that disagree**" in flat
    quoted = {
        "published false zeros": "published zero, sources show troops (false zero)",
        "zeros in 2014 where there is no IISS edition":
            "published 0 in a year without IISS deployment data (no edition), rebuilt from placemats",
        "placemat figures lost in a merge": "placemat lost in published merge: published IISS vs rebuilt placemat snapshot",
        "yearly maxima vs dated snapshots": "published yearly max vs rebuilt nearest-to-1-Dec snapshot",
    }
    for words, reason in quoted.items():
        assert f"{by_reason[reason]} {words}" in flat, (words, by_reason[reason])


def test_alternative_panel_counts_quoted_in_the_readme_are_the_committed_metas():
    """How many state-years each alternative panel changes, as the README says, is what the build
    recorded in the variant's .meta.json."""
    import json

    flat = " ".join(README.split())
    tables = REPOSITORY / "data" / "tables"
    meta = {name: json.loads((tables / f"{name}.meta.json").read_text())["differs_from_panel"]
            for name in ("panel_placemat_max", "panel_placemat_mean", "panel_published_share")}
    assert f"share differs from `panel.csv` in {meta['panel_placemat_max']['share_differs']} state-years" in flat
    assert f"the mean of the year's snapshots; {meta['panel_placemat_mean']['share_differs']})" in flat
    published = meta["panel_published_share"]
    assert (f"{published['share_differs']} state-years differ and {published['share_only_in_panel']} lose their "
            "outcome") in flat


def test_make_targets_and_the_quick_tour_reach_the_virtual_environment():
    """A new shell has no ``allypot`` and no arviz (``python3 bench/benchmark.py`` failed): every
    make recipe calls the project's tools from .venv/bin, and the README says how to."""
    makefile = (REPOSITORY / "Makefile").read_text()
    recipes = [line for line in makefile.splitlines() if line.startswith("\t")]
    assert any("$(BIN)/allypot" in line for line in recipes)
    for line in recipes:
        bare = re.sub(r"\$\(BIN\)/\S+|\$\(PYTHON\)|\$\(PYTEST\)", "", line)
        assert not re.search(r"(^|[\s;|&(])(allypot|python3?|pytest)(\s|$)", bare), f"Makefile: {line.strip()}"
    flat = " ".join(README.split())
    assert "source .venv/bin/activate" in flat and ".venv/bin/allypot" in flat
