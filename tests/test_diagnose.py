"""The diagnose checks on synthetic posteriors whose pathology is known by construction:
a well-mixed run passes; two chains stuck in each of two modes, and a funnel whose narrow
neck diverges, fail with the right reasons; depth that ranks the OAS Charter above NATO fails
the face-validity check."""

import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from allypot.diagnostics import checks
from allypot.diagnostics.checks import Thresholds, verdict
from allypot.diagnostics.rundata import RunData

US_TREATIES = np.array([3180, 3150])
ALLIANCES = np.array([1005, 3150, 3180])
CHAINS, DRAWS = 4, 500


def make_run(posterior: dict, sample_stats: dict) -> RunData:
    coords = {"chain": np.arange(CHAINS), "draw": np.arange(DRAWS), "alliance": ALLIANCES}
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset(posterior, coords=coords),
        "sample_stats": xr.Dataset(sample_stats, coords={"chain": coords["chain"], "draw": coords["draw"]}),
    })
    run = RunData(Path("synthetic"), tree, {"model": {"mode": "joint", "family": "hurdle"}, "run": {"seed": 1}},
                  {"data_hash": "synthetic"}, Path("unused"))
    run.us_alliances = US_TREATIES  # what open_run derives from the tables
    return run


def healthy_stats(rng):
    return {
        "diverging": (("chain", "draw"), np.zeros((CHAINS, DRAWS), dtype=bool)),
        "maxdepth_reached": (("chain", "draw"), np.zeros((CHAINS, DRAWS), dtype=bool)),
        "energy": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
    }


@pytest.fixture
def rng():
    return np.random.default_rng(20011007)


def good_run(rng) -> RunData:
    return make_run({
        "potential_effect": (("chain", "draw"), rng.normal(0.01, 0.002, (CHAINS, DRAWS))),
        "logit_beta": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
        "depth_theta": (("chain", "draw", "alliance"), rng.normal(size=(CHAINS, DRAWS, ALLIANCES.size))),
    }, healthy_stats(rng))


def run_checks(run: RunData, thresholds=Thresholds()) -> dict[str, checks.CheckResult]:
    results = checks.check_convergence(run, checks.compute_convergence(run), thresholds)
    results.append(checks.check_multimodality(run, checks.compute_chain_modes(run, thresholds.mode_separation_sd), thresholds))
    results += checks.check_sampler(run, thresholds)
    return {r.name: r for r in results}


def test_good_run_passes(rng):
    results = run_checks(good_run(rng))
    assert all(r.passed for r in results.values()), [r.message for r in results.values() if not r.passed]
    assert verdict(list(results.values())) == "PASS"
    assert results["convergence: R-hat"].value < 1.01
    assert results["convergence: R-hat"].threshold == 1.01
    assert results["convergence: bulk ESS"].threshold == 100 * CHAINS


def test_two_chains_in_each_of_two_modes_fail_as_multimodality(rng):
    mode = np.where(np.arange(CHAINS) < 2, -1.0, 1.0)[:, None]
    theta = rng.normal(size=(CHAINS, DRAWS, ALLIANCES.size))
    theta[:, :, 2] += 1.5 * mode  # NATO (3180) deep in chains 2-3, shallow in 0-1
    run = make_run({
        "potential_effect": (("chain", "draw"), 0.01 * mode + rng.normal(0, 0.002, (CHAINS, DRAWS))),
        "logit_beta": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
        "depth_theta": (("chain", "draw", "alliance"), theta),
    }, healthy_stats(rng))
    results = run_checks(run)
    split = results["multimodality: chains in different places"]
    assert split.passed is False
    assert "potential_effect" in split.message and "depth_theta[3180]" in split.message
    assert "depth_theta[3150]" not in split.message.split("E.g.")[0]  # the unsplit treaty is not named
    assert "0,1 | 2,3" in split.table.set_index("quantity").loc["potential_effect", "clusters"]
    assert results["convergence: R-hat"].passed is False
    assert "potential_effect" in results["convergence: R-hat"].message
    assert results["sampler: divergences"].passed is True
    assert verdict(list(results.values())) == "FAIL"
    # a looser threshold lets the same run through: thresholds are honoured, not hard-coded
    loose = run_checks(run, Thresholds(mode_separation_sd=50.0, rhat_max=10.0, ess_per_chain_min=1.0))
    assert loose["multimodality: chains in different places"].passed is True


