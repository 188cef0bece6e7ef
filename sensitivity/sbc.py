"""Simulation-based calibration (SBC) of the joint model on the real design.

For simulation s = 1..S (Talts et al. 2018, "Validating Bayesian inference algorithms with
simulation-based calibration"):

1. draw every parameter and every observed quantity (treaty items, vote agreement counts,
   contribution shares) from the joint model's prior predictive, on the real design: the real
   alliances and their coded items, the real regression rows with their controls, alliance
   memberships and vote counts ``n_votes`` (optionally a year window, to keep fits small);
2. condition the same model on the simulated observations and fit it with NUTS (nutpie);
3. for each tracked quantity, thin the posterior draws by its bulk ESS (to near-independent
   draws, L of them) and take the rank of the true value among them, 0..L.

If the inference is calibrated, each quantity's ranks are uniform on 0..L. Ranks are turned
into randomised PIT values ``(rank + u) / (L + 1)``, u ~ U(0, 1), which are exactly U(0, 1)
under calibration whatever L is, so simulations with different thinning pool. Uniformity is
judged by the rank ECDF against simultaneous 95% bands (Saeilynoja, Buerkner & Vehtari 2022,
"Graphical test for discrete uniformity and its applications in goodness-of-fit evaluation
and multiple sample comparison"; bands from ``arviz_stats.ecdf_utils.ecdf_pit``), with a
Kolmogorov-Smirnov p-value beside it. The mean PIT says which way a miscalibration leans:
above 0.5 the truth sits high in the posterior (the model underestimates it), below 0.5 the
model overestimates it.

The structure of the fitted model is fixed by the real data once, before simulating: the
number of cut-points per item, which vote cells are observed, the hurdle's data-driven
location of the log part, and the choices of parameterisation (orthogonal projection
weights, centring by data). Those are constants of the generative model that is simulated
from and fitted, so SBC checks exactly that model. The observed values are held in shared
variables (``<name>_simulated``), so nutpie compiles the model once per worker and every
simulation only swaps the data.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
import pytensor  # noqa: E402
from arviz_stats.base import array_stats  # noqa: E402
from arviz_stats.ecdf_utils import ecdf_pit  # noqa: E402
from scipy import stats  # noqa: E402

from allypot.inference.config import model_options, priors_from_config  # noqa: E402
from allypot.inference.runs import compute_run_id, data_hash, package_versions, run_data_files  # noqa: E402
from allypot.markdown import markdown_table  # noqa: E402

# US treaties whose depth (theta) SBC tracks, where the design shares them with a sampled state
TRACKED_TREATIES = {3180: "NATO", 3150: "OAS Charter", 3215: "ANZUS", 3375: "US-Japan"}
# scalar parameters tracked when the model has them (the hurdle has logit_ and log_beta, the
# Gaussian family beta; pref_walk_sigma belongs to the agreement preference)
TRACKED_SCALARS = ("potential_effect", "logit_beta", "log_beta", "beta", "pref_walk_sigma")
SIMULATED_SUFFIX = "_simulated"
# ranks so far, rewritten after each fit and removed once ranks.csv is written
PARTIAL_RANKS = "ranks.partial.csv"
BAND_PROB = 0.95
# simulations of uniform ECDFs behind the simultaneous band (arviz-stats' own default is 1000)
BAND_SIMULATIONS = 1000
# below this many finished simulations the report calls the run a smoke test (the band is wide)
FEW_SIMULATIONS = 20
RANK_COLUMNS = ["simulation", "quantity", "truth", "posterior_mean", "posterior_sd", "rank", "n_thinned", "pit",
                "ess_bulk", "rhat", "divergences", "fit_s"]


@dataclass(frozen=True)
class SbcSettings:
    """Sizes of an SBC run; all of them are recorded with its output."""

    sims: int = 20
    draws: int = 200
    tune: int = 200
    chains: int = 2
    first_year: int = 2013
    last_year: int = 2014
    seed: int = 20011007

    def __post_init__(self):
        for name in ("sims", "draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SBC setting {name} = {value!r}: must be a positive integer")
        if self.first_year > self.last_year:
            raise ValueError(f"SBC years {self.first_year}-{self.last_year}: the first year is after the last")


@dataclass(frozen=True)
class Quantity:
    """One tracked scalar: a model variable, optionally one element of its first dim."""

    name: str  # safe in file and column names
    variable: str
    selection: dict | None = None
    label: str = ""

    def value(self, dataset):
        array = dataset[self.variable]
        return array.sel(self.selection) if self.selection else array


def parse_years(text: str) -> tuple[int, int]:
    """``"2013-2014"`` -> (2013, 2014); ``"2010"`` -> (2010, 2010)."""
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise ValueError(f"--years {text!r}: give FIRST-LAST, e.g. 2013-2014") from None


def sbc_config(config: dict, settings: SbcSettings) -> dict:
    """The run config SBC fits: the joint mode on the settings' years with their sampler sizes."""
    out = copy.deepcopy(config)
    out["model"]["mode"] = "joint"
    out["data"]["first_year"], out["data"]["last_year"] = settings.first_year, settings.last_year
    out["sampler"] |= {"backend": "nutpie", "draws": settings.draws, "tune": settings.tune, "chains": settings.chains}
    out["run"]["seed"] = settings.seed
    return out


