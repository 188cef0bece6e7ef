"""Fit a configured analysis into a run folder, or all three modes side by side."""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr
from allypot.diagnostics.feedback import compute_feedback
from allypot.diagnostics.modes import ChainModes, detect_chain_modes
from allypot.diagnostics.summary import (
    RHAT_MAX,
    convergence_warnings,
    format_warnings,
    headline_summary,
    sampler_health,
)
from allypot.inference.config import model_options, priors_from_config
from allypot.inference.depth_choice import with_primary_alliances
from allypot.inference.modes import NAME_TO_MODE, ModeResult, announce, attach_measurement, fit_measurement
from allypot.inference.runs import (
    compute_run_id,
    data_hash,
    load_run,
    package_versions,
    run_data_files,
    write_run,
)
from allypot.models.inputs import ModelInputs, inputs_from_tables

from allypot.markdown import markdown_table

# Per-row deterministics recomputable from the stored parameters: each is draws x rows, and
# in a cut run (40 fits pooled) this one alone was 160 MB. Kept per row: potential, the
# pointwise log likelihood, and (for feedback and the plug-in potential) depth and pref_row.
NOT_STORED = ("expected_share",)
MODES_CHEAPEST_FIRST = ("plugin", "cut", "joint")


class FitOutcome(NamedTuple):
    path: Path
    summary: pd.DataFrame
    warnings: list[str]


def load_inputs(config: dict, tables_dir: Path) -> ModelInputs:
    d, m = config["data"], config["model"]
    inputs = inputs_from_tables(
        tables_dir, m["specification"], d["outcome"], d["panel"], (d["first_year"], d["last_year"]),
        m["alliance_universe"], m["items"],
        # run folders saved before the key existed have no exclude_countries: nothing was left out
        tuple(d.get("exclude_countries", ())),
    )
    if m["depth_aggregation"] == "primary":
        inputs = with_primary_alliances(inputs, priors_from_config(config)["irt"], config["sampler"], config["run"]["seed"])
    return inputs


def run_warnings(result: ModeResult, summary: pd.DataFrame, health: dict) -> list[str]:
    """The failed convergence checks of one mode's posterior (see diagnostics.summary)."""
    if "cut_max_rhat_within_fit" in result.info:
        return (convergence_warnings(summary, health, within_fit_rhat=result.info["cut_max_rhat_within_fit"])
                + smi_stage_one_warnings(result.info))
    modes = detect_chain_modes(result.idata) if result.idata["posterior"].sizes["chain"] > 1 else None
    return convergence_warnings(summary, health, modes)


def smi_stage_one_warnings(info: dict) -> list[str]:
    """SMI draws potential from its own stage one: a stage one that failed spoils every fit after it."""
    warnings = []
    if info.get("smi_auxiliary_effect_rhat", 0.0) > RHAT_MAX:
        warnings.append(f"SMI stage one: R-hat of the auxiliary potential_effect is "
                        f"{info['smi_auxiliary_effect_rhat']:.3f} (> {RHAT_MAX})")
    if "smi_auxiliary_effect_rhat" in info and info["measurement_divergences"]:
        warnings.append(f"SMI stage one: {info['measurement_divergences']} divergent transitions")
    return warnings


def _save(config: dict, result: ModeResult, inputs: ModelInputs, tables_dir: Path, runs_dir: Path,
          started: float, progress: bool) -> FitOutcome:
    summary = headline_summary(result.idata)
    health = sampler_health(result.idata)
    warnings = run_warnings(result, summary, health)
    digest, per_file = data_hash(tables_dir, files=run_data_files(config))
    meta = {
        "id": compute_run_id(config, digest),
        "mode": config["model"]["mode"],
        **({"eta": config["model"]["eta"]} if config["model"]["mode"] == "smi" else {}),
        "seed": config["run"]["seed"],
        "data_hash": digest,
        "data_files": per_file,
        "versions": package_versions(),
        "timings_s": result.timings | {"total_s": time.perf_counter() - started},
        "sampler": result.info,
        "health": health | {"warnings": warnings},
        "sample": {
            "rows": len(inputs.rows),
            "countries": len(inputs.countries),
            "years": [int(inputs.years[0]), int(inputs.years[-1])],
            "alliances": len(inputs.alliances),
            "controls": inputs.control_names,
            "excluded": {reason: n for reason, n in inputs.exclusions},
        },
    }
    announce(progress, f"saving the {config['model']['mode']} run folder ...")
    path = write_run(stored_posterior(result.idata), config, meta, summary, runs_dir)
    size = sum(f.stat().st_size for f in path.iterdir())
    announce(progress, f"saved {path} ({size / 1e6:.0f} MB)")
    return FitOutcome(path, summary, warnings)