def test_short_funnel_chain_fails_on_divergences_and_energy(rng):
    """Neal's funnel: log_sigma ~ N(0, 1.5), x ~ N(0, exp(log_sigma)); a sampler that sticks
    and diverges in the neck leaves divergent draws at low log_sigma and a slowly wandering
    energy (random walk), i.e. low E-BFMI."""
    log_sigma = rng.normal(0, 1.5, (CHAINS, DRAWS))
    x = rng.normal(0, np.exp(log_sigma))
    stats = healthy_stats(rng)
    stats["diverging"] = (("chain", "draw"), log_sigma < -2.0)
    stats["energy"] = (("chain", "draw"), np.cumsum(rng.normal(size=(CHAINS, DRAWS)), axis=1))
    stats["maxdepth_reached"] = (("chain", "draw"), log_sigma > 3.0)
    run = make_run({
        "potential_effect": (("chain", "draw"), x),
        "country_sigma": (("chain", "draw"), np.exp(log_sigma)),
        "log_sigma": (("chain", "draw"), log_sigma),
    }, stats)
    results = run_checks(run)
    divergences = results["sampler: divergences"]
    assert divergences.passed is False and divergences.value == int((log_sigma < -2.0).sum())
    assert divergences.table.iloc[0]["quantity"] == "log_sigma" and divergences.table.iloc[0]["shift_sd"] < -1
    assert "log_sigma" in divergences.message and divergences.advice
    from allypot.diagnostics.plots import plot_divergence_pairs

    figure = plot_divergence_pairs(run, divergences.table)
    labels = {ax.get_xlabel() for ax in figure.axes} | {ax.get_ylabel() for ax in figure.axes}
    assert "log_sigma" in labels  # the pair plot shows where the divergences are
    bfmi = results["sampler: E-BFMI"]
    assert bfmi.passed is False and bfmi.value < 0.3
    assert results["sampler: tree depth"].passed is False and results["sampler: tree depth"].severity == "warning"
    assert verdict(list(results.values())) == "FAIL"


def test_cut_runs_judge_convergence_within_each_fit(rng):
    """Pooled cut fits differ by design (each had its own potential): not a convergence failure."""
    run = make_run({"potential_effect": (("chain", "draw"), np.repeat([0.0, 5.0], 2)[:, None] + rng.normal(size=(CHAINS, DRAWS)))},
                   healthy_stats(rng))
    run.idata["cut_potential"] = xr.DataTree(xr.Dataset({"potential": (("fit", "row"), np.zeros((2, 3)))}))
    results = run_checks(run)
    assert results["convergence: R-hat"].passed is True
    assert results["multimodality: chains in different places"].passed is True
    pooled = results["convergence: R-hat"].table
    assert pooled.loc[0, "max_rhat"] < 1.01


def test_cut_runs_need_the_ess_of_a_four_chain_run_not_of_every_pooled_chain():
    thresholds = Thresholds(ess_per_chain_min=100.0)
    assert checks.required_ess(thresholds, chains_per_fit=4, n_fits=1) == 400
    assert checks.required_ess(thresholds, chains_per_fit=2, n_fits=1) == 200
    assert checks.required_ess(thresholds, chains_per_fit=2, n_fits=40) == 400


# ---------------------------------------------------------------------------------------------
# the HTML report in a real headless browser

CHROMIUM = Path("/usr/bin/chromium")


def synthetic_review(run: RunData):
    from allypot.diagnostics import plots
    from allypot.diagnostics.report import RunReview

    thresholds = Thresholds()
    results = list(run_checks(run).values())
    modes = checks.compute_chain_modes(run, thresholds.mode_separation_sd)
    figures = {"chain_modes": plots.plot_chain_modes(modes), "rank": plots.plot_rank_key(run, modes)}
    run.path = Path(f"runs/synthetic-{len(results)}")
    return RunReview(run, results, figures, seconds=1.0)


