"""Fit a configured analysis into a run folder, or all three modes side by side."""

from __future__ import annotations

import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from allypot.diagnostics.feedback import compute_feedback
from allypot.diagnostics.modes import ChainModes, detect_chain_modes
from allypot.diagnostics.summary import headline_summary, interval, sampler_health
from allypot.inference.config import model_options, priors_from_config
from allypot.inference.modes import NAME_TO_MODE, ModeResult, attach_measurement, fit_measurement
from allypot.inference.runs import (
    compute_run_id,
    data_hash,
    package_versions,
    write_run,
)
from allypot.models.inputs import ModelInputs, inputs_from_tables

from allypot.markdown import markdown_table


def load_inputs(config: dict, tables_dir: Path) -> ModelInputs:
    d = config["data"]
    return inputs_from_tables(
        tables_dir, config["model"]["specification"], d["outcome"], d["panel"], (d["first_year"], d["last_year"])
    )


def _save(config: dict, result: ModeResult, inputs: ModelInputs, tables_dir: Path, runs_dir: Path, started: float) -> Path:
    digest, per_file = data_hash(tables_dir, files=(config["data"]["panel"],) + _model_tables())
    meta = {
        "id": compute_run_id(config, digest),
        "mode": config["model"]["mode"],
        "seed": config["run"]["seed"],
        "data_hash": digest,
        "data_files": per_file,
        "versions": package_versions(),
        "timings_s": result.timings | {"total_s": time.perf_counter() - started},
        "sampler": result.info,
        "health": sampler_health(result.idata),
        "sample": {
            "rows": len(inputs.rows),
            "countries": len(inputs.countries),
            "years": [int(inputs.years[0]), int(inputs.years[-1])],
            "alliances": len(inputs.alliances),
            "controls": inputs.control_names,
            "excluded": {reason: n for reason, n in inputs.exclusions},
        },
    }
    return write_run(result.idata, config, meta, headline_summary(result.idata), runs_dir)


def _model_tables() -> tuple[str, ...]:
    return ("alliance_items.csv", "us_alliance_membership.csv", "un_agreement.csv", "ideal_points.csv")


def fit_config(config: dict, tables_dir: Path, runs_dir: Path, progress: bool = True) -> tuple[Path, pd.DataFrame]:
    """Run the config's mode and save it; return (run folder, headline summary)."""
    started = time.perf_counter()
    inputs = load_inputs(config, tables_dir)
    mode = NAME_TO_MODE[config["model"]["mode"]]
    result = mode(inputs, model_options(config), priors_from_config(config), config, progress=progress)
    path = _save(config, result, inputs, tables_dir, runs_dir, started)
    return path, headline_summary(result.idata)


def effect_row(idata) -> dict:
    """Median, 90% interval and P(effect > 0): quantiles, because the hurdle family's effect on
    the expected share has heavy tails (exp(mu + sigma^2 / 2) of states that never
    contribute is barely constrained), so its mean and SD are dominated by a few draws."""
    draws = idata["posterior"]["potential_effect"].to_numpy().ravel()
    low, high = interval(draws, 0.9)
    return {"median": float(np.median(draws)), "q05": low, "q95": high, "p_positive": float((draws > 0).mean())}


def compare_modes(config: dict, tables_dir: Path, runs_dir: Path, progress: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Fit joint, cut and plug-in on the same data (one shared measurement fit).

    Each mode is saved as its own run folder with ``model.mode`` set accordingly, so every
    folder stays a self-contained, reproducible run. The comparison (effect per mode, its
    convergence, and how far the joint fit moved the measures away from the
    measurement-only posterior) is printed and written to ``<runs_dir>/<stamp>-<name>-compare.md``.
    """
    inputs = load_inputs(config, tables_dir)
    options, priors = model_options(config), priors_from_config(config)
    rows, paths, results = {}, {}, {}
    started = time.perf_counter()
    print(f"[1/4] measurement model (Parts A-C): {len(inputs.alliances)} alliances, "
          f"{len(inputs.countries)} countries x {len(inputs.years)} years", flush=True)
    measurement = fit_measurement(inputs, options, priors, config, progress)
    for step, mode in enumerate(("joint", "cut", "plugin"), start=2):
        print(f"[{step}/4] {mode} mode on {len(inputs.rows)} state-years", flush=True)
        mode_config = config | {"model": config["model"] | {"mode": mode}}
        t0 = time.perf_counter()
        result = NAME_TO_MODE[mode](inputs, options, priors, mode_config, measurement=measurement, progress=progress)
        if mode == "joint":
            attach_measurement(result.idata, measurement)
        paths[mode] = _save(mode_config, result, inputs, tables_dir, runs_dir, t0 if mode == "joint" else started)
        results[mode] = result
        rows[mode] = effect_row(result.idata) | convergence_row(result)
    table = pd.DataFrame(rows).T
    table.index.name = "mode"
    table["width_90"] = table["q95"] - table["q05"]
    us_alliances = np.unique(inputs.alliances[inputs.ally_matrix[inputs.ally_matrix >= 0]])
    feedback = compute_feedback(results["joint"].idata, measurement.idata, us_alliances)
    modes = detect_chain_modes(results["joint"].idata, us_alliances=us_alliances)
    report = comparison_report(config, table, feedback, modes, paths)
    report_path = Path(runs_dir) / f"{paths['joint'].name.split('-', 1)[0]}-{config['run']['name']}-compare.md"
    report_path.write_text(report)
    print(report)
    return table, paths


def convergence_row(result: ModeResult) -> dict:
    """R-hat and bulk ESS of the effect, and whether the mode's posterior can be read."""
    idata = result.idata
    rhat = float(az.rhat(idata, var_names=["potential_effect"])["potential_effect"])
    ess = float(az.ess(idata, var_names=["potential_effect"])["potential_effect"])
    # cut pools fits made with different potentials: between-"chain" spread is the point
    # there, so its R-hat is replaced by the worst R-hat within a single fit
    if "cut_max_rhat_within_fit" in result.info:
        rhat = result.info["cut_max_rhat_within_fit"]
    return {"rhat": rhat, "ess_bulk": ess, "divergences": result.info.get("divergences", 0),
            "converged": bool(rhat <= 1.01 and result.info.get("divergences", 0) == 0)}


def comparison_report(config: dict, table: pd.DataFrame, feedback: pd.DataFrame, modes: ChainModes,
                      paths: dict[str, Path]) -> str:
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
    bad = table.index[~table["converged"].astype(bool)].tolist()
    if bad:
        lines += [f"**Warning: {', '.join(bad)} did not converge** (R-hat > 1.01 or divergences): do not read "
                  "its effect as a posterior summary.", ""]
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