def stored_posterior(idata: xr.DataTree) -> xr.DataTree:
    """The run folder's copy of ``idata`` without NOT_STORED.

    The non-centred offsets of group effects stay although effect = offset * sigma: they are the
    free variables, and the posterior predictive (``allypot diagnose``) would otherwise redraw them
    from the prior instead of using the posterior's group effects."""
    stored = idata.copy()
    post = stored["posterior"].to_dataset(inherit=False)
    stored["posterior"] = xr.DataTree(post.drop_vars([v for v in post.data_vars if v in NOT_STORED]))
    return stored


def fit_config(config: dict, tables_dir: Path, runs_dir: Path, progress: bool = True) -> FitOutcome:
    """Run the config's mode and save it; return (run folder, headline summary, failed checks)."""
    started = time.perf_counter()
    inputs = load_inputs(config, tables_dir)
    mode = NAME_TO_MODE[config["model"]["mode"]]
    result = mode(inputs, model_options(config), priors_from_config(config), config, progress=progress)
    return _save(config, result, inputs, tables_dir, runs_dir, started, progress)


def effect_line(mode: str, row: pd.Series, seconds: float, warnings: list[str]) -> str:
    """One line per mode as soon as it is ready: median, 90% interval, R-hat, ESS, time."""
    status = f"{len(warnings)} failed check(s)" if warnings else "all checks passed"
    return (f"==> {mode}: effect median {row['median']:+.5f}, 90% [{row['q05']:+.5f}, {row['q95']:+.5f}], "
            f"P(>0) {row['p_positive']:.2f}, R-hat {row['rhat']:.3f}, bulk ESS {row['ess_bulk']:.0f} "
            f"({seconds:.0f} s; {status})")