def build_design_model(config: dict, tables_dir: Path):
    """(inputs, joint model) of ``config`` on the real design read from ``tables_dir``."""
    from allypot.inference.fit import load_inputs
    from allypot.models.compose import build_joint_model

    inputs = load_inputs(config, Path(tables_dir))
    return inputs, build_joint_model(inputs, model_options(config), priors_from_config(config))


def tracked_quantities(model: pm.Model, inputs) -> list[Quantity]:
    """The quantities SBC ranks: the effect, the betas, the walk scale, and the tracked US treaties' depth
    among the alliances the sample's states share with the US."""
    quantities = [Quantity(name, name, None, name) for name in TRACKED_SCALARS if name in model.named_vars]
    shared = set(inputs.alliances[inputs.ally_matrix[inputs.ally_matrix >= 0]].tolist())
    quantities += [Quantity(f"depth_theta_{atopid}", "depth_theta", {"alliance": atopid}, f"{label} ({atopid}) theta")
                   for atopid, label in TRACKED_TREATIES.items() if atopid in shared]
    return quantities


def with_observations_as_data(model: pm.Model) -> pm.Model:
    """The same model with each observed variable's values in a shared variable ``<name>_simulated``.

    nutpie keeps shared variables swappable (``with_data``), so one compilation serves every
    simulation. ``pm.observe`` rebuilds the model and cannot carry the IRT cut-points' custom
    initial values, so they are lifted for the rebuild and set again on the new model.
    """
    data = {rv.name: pytensor.shared(np.asarray(model.rvs_to_values[rv].data), name=f"{rv.name}{SIMULATED_SUFFIX}")
            for rv in model.observed_RVs}
    initial = {rv.name: value for rv, value in model.rvs_to_initial_values.items() if value is not None}
    saved = dict(model.rvs_to_initial_values)
    try:
        model.rvs_to_initial_values.update(dict.fromkeys(saved))
        rebuilt = pm.observe(model, data)
    finally:
        model.rvs_to_initial_values.update(saved)
    for name, value in initial.items():
        rebuilt.rvs_to_initial_values[rebuilt[name]] = value
    return rebuilt


@dataclass
class Simulation:
    """One prior predictive draw: the true quantities and the observations to condition on."""

    index: int
    truth: dict[str, float]
    observations: dict[str, np.ndarray]


def simulate_datasets(model: pm.Model, quantities: list[Quantity], sims: int, seed: int) -> list[Simulation]:
    """``sims`` draws of all parameters and observations from the model's prior predictive."""
    draws = pm.sample_prior_predictive(draws=sims, model=model, random_seed=seed)
    prior = draws["prior"].to_dataset().isel(chain=0)
    predictive = draws["prior_predictive"].to_dataset().isel(chain=0)
    observed = [rv.name for rv in model.observed_RVs]
    return [
        Simulation(
            s,
            {q.name: float(q.value(prior).isel(draw=s)) for q in quantities},
            {name: np.ascontiguousarray(predictive[name].isel(draw=s).to_numpy()) for name in observed},
        )
        for s in range(sims)
    ]


