"""The path from cut to joint: the alliance-potential effect under semi-modular inference.

``allypot sensitivity RUN --eta 0,0.25,0.5,0.75,1`` takes RUN's config, sets ``model.mode =
"smi"`` and one ``model.eta`` after another, and fits each (MODEL.md, "Modular inference
between cut and joint"; Carmona & Nicholls 2020). eta is the weight of the outcome's
likelihood in the posterior that informs the measures: at 0 the outcome never feeds back
(cut), at 1 fully (joint). How the effect moves along eta shows how much of it comes from
that feedback. A fit whose run folder (same run id: config and data hash) is already under
the runs folder is read back, not refitted, so a path can be extended or resumed.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from allypot.inference.fit import fit_config
from allypot.inference.runs import compute_run_id, data_hash, package_versions, run_data_files
from allypot.markdown import markdown_table
from allypot.sensitivity.grid import CONVERGED_LABEL, NOT_CONVERGED_LABEL, cached_summary, summarise_run

TABLE_COLUMNS = ["eta", "median", "q05", "q95", "p_positive", "rhat", "ess_bulk", "divergences", "converged",
                 "seconds", "status", "run"]


class EtaPathError(ValueError):
    """The --eta list is not a list of distinct numbers in [0, 1]."""


def parse_etas(text: str) -> list[float]:
    """``"0,0.25,1"`` -> [0.0, 0.25, 1.0] (sorted); every value checked, all problems at once."""
    values, problems = [], []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            problems.append(f"{part.strip()!r} is not a number")
            continue
        if not 0.0 <= value <= 1.0:
            problems.append(f"{value:g} is outside [0, 1]")
        values.append(value)
    if len(set(values)) < len(values):
        problems.append("a value is listed twice")
    if problems:
        raise EtaPathError(f"--eta {text}: " + "; ".join(problems))
    return sorted(values)


def smi_config(config: dict, eta: float) -> dict:
    """``config`` with ``model.mode = "smi"`` and ``model.eta = eta`` (everything else kept)."""
    smi = copy.deepcopy(config)
    smi["model"] |= {"mode": "smi", "eta": float(eta)}
    return smi


def eta_path(config: dict, etas: list[float], tables_dir: Path, runs_dir: Path, progress: bool = True) -> pd.DataFrame:
    """Fit (or read back) the smi run of ``config`` at each eta; one row per eta.

    R-hat is the worst within a single regression fit (as for cut: the pooled fits differ in
    potential on purpose); ``seconds`` is the fit's own wall time, also for a read-back run.
    """
    tables_dir, runs_dir = Path(tables_dir), Path(runs_dir)
    rows = []
    for eta in etas:
        smi = smi_config(config, eta)
        run_id = compute_run_id(smi, data_hash(tables_dir, run_data_files(smi))[0])
        summary = cached_summary(runs_dir, run_id)
        status = "cached" if summary else "fitted"
        if progress:
            print(f"eta {eta:g}: " + (f"reading {summary['run']}" if summary else "fitting"), flush=True)
        if summary is None:
            summary = summarise_run(fit_config(smi, tables_dir, runs_dir, progress).path)
        if summary["run_id"] != run_id:
            raise EtaPathError(f"{summary['run']}: run id {summary['run_id']} differs from the expected {run_id}; "
                               "the tables a fit hashes changed (see inference.runs.run_data_files)")
        rows.append({"eta": eta, **{k: summary[k] for k in TABLE_COLUMNS if k in summary},
                     "seconds": summary["fit_s"], "status": status, "run": summary["run"]})
        if progress:
            print(f"eta {eta:g}: effect median {summary['median']:+.5f}, 90% [{summary['q05']:+.5f}, "
                  f"{summary['q95']:+.5f}], R-hat {summary['rhat']:.3f}", flush=True)
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def plot_eta_path(table: pd.DataFrame, title: str):
    """Effect median and 90% band against eta (0 = cut, 1 = joint); an eta whose run failed a
    convergence check gets a hollow marker, as in the grid's forest plot."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(table["eta"], table["q05"], table["q95"], alpha=0.25, label="90% interval")
    (line,) = ax.plot(table["eta"], table["median"], label="median")
    converged = table["converged"].astype(bool)
    ax.plot(table["eta"][converged], table["median"][converged], ls="none", marker="o", color=line.get_color(),
            label=CONVERGED_LABEL)
    if (~converged).any():
        ax.plot(table["eta"][~converged], table["median"][~converged], ls="none", marker="o",
                markerfacecolor="white", color=line.get_color(), label=NOT_CONVERGED_LABEL)
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("eta: weight of the outcome on the measures (0 = cut, 1 = joint)")
    ax.set_ylabel("alliance-potential effect")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def eta_path_report(table: pd.DataFrame, source_run: Path, config: dict) -> str:
    shown = table.assign(eta=table["eta"].map("{:g}".format), run=table["run"].map(lambda p: f"`{Path(p).name}`"))
    failed = table.loc[~table["converged"].astype(bool), "eta"].tolist()
    lines = [
        f"# The path from cut to joint ({config['run']['name']})",
        "",
        f"Semi-modular inference on the config of `{source_run}` (specification "
        f"`{config['model']['specification']}`, family `{config['model']['family']}`, seed {config['run']['seed']}, "
        f"stage one {config['sampler']['chains']} chains x {config['sampler']['draws']} draws after "
        f"{config['sampler']['tune']} tuning steps, {config['cut']['measurement_draws']} measurement draws per eta, each "
        f"regression fit 2 chains x {config['cut']['draws_per_fit']} draws). eta weighs the outcome's likelihood in the "
        "posterior of the measures: 0 is cut, 1 is joint. Effect on the expected share per unit of alliance "
        "potential; 90% equal-tailed intervals; R-hat is the worst within one regression fit.",
        "",
        markdown_table(shown, floatfmt="{:.5f}"),
        "",
    ]
    if failed:
        lines += [f"**Warning: the fits at eta {', '.join(f'{e:g}' for e in failed)} failed convergence checks** "
                  "(see each run's meta.json, health.warnings).", ""]
    return "\n".join(lines)


def write_eta_path(table: pd.DataFrame, source_run: Path, config: dict, out_dir: Path) -> Path:
    """eta_path.csv, eta_path.md, eta_path.png and what made them (versions) into ``out_dir`` (new)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    table.to_csv(out_dir / "eta_path.csv", index=False)
    (out_dir / "eta_path.md").write_text(eta_path_report(table, source_run, config))
    fig = plot_eta_path(table, f"Alliance-potential effect against eta ({config['run']['name']})")
    fig.savefig(out_dir / "eta_path.png", dpi=150)
    plt.close(fig)
    (out_dir / "provenance.json").write_text(json.dumps({
        "source_run": str(source_run), "etas": table["eta"].tolist(), "versions": package_versions(),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }, indent=2))
    return out_dir