def render(html_path: Path, tmp_path: Path) -> tuple[np.ndarray, str]:
    """Screenshot (laptop window) and DOM of a page as Debian's chromium renders them."""
    import subprocess

    from matplotlib.image import imread

    if not CHROMIUM.exists():
        pytest.fail("chromium is missing: run `make chromium` (the test target installs it)")
    flags = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "screenshot.png"
    subprocess.run(flags + [f"--screenshot={shot}", "--window-size=1366,768", html_path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    dom = subprocess.run(flags + ["--dump-dom", html_path.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return imread(shot)[..., :3], dom


def colour_fraction(image: np.ndarray, hex_colour: str, rows: slice) -> float:
    target = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return float((np.abs(image[rows] - target).max(axis=-1) < 0.04).mean())


@pytest.mark.slow
@pytest.mark.parametrize("pathology", ["bimodal", "healthy"])
def test_report_renders_in_chromium_with_its_verdict(rng, tmp_path, pathology):
    from allypot.diagnostics.report import VERDICT_COLOURS, write_report

    if pathology == "healthy":
        run = good_run(rng)
    else:
        run = good_run(rng)
        shifted = run.idata["posterior"].to_dataset()
        shifted["potential_effect"] = shifted["potential_effect"] + xr.DataArray([-0.02, -0.02, 0.02, 0.02], dims="chain")
        run.idata["posterior"] = xr.DataTree(shifted)
    review = synthetic_review(run)
    expected = review.verdict
    assert expected == ("PASS" if pathology == "healthy" else "FAIL")
    paths = write_report([review], tmp_path / "report", Thresholds())
    assert {p.name for p in (tmp_path / "report").glob("*.png")} == {"run1-chain_modes.png", "run1-rank.png"}
    assert f"# allypot diagnose: {expected}" in paths["markdown"].read_text()

    image, dom = render(paths["html"], tmp_path)
    assert image.std() > 0.05, "blank screenshot"
    assert f"Verdict: {expected}" in dom and 'id="verdict"' in dom
    assert dom.count("<img") == 2 and "data:image/png;base64," in dom  # self-contained
    top_band = slice(0, image.shape[0] // 5)
    assert colour_fraction(image, VERDICT_COLOURS[expected], top_band) > 0.02
    other = VERDICT_COLOURS["PASS" if expected == "FAIL" else "FAIL"]
    assert colour_fraction(image, other, top_band) < 0.001


def test_diagnose_of_a_folder_that_is_no_run_says_which_file_is_missing(tmp_path, capsys):
    from allypot.cli import main

    assert main(["diagnose", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path) in error and "posterior.nc missing" in error
    assert not (tmp_path / "diagnose").exists()


# ---------------------------------------------------------------------------------------------
# face validity of depth: NATO deeper than the OAS Charter

NATO, OAS_CHARTER = (list(ALLIANCES).index(a) for a in (3180, 3150))
DEPTH_ORDER = "measurement: NATO deeper than the OAS Charter"


def depth_draws(rng, nato_minus_oas: float, draws: int = DRAWS) -> np.ndarray:
    """Draws of theta (chain, draw, alliance) with NATO shifted ``nato_minus_oas`` above the others."""
    theta = rng.normal(size=(CHAINS, draws, ALLIANCES.size))
    theta[:, :, NATO] += nato_minus_oas
    return theta


def with_measurement_group(run: RunData, theta: np.ndarray) -> RunData:
    """What cut and plug-in runs keep: the measurement-stage posterior of depth, thinned."""
    coords = {"chain": np.arange(theta.shape[0]), "draw": np.arange(theta.shape[1]), "alliance": ALLIANCES}
    run.idata["measurement"] = xr.DataTree(xr.Dataset({"depth_theta": (("chain", "draw", "alliance"), theta)}, coords=coords))
    return run


def effect_only_run(rng, mode: str) -> RunData:
    run = make_run({"potential_effect": (("chain", "draw"), rng.normal(0.01, 0.002, (CHAINS, DRAWS)))}, healthy_stats(rng))
    run.config["model"]["mode"] = mode
    return run


@pytest.mark.parametrize("group", ["posterior", "measurement"])
@pytest.mark.parametrize("nato_minus_oas", [3.0, -3.0])
def test_depth_order_passes_when_nato_is_surely_deeper_and_fails_the_other_way(rng, group, nato_minus_oas):
    if group == "posterior":
        theta = depth_draws(rng, nato_minus_oas)
        run = make_run({"potential_effect": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
                        "depth_theta": (("chain", "draw", "alliance"), theta)}, healthy_stats(rng))
    else:
        theta = depth_draws(rng, nato_minus_oas, draws=250)
        run = with_measurement_group(effect_only_run(rng, "cut"), theta)
    order = checks.compute_depth_order(run.idata)
    nato, oas = theta[..., NATO], theta[..., OAS_CHARTER]
    assert order.group == group and order.draws == nato.size
    assert order.p_nato_above_oas == pytest.approx(np.mean(nato > oas))
    treaties = order.treaties.set_index("atopid")
    assert treaties.loc[3180, "mean"] == pytest.approx(nato.mean()) and treaties.loc[3150, "sd"] == pytest.approx(oas.std())

    result = checks.check_depth_order(run, order, Thresholds())
    assert result.passed is (nato_minus_oas > 0)
    assert verdict([result]) == ("PASS" if nato_minus_oas > 0 else "FAIL")
    assert result.message.startswith(f"NATO (3180) deeper than the OAS Charter (3150) in "
                                     f"{100 * np.mean(nato > oas):.0f}% of {nato.size} draws")
    assert f"theta {nato.mean():.2f} +- {nato.std():.2f} vs {oas.mean():.2f}" in result.message
    assert result.table is order.treaties and result.advice


def test_depth_order_threshold_is_honoured(rng):
    theta = depth_draws(rng, 1.2)  # P(NATO > OAS) about Phi(1.2 / sqrt 2) = 0.80
    run = make_run({"potential_effect": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
                    "depth_theta": (("chain", "draw", "alliance"), theta)}, healthy_stats(rng))
    order = checks.compute_depth_order(run.idata)
    p = order.p_nato_above_oas
    assert 0.5 < p < Thresholds().nato_above_oas_p_min  # built to sit below the default floor
    assert checks.check_depth_order(run, order, Thresholds()).passed is False
    assert checks.check_depth_order(run, order, Thresholds(nato_above_oas_p_min=p - 0.01)).passed is True
    assert checks.check_depth_order(run, order, Thresholds(nato_above_oas_p_min=p + 0.01)).passed is False


def test_the_runs_own_posterior_of_depth_comes_before_its_measurement_stage(rng):
    """A joint run of `compare` keeps both: its own (outcome-informed) posterior is the one it rests on."""
    theta = depth_draws(rng, 3.0)
    run = make_run({"potential_effect": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
                    "depth_theta": (("chain", "draw", "alliance"), theta)}, healthy_stats(rng))
    with_measurement_group(run, depth_draws(rng, -3.0, draws=250))
    order = checks.compute_depth_order(run.idata)
    assert order.group == "posterior" and order.p_nato_above_oas == pytest.approx(np.mean(theta[..., NATO] > theta[..., OAS_CHARTER]))


def test_depth_order_is_not_applicable_without_draws_of_both_treaties(rng):
    run = effect_only_run(rng, "plugin")  # e.g. a folder written before runs kept the measurement posterior
    assert checks.compute_depth_order(run.idata) is None
    result = checks.check_depth_order(run, None, Thresholds())
    assert result.passed is None and result.value is None
    assert result.message.startswith("not applicable: the plugin run keeps no draws of the depth of NATO (3180)")
    no_oas = effect_only_run(rng, "cut")
    no_oas.idata["measurement"] = xr.DataTree(xr.Dataset(
        {"depth_theta": (("chain", "draw", "alliance"), rng.normal(size=(CHAINS, 50, 2)))},
        coords={"chain": np.arange(CHAINS), "draw": np.arange(50), "alliance": [1005, 3180]}))
    assert checks.compute_depth_order(no_oas.idata) is None


def test_depth_order_reaches_the_verdict_and_both_reports(rng, tmp_path):
    from allypot.diagnostics.report import RunReview, format_verdict, write_report

    run = make_run({"potential_effect": (("chain", "draw"), rng.normal(size=(CHAINS, DRAWS))),
                    "depth_theta": (("chain", "draw", "alliance"), depth_draws(rng, -3.0))}, healthy_stats(rng))
    result = checks.check_depth_order(run, checks.compute_depth_order(run.idata), Thresholds())
    review = RunReview(run, [result], seconds=1.0)
    printed = format_verdict([review])
    assert printed.startswith("allypot diagnose: FAIL") and f"FAIL {DEPTH_ORDER}: NATO (3180)" in printed
    paths = write_report([review], tmp_path, Thresholds())
    assert result.message in paths["markdown"].read_text()
    assert html_escape(result.message) in paths["html"].read_text()
    saved = json.loads(paths["verdict"].read_text())["runs"][run.name]["checks"][DEPTH_ORDER]
    assert saved["passed"] is False and saved["value"] == pytest.approx(result.value)
    detail = pd.read_csv(tmp_path / "run1-measurement_nato_deeper_than_the_oas_charter.csv")
    assert detail["atopid"].tolist() == [3180, 3150]