def rank_of_truth(truth: float, draws: np.ndarray, rng: np.random.Generator) -> dict:
    """Rank of ``truth`` among ``draws`` (chain, draw) thinned by bulk ESS, and its randomised PIT.

    Thinning keeps every k-th draw of each chain, k = floor(draws per chain x chains / ESS), so
    the L kept draws are near-independent (Talts et al. 2018, section 5.1).
    """
    draws = np.asarray(draws, dtype="float64")
    total = draws.size
    ess = float(array_stats.ess(draws)) if draws.shape[1] >= 4 else float(total)
    step = max(1, int(total // max(ess, 1.0))) if np.isfinite(ess) else 1
    kept = draws[:, ::step].ravel()
    rank = int((kept < truth).sum())
    return {"rank": rank, "n_thinned": kept.size, "pit": (rank + rng.uniform()) / (kept.size + 1),
            "ess_bulk": ess, "posterior_mean": float(draws.mean()), "posterior_sd": float(draws.std())}


def uniformity_check(pit: np.ndarray, prob: float = BAND_PROB, seed: int = 214) -> dict:
    """Is ``pit`` a sample from U(0, 1)? Simultaneous ECDF band, KS test, and the mean PIT.

    Returns the band (``eval_points``, ``ecdf``, ``lower``, ``upper``) for plotting, whether
    the ECDF stays inside it (``band_pass``), the KS p-value and the mean PIT with its
    standard error under uniformity (sqrt(1/12/n)).
    """
    pit = np.asarray(pit, dtype="float64")
    pit = pit[np.isfinite(pit)]
    if pit.size < 2:
        raise ValueError(f"a uniformity check needs at least 2 ranks; got {pit.size}")
    points, ecdf, lower, upper = ecdf_pit(pit, prob, BAND_SIMULATIONS, rng=np.random.default_rng(seed))
    return {
        "n": int(pit.size),
        "band_pass": bool(np.all((ecdf >= lower) & (ecdf <= upper))),
        "ks_pvalue": float(stats.kstest(pit, "uniform").pvalue),
        "mean_pit": float(pit.mean()),
        "mean_pit_se": float(np.sqrt(1 / 12 / pit.size)),
        "eval_points": points, "ecdf": ecdf, "lower": lower, "upper": upper,
    }


class SimulationFitter:
    """The design's model compiled once with nutpie; fits one simulation after another."""

    def __init__(self, config: dict, tables_dir: Path):
        import nutpie

        self.config = config
        self.inputs, self.model = build_design_model(config, tables_dir)
        self.quantities = tracked_quantities(self.model, self.inputs)
        self.data_model = with_observations_as_data(self.model)
        self.compiled = nutpie.compile_pymc_model(self.data_model, freeze_model=False)

    def __call__(self, simulation: Simulation) -> pd.DataFrame:
        import nutpie

        from allypot.inference.sampling import divergences, run_guarded

        sampler, seed = self.config["sampler"], self.config["run"]["seed"]
        started = time.perf_counter()
        data = {f"{name}{SIMULATED_SUFFIX}": values for name, values in simulation.observations.items()}
        idata = run_guarded(lambda: nutpie.sample(
            self.compiled.with_data(**data), draws=sampler["draws"], tune=sampler["tune"], chains=sampler["chains"],
            cores=min(sampler["chains"], 2), seed=seed + simulation.index + 1, progress_bar=False,
            save_warmup=False, target_accept=sampler["target_accept"], adaptation=sampler["adaptation"],
        ), self.data_model, sampler["chains"], sampler["draws"])
        seconds = time.perf_counter() - started
        posterior = idata["posterior"].to_dataset()
        rng = np.random.default_rng([seed, simulation.index])
        rows = []
        for q in self.quantities:
            draws = q.value(posterior).transpose("chain", "draw").to_numpy()
            rhat = float(array_stats.rhat(draws)) if draws.shape[0] > 1 else float("nan")
            rows.append({"simulation": simulation.index, "quantity": q.name, "truth": simulation.truth[q.name],
                         **rank_of_truth(simulation.truth[q.name], draws, rng), "rhat": rhat,
                         "divergences": divergences(idata), "fit_s": seconds})
        return pd.DataFrame(rows, columns=RANK_COLUMNS)


# One compiled model per worker process and design: compiling the joint model takes minutes,
# a fit about a minute, so a worker keeps its fitter for the simulations that follow.
_FITTERS: dict[str, SimulationFitter] = {}


def fit_simulation(config: dict, tables_dir: str, design_id: str, simulation: Simulation) -> pd.DataFrame:
    """One simulation on a Dask worker: the ranks of its tracked quantities (one row each)."""
    if design_id not in _FITTERS:
        _FITTERS[design_id] = SimulationFitter(config, Path(tables_dir))
    return _FITTERS[design_id](simulation)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


def run_simulations(config: dict, tables_dir: Path, design_id: str, simulations: list[Simulation], client,
                    report=partial(print, flush=True), partial_ranks: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit every simulation on ``client``; (ranks, failures). A failed fit is recorded and the rest go on.

    ``partial_ranks``, if given, is rewritten after every finished fit, so an interrupted SBC
    keeps the ranks it has."""
    from dask.distributed import as_completed

    started = time.perf_counter()
    futures = {client.submit(fit_simulation, config, str(tables_dir), design_id, sim,
                             key=f"sbc-{design_id}-{sim.index}", pure=False, retries=0): sim for sim in simulations}
    slots = max(1, sum(client.nthreads().values()))
    parts, failures = [], []
    for done, future in enumerate(as_completed(futures), start=1):
        sim = futures[future]
        if future.status == "error":
            error = future.exception()
            failures.append({"simulation": sim.index, "error": f"{type(error).__name__}: {error}".replace("\n", " ")})
            status = "failed"
        else:
            parts.append(future.result())
            status = f"fitted in {parts[-1]['fit_s'].iloc[0]:.0f} s"
            if partial_ranks is not None:
                pd.concat(parts, ignore_index=True).to_csv(partial_ranks, index=False)
        future.release()
        elapsed = time.perf_counter() - started
        left = len(simulations) - done
        # from the fits' own times: the first result also carries the worker's compilation
        fit_seconds = [part["fit_s"].iloc[0] for part in parts]
        eta = ("done" if not left else f"~{_duration(left * np.mean(fit_seconds) / slots)} left" if fit_seconds
               else "time left unknown until a fit finishes")
        report(f"[{done}/{len(simulations)}] simulation {sim.index}: {status} | failed {len(failures)}, "
               f"in flight {min(left, slots)} | {_duration(elapsed)} elapsed, {eta}")
    ranks = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=RANK_COLUMNS)
    return ranks.sort_values(["simulation", "quantity"], ignore_index=True), pd.DataFrame(
        failures, columns=["simulation", "error"])


def calibration_table(ranks: pd.DataFrame, quantities: list[Quantity]) -> tuple[pd.DataFrame, dict]:
    """Per quantity: simulations, band check, KS p-value, mean PIT and the mean standardised error
    (posterior mean - truth) / posterior SD. Returns the table and each quantity's band."""
    rows, bands = [], {}
    for q in quantities:
        part = ranks[ranks["quantity"] == q.name]
        if len(part) < 2:
            rows.append({"quantity": q.name, "label": q.label, "simulations": len(part)})
            continue
        check = uniformity_check(part["pit"].to_numpy())
        bands[q.name] = check
        z = (part["posterior_mean"] - part["truth"]) / part["posterior_sd"]
        rows.append({"quantity": q.name, "label": q.label, "simulations": check["n"],
                     "band_95_pass": check["band_pass"], "ks_pvalue": check["ks_pvalue"],
                     "mean_pit": check["mean_pit"], "mean_pit_se": check["mean_pit_se"],
                     "mean_z_error": float(z.mean()), "median_thinned_draws": float(part["n_thinned"].median()),
                     "max_rhat": float(part["rhat"].max())})
    return pd.DataFrame(rows), bands


def plot_rank_ecdfs(table: pd.DataFrame, bands: dict):
    """ECDF minus uniform CDF of each quantity's PIT ranks, with its simultaneous 95% band."""
    names = [q for q in table["quantity"] if q in bands]
    if not names:
        raise ValueError("no quantity has two or more ranks to plot")
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False)
    labels = dict(zip(table["quantity"], table["label"]))
    for ax, name in zip(axes.flat, names):
        band = bands[name]
        x = band["eval_points"]
        ax.fill_between(x, band["lower"] - x, band["upper"] - x, step="post", color="C0", alpha=0.25,
                        label=f"simultaneous {BAND_PROB:.0%} band")
        ax.step(x, band["ecdf"] - x, where="post", color="C3" if not band["band_pass"] else "C0", label="rank ECDF")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(f"{labels[name]}\n{'inside' if band['band_pass'] else 'OUTSIDE'} the band, n = {band['n']}",
                     fontsize=8)
        ax.set_xlabel("fractional rank (PIT)", fontsize=7)
        ax.set_ylabel("ECDF - uniform", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    return fig


def sbc_report(table: pd.DataFrame, failures: pd.DataFrame, settings: SbcSettings, config: dict,
               wall_s: float, fits: pd.DataFrame, design: dict) -> str:
    """Markdown: the verdict per quantity first, then sizes, timing and failures."""
    tested = table.dropna(subset=["band_95_pass"]) if "band_95_pass" in table else table.iloc[:0]
    failing = tested[~tested["band_95_pass"].astype(bool)]
    verdict = ("every tracked quantity's rank ECDF stays inside its simultaneous 95% band"
               if len(tested) and failing.empty else
               f"outside the 95% band: {', '.join(failing['label'])}" if len(failing) else "no quantity has ranks")
    lines = [
        f"# Simulation-based calibration of the joint model ({config['run']['name']})", "",
        f"**Verdict:** {verdict} ({settings.sims} simulations, {len(failures)} failed)."
        + (f" With fewer than {FEW_SIMULATIONS} simulations the checks have little power: a smoke test, not a result."
           if settings.sims - len(failures) < FEW_SIMULATIONS else ""), "",
        "Ranks of the true value among ESS-thinned posterior draws, as randomised PIT values; uniform if the "
        "inference is calibrated. Band: simultaneous 95% band of the ECDF (Saeilynoja et al. 2022); ks_pvalue: "
        "Kolmogorov-Smirnov test against U(0, 1); mean_pit > 0.5 means the posterior sits below the truth "
        "(underestimates it), < 0.5 above it; mean_z_error: mean of (posterior mean - truth) / posterior SD.", "",
        markdown_table(table.drop(columns=["label"]), floatfmt="{:.3f}"), "",
        "## Sizes", "",
        f"- design: {design['rows']} state-years, {design['countries']} countries, years "
        f"{settings.first_year}-{settings.last_year}, {design['alliances']} alliances; family "
        f"`{config['model']['family']}`, specification `{config['model']['specification']}`, preference "
        f"`{config['model']['preference']}`",
        f"- {settings.sims} simulations; each fit nutpie {settings.chains} chains x {settings.draws} draws after "
        f"{settings.tune} tuning steps; seed {settings.seed}",
        f"- wall time {wall_s:.0f} s (compilation included); per simulation median fit {fits['fit_s'].median():.0f} s, "
        f"total fit time {fits['fit_s'].sum():.0f} s" if len(fits) else f"- wall time {wall_s:.0f} s; no fit finished",
        f"- fits with divergent transitions: {int((fits['divergences'] > 0).sum())} of {len(fits)} "
        f"({int(fits['divergences'].sum())} divergences in all); their ranks are kept",
        "",
    ]
    if len(failures):
        lines += ["## Failed simulations", "", markdown_table(failures), ""]
    return "\n".join(lines)


class SbcOutcome(NamedTuple):
    path: Path
    calibration: pd.DataFrame
    failures: pd.DataFrame


def run_sbc(config: dict, tables_dir: Path, settings: SbcSettings, client, out: Path,
            report=partial(print, flush=True)) -> SbcOutcome:
    """Simulate, fit on ``client``, and write ranks.csv, calibration.csv, rank_ecdf.png, summary.md
    and settings.json (sizes, seed, resolved config, data hash, versions, wall time) into ``out``."""
    started = time.perf_counter()
    config = sbc_config(config, settings)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out}: output folder exists and is not empty; choose another --out")
    digest, per_file = data_hash(tables_dir, run_data_files(config))
    design_id = compute_run_id(config, digest)
    inputs, model = build_design_model(config, tables_dir)
    quantities = tracked_quantities(model, inputs)
    report(f"SBC: {settings.sims} simulations from the joint model's prior predictive on {len(inputs.rows)} "
           f"state-years ({settings.first_year}-{settings.last_year}); tracking {', '.join(q.name for q in quantities)}")
    simulations = simulate_datasets(model, quantities, settings.sims, settings.seed)
    report("each worker compiles the joint model once (minutes), then fits one simulation after another")
    out.mkdir(parents=True, exist_ok=True)
    ranks, failures = run_simulations(config, tables_dir, design_id, simulations, client, report,
                                      partial_ranks=out / PARTIAL_RANKS)
    table, bands = calibration_table(ranks, quantities)
    wall = time.perf_counter() - started
    ranks.to_csv(out / "ranks.csv", index=False)
    (out / PARTIAL_RANKS).unlink(missing_ok=True)
    failures.to_csv(out / "failures.csv", index=False)
    table.to_csv(out / "calibration.csv", index=False)
    if bands:
        fig = plot_rank_ecdfs(table, bands)
        fig.savefig(out / "rank_ecdf.png", dpi=120)
        plt.close(fig)
    design = {"rows": len(inputs.rows), "countries": len(inputs.countries), "alliances": len(inputs.alliances)}
    fits = ranks.drop_duplicates("simulation")[["fit_s", "divergences"]]
    (out / "summary.md").write_text(sbc_report(table, failures, settings, config, wall, fits, design))
    (out / "settings.json").write_text(json.dumps({
        "settings": asdict(settings), "design": design | {"excluded": dict(inputs.exclusions)},
        "quantities": [asdict(q) for q in quantities], "design_id": design_id, "data_hash": digest,
        "data_files": per_file, "config": config, "versions": package_versions(), "wall_s": wall,
        "failed": len(failures), "finished": datetime.now(timezone.utc).isoformat(),
    }, indent=2, default=str))
    return SbcOutcome(out, table, failures)
