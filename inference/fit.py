"""Fit a configured analysis into a run folder, or all three modes side by side."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from allypot.diagnostics.summary import headline_summary, interval, sampler_health
from allypot.inference.config import model_options, priors_from_config
from allypot.inference.modes import NAME_TO_MODE, ModeResult, fit_measurement
from allypot.inference.runs import compute_run_id, data_hash, package_versions, write_run
from allypot.models.inputs import ModelInputs, inputs_from_tables


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
    draws = idata["posterior"]["potential_effect"].to_numpy().ravel()
    low, high = interval(draws, 0.9)
    return {"mean": draws.mean(), "sd": draws.std(), "q05": low, "q95": high, "p_positive": float((draws > 0).mean())}


def compare_modes(config: dict, tables_dir: Path, runs_dir: Path, progress: bool = True) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Fit joint, cut and plug-in on the same data (one shared measurement fit).

    Each mode is saved as its own run folder with ``model.mode`` set accordingly, so every
    folder stays a self-contained, reproducible run. Also reports how far the joint fit
    moved the measures away from the measurement-only posterior (the outcome's feedback).
    """
    from allypot.diagnostics.feedback import compute_feedback

    inputs = load_inputs(config, tables_dir)
    options, priors = model_options(config), priors_from_config(config)
    rows, paths, results = {}, {}, {}
    started = time.perf_counter()
    measurement = fit_measurement(inputs, options, priors, config, progress)
    for mode in ("joint", "cut", "plugin"):
        mode_config = config | {"model": config["model"] | {"mode": mode}}
        t0 = time.perf_counter()
        result = NAME_TO_MODE[mode](inputs, options, priors, mode_config, measurement=measurement, progress=progress)
        paths[mode] = _save(mode_config, result, inputs, tables_dir, runs_dir, t0 if mode == "joint" else started)
        results[mode] = result
        rows[mode] = effect_row(result.idata) | {"divergences": result.info.get("divergences", 0)}
    table = pd.DataFrame(rows).T
    table.index.name = "mode"
    feedback = compute_feedback(results["joint"].idata, measurement.idata)
    flagged = feedback[feedback["flag"]]
    print(f"\nfeedback of the outcome on the measures (joint vs measurement-only): "
          f"{len(flagged)} of {len(feedback)} quantities moved by more than 1 measurement SD")
    if len(flagged):
        print(flagged.head(10).to_string())
    table["width_90"] = table["q95"] - table["q05"]
    return table, paths


def width_ratio(table: pd.DataFrame) -> pd.Series:
    """90% interval width of each mode relative to plug-in (>= 1 expected for joint and cut)."""
    return table["width_90"] / float(table.loc["plugin", "width_90"])