def compare_modes(config: dict, tables_dir: Path, runs_dir: Path, progress: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Fit plug-in, cut and joint on the same data (one shared measurement fit), cheapest first.

    Each mode is saved as its own run folder with ``model.mode`` set accordingly, so every
    folder stays a self-contained, reproducible run, and its effect is printed as soon as it
    is ready. The comparison (effect per mode, its convergence, and how far the joint fit
    moved the measures away from the measurement-only posterior) is printed at the end and
    written to ``<runs_dir>/<stamp>-<name>-compare.md``.
    """
    inputs = load_inputs(config, tables_dir)
    options, priors = model_options(config), priors_from_config(config)
    rows, paths, results, warnings = {}, {}, {}, {}
    steps = 1 + len(MODES_CHEAPEST_FIRST)
    print(f"[1/{steps}] measurement model (Parts A-C): {len(inputs.alliances)} alliances, "
          f"{len(inputs.countries)} countries x {len(inputs.years)} years", flush=True)
    t0 = time.perf_counter()
    measurement = fit_measurement(inputs, options, priors, config, progress)
    measurement_health = sampler_health(measurement.idata)
    print(f"==> measurement: {time.perf_counter() - t0:.0f} s, {measurement_health['divergences']} divergences, "
          f"worst R-hat {measurement_health['max_rhat']:.3f} ({measurement_health['max_rhat_parameter']})", flush=True)
    for step, mode in enumerate(MODES_CHEAPEST_FIRST, start=2):
        print(f"[{step}/{steps}] {mode} mode on {len(inputs.rows)} state-years", flush=True)
        mode_config = config | {"model": config["model"] | {"mode": mode}}
        t0 = time.perf_counter()
        result = NAME_TO_MODE[mode](inputs, options, priors, mode_config, measurement=measurement, progress=progress)
        if mode == "joint":
            attach_measurement(result.idata, measurement)
        outcome = _save(mode_config, result, inputs, tables_dir, runs_dir, t0, progress)
        paths[mode], results[mode], warnings[mode] = outcome.path, result, outcome.warnings
        rows[mode] = effect_row(outcome.summary, result, outcome.warnings)
        print(effect_line(mode, pd.Series(rows[mode]), time.perf_counter() - t0, outcome.warnings), flush=True)
        if outcome.warnings:
            print(format_warnings(outcome.warnings, f"the {mode} fit"), flush=True)
    table = pd.DataFrame(rows).T
    table.index.name = "mode"
    table["width_90"] = table["q95"] - table["q05"]
    us_alliances = np.unique(inputs.alliances[inputs.ally_matrix[inputs.ally_matrix >= 0]])
    feedback = compute_feedback(results["joint"].idata, measurement.idata, us_alliances)
    modes = detect_chain_modes(results["joint"].idata, us_alliances=us_alliances)
    report = comparison_report(config, table, feedback, modes, paths, warnings)
    report_path = Path(runs_dir) / f"{paths['joint'].name.split('-', 1)[0]}-{config['run']['name']}-compare.md"
    report_path.write_text(report)
    print(report)
    print(f"comparison written to {report_path}")
    return table, paths


def effect_row(summary: pd.DataFrame, result: ModeResult, warnings: list[str]) -> dict:
    """The effect's headline row, with the R-hat that applies to the mode (cut: within a fit)."""
    row = summary.loc["potential_effect"]
    return {"median": row["median"], "q05": row["q05"], "q95": row["q95"], "p_positive": row["p_positive"],
            "rhat": result.info.get("cut_max_rhat_within_fit", row["r_hat"]), "ess_bulk": row["ess_bulk"],
            "divergences": result.info.get("divergences", 0), "checks_passed": not warnings}


def read_effect(path: Path) -> tuple[dict, dict]:
    """The effect's headline row and the meta of a run folder (verified by ``load_run``; no refit)."""
    idata, _, meta = load_run(path)
    summary = pd.read_csv(Path(path) / "summary.csv", index_col=0)
    return effect_row(summary, ModeResult(idata, {}, meta["sampler"]), meta["health"]["warnings"]), meta


def comparison_report(config: dict, table: pd.DataFrame, feedback: pd.DataFrame, modes: ChainModes,
                      paths: dict[str, Path], warnings: dict[str, list[str]]) -> str:
    """Markdown: the effect under each mode, convergence, and the outcome's feedback."""
    lines = [
        f"# Alliance-potential effect: joint vs cut vs plug-in ({config['run']['name']})",
        "",
        f"Specification `{config['model']['specification']}`, family `{config['model']['family']}`, preference "
        f"`{config['model']['preference']}`, seed {config['run']['seed']}. Effect on the share of armed forces in "
        "Afghanistan per unit of alliance potential (for the hurdle family: the average derivative of the expected "
        "share). 90% equal-tailed intervals.",
        "",
        markdown_table(table, index=True, floatfmt="{:.5f}"),
        "",
    ]
    for mode, failed in warnings.items():
        if failed:
            lines += [f"**Warning: {mode} failed {len(failed)} convergence check(s)**; do not read its effect as a "
                      "posterior summary:", ""] + [f"- {w}" for w in failed] + [""]
    lines += [f"Joint chains: {modes.describe()}", ""]
    flagged_chains = modes.table[modes.table["verdict"] != "agree"]
    if len(flagged_chains):
        lines += [markdown_table(flagged_chains[["parameter", "verdict", "rhat", "gap_sd", "modes"]], floatfmt="{:.3f}"), ""]
    flagged = feedback[feedback["flag"]]
    lines += [
        "## Feedback of the outcome on the measures",
        "",
        f"{len(flagged)} of {len(feedback)} measured quantities moved by more than one measurement-posterior SD "
        "between the measurement-only and the joint posterior.",
        "",
    ]
    theta = feedback[feedback["quantity"] == "depth_theta"]
    if len(theta):
        lines += ["Depth (theta) of the alliances shared with the US:", "",
                  markdown_table(theta.drop(columns="quantity").rename(columns={"element": "atopid"}), floatfmt="{:.3f}"), ""]
    lines += ["Run folders:", ""] + [f"- {mode}: `{path}`" for mode, path in paths.items()]
    return "\n".join(lines) + "\n"
