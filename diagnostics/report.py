"""``allypot diagnose``: run folders in, a verdict and a report out.

One list of :class:`CheckResult` per run feeds the terminal verdict, the self-contained HTML
report (figures embedded as base64 PNG, opens offline), its markdown twin (figures as PNG
files next to it) and ``verdict.json`` (each check's outcome as a field). Nothing is refitted.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from allypot.diagnostics import checks, plots, predictive
from allypot.diagnostics.checks import CheckResult, Thresholds, verdict
from allypot.diagnostics.rundata import RunData, open_run
from allypot.markdown import markdown_table

VERDICT_COLOURS = {"PASS": "#1a7f37", "WARN": "#b7791f", "FAIL": "#c62828"}
STATUS = {True: "ok", False: "FAIL", None: "n/a"}


@dataclass
class RunReview:
    run: RunData
    results: list[CheckResult]
    figures: dict[str, Figure] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return verdict(self.results)


def review_run(run: RunData, thresholds: Thresholds = Thresholds(), ppc_draws: int = 200, seed: int = 0) -> RunReview:
    """Every check of one run, and the figures that show them."""
    started = time.perf_counter()
    results: list[CheckResult] = []
    figures: dict[str, Figure] = {}
    convergence = checks.compute_convergence(run)
    results += checks.check_convergence(run, convergence, thresholds)
    modes = checks.compute_chain_modes(run, thresholds.mode_separation_sd)
    results.append(checks.check_multimodality(run, modes, thresholds))
    if len(modes):
        figures["chain_modes"] = plots.plot_chain_modes(modes)
    figures["rank"] = plots.plot_rank_key(run, modes)
    sampler = checks.check_sampler(run, thresholds)
    results += sampler
    if "energy" in run.group("sample_stats").data_vars:
        figures["energy"] = plots.plot_energy_run(run)
    location = sampler[0].table
    if location is not None and len(location):
        figures["divergences_pair"] = plots.plot_divergence_pairs(run, location)
    replicated = predictive.compute_predictive(run, max_draws=ppc_draws, seed=seed)
    statistics, replicated_statistics = predictive.compute_ppc_statistics(run, replicated)
    results += predictive.check_ppc(run, statistics, thresholds)
    figures["ppc_statistics"] = plots.plot_ppc_statistics(statistics, replicated_statistics)
    figures["ppc_outcome"] = plots.plot_ppc_outcome(*predictive.share_scale(run, replicated))
    loo = predictive.compute_loo(run)
    results.append(predictive.check_loo(run, loo, thresholds))
    if loo is not None:
        figures["pareto_k"] = plots.plot_pareto_k(results[-1].table, results[-1].threshold)
        pit = predictive.compute_loo_pit(run, replicated, seed=seed)
        results.append(predictive.check_loo_pit(pit, thresholds))
        figures["loo_pit"] = plots.plot_loo_pit_ecdf(pit)
    results.append(checks.check_depth_order(run, checks.compute_depth_order(run.idata), thresholds))
    feedback = checks.compute_us_feedback(run)
    results.append(checks.check_feedback(run, feedback, thresholds))
    if feedback is not None:
        figures["feedback"] = plots.plot_feedback(feedback)
    for result in results:
        result.run = run.name
    return RunReview(run, results, figures, time.perf_counter() - started)


def compare_effects(reviews: list[RunReview]) -> tuple[pd.DataFrame, dict[str, xr.DataArray]]:
    """The effect under each run side by side (median, 90% interval, chain means)."""
    rows, effects = [], {}
    for k, review in enumerate(reviews, start=1):
        post = review.run.posterior
        if checks.EFFECT not in post.data_vars:
            continue
        draws = post[checks.EFFECT]
        effects[f"run {k} ({review.run.mode})"] = draws
        values = draws.to_numpy().ravel()
        rows.append({
            "run": k, "mode": review.run.mode, "data_hash": review.run.meta["data_hash"][:10],
            "median": float(np.median(values)), "q05": float(np.quantile(values, 0.05)),
            "q95": float(np.quantile(values, 0.95)),
            "chain_means": "; ".join(f"{m:.4f}" for m in draws.mean("draw").to_numpy()),
            "verdict": review.verdict,
        })
    return pd.DataFrame(rows), effects


# ---------------------------------------------------------------------------------------------
# output


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def _run_heading(k: int, review: RunReview) -> str:
    run = review.run
    post = run.posterior
    return (f"Run {k}: {run.name} — {run.mode}, family {run.family}, {post.sizes['chain']} chains x "
            f"{post.sizes['draw']} draws, seed {run.config['run']['seed']}")


def format_verdict(reviews: list[RunReview], report: Path | None = None, width: int = 110) -> str:
    """The one-screen terminal verdict: each run's failed checks with the likely cause."""
    overall = verdict([r for review in reviews for r in review.results])
    lines = [f"allypot diagnose: {overall} ({len(reviews)} run{'s' if len(reviews) > 1 else ''})"]
    for k, review in enumerate(reviews, start=1):
        counts = {s: sum(r.passed is s for r in review.results) for s in (True, False, None)}
        lines.append(f"\n[{review.verdict}] {_run_heading(k, review)}")
        lines.append(f"  {counts[True]} checks passed, {counts[False]} failed, {counts[None]} not applicable "
                     f"({review.seconds:.0f} s)")
        for result in review.results:
            if result.passed is False:
                tag = "FAIL" if result.severity == "error" else "warn"
                lines += textwrap.wrap(f"{tag} {result.name}: {result.message}", width, initial_indent="  ",
                                       subsequent_indent="       ", max_lines=2, placeholder=" ...")
                lines += textwrap.wrap(f"why / try: {result.advice}", width, initial_indent="       ",
                                       subsequent_indent="       ", max_lines=2, placeholder=" ...")
    if report is not None:
        lines.append(f"\nreport: {report}")
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 1em auto; padding: 0 1em; color: #222; }
#verdict { color: white; padding: 0.8em 1.2em; border-radius: 6px; font-size: 1.5em; font-weight: bold; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.2em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.ok { color: #1a7f37; font-weight: bold; } td.FAIL { color: #c62828; font-weight: bold; } td.warn { color: #b7791f; font-weight: bold; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.4em 0; }
details { margin: 0.4em 0 1em; } summary { cursor: pointer; color: #444; }
.advice { color: #555; font-size: 0.9em; }
"""


def _status_class(result: CheckResult) -> str:
    if result.passed is False and result.severity != "error":
        return "warn"
    return STATUS[result.passed]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _html_table(frame: pd.DataFrame, max_rows: int = 25) -> str:
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in shown.itertuples(index=False))
    more = f"<p>{len(frame) - max_rows} more rows in the markdown/CSV files.</p>" if len(frame) > max_rows else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _checks_html(results: list[CheckResult]) -> str:
    rows = []
    for r in results:
        cls = _status_class(r)
        advice = f"<div class='advice'>Likely cause / try: {html.escape(r.advice)}</div>" if r.passed is False else ""
        rows.append(f"<tr><td class='{cls}'>{cls}</td><td>{html.escape(r.name)}</td><td>{_fmt(r.value)}</td>"
                    f"<td>{_fmt(r.threshold)}</td><td>{html.escape(r.message)}{advice}</td></tr>")
    return ("<table class='checks'><tr><th>status</th><th>check</th><th>value</th><th>threshold</th><th>details</th></tr>"
            + "".join(rows) + "</table>")


def _slug(text: str) -> str:
    """A file-safe name: lower case, runs of other characters become one underscore."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _details_tables(results: list[CheckResult]) -> list[tuple[str, pd.DataFrame]]:
    return [(r.name, r.table) for r in results if r.table is not None and len(r.table)]


def write_report(reviews: list[RunReview], out: Path, thresholds: Thresholds) -> dict[str, Path]:
    """Write report.html, report.md, verdict.json and the PNGs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    overall = verdict([r for review in reviews for r in review.results])
    comparison, effects = compare_effects(reviews)
    pngs: dict[str, bytes] = {}
    for k, review in enumerate(reviews, start=1):
        for name, fig in review.figures.items():
            pngs[f"run{k}-{name}.png"] = _png_bytes(fig)
    if len(effects) > 1:
        pngs["effect_by_run.png"] = _png_bytes(plots.plot_effect_by_run(effects))
    for name, data in pngs.items():
        (out / name).write_bytes(data)
    plt.close("all")

    threshold_text = ", ".join(f"{k} = {v}" for k, v in vars(thresholds).items())
    colour = VERDICT_COLOURS[overall]
    failed = [(k, r) for k, review in enumerate(reviews, start=1) for r in review.results if r.passed is False]
    summary = (f"{len(failed)} failed checks: " + "; ".join(f"run {k} {r.name} ({_fmt(r.value)})" for k, r in failed)) \
        if failed else "every check passed"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>allypot diagnose: {overall}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head><body>",
             f"<div id='verdict' class='verdict {overall.lower()}' style='background:{colour}'>Verdict: {overall}</div>",
             f"<p>{html.escape(summary)}.</p><p class='advice'>Thresholds: {html.escape(threshold_text)}.</p>"]
    md = [f"# allypot diagnose: {overall}", "", f"{summary}.", "", f"Thresholds: {threshold_text}.", ""]
    if len(comparison):
        parts += ["<h2>Effect under each run</h2>", _html_table(comparison)]
        md += ["## Effect under each run", "", markdown_table(comparison, floatfmt="{:.5f}"), ""]
        if "effect_by_run.png" in pngs:
            parts.append(f"<img alt='effect by run' src='data:image/png;base64,{base64.b64encode(pngs['effect_by_run.png']).decode()}'>")
            md += ["![effect by run](effect_by_run.png)", ""]
        hashes = comparison["data_hash"].unique()
        if len(hashes) > 1:
            note = f"The runs were fitted on different data ({len(hashes)} data hashes): their effects are not comparable."
            parts.append(f"<p><b>{note}</b></p>")
            md += [f"**{note}**", ""]
    for k, review in enumerate(reviews, start=1):
        heading = _run_heading(k, review)
        parts += [f"<h2>{html.escape(heading)}: {review.verdict}</h2>", f"<p>Folder: <code>{html.escape(str(review.run.path))}</code>. "
                  f"Review took {review.seconds:.0f} s.</p>", _checks_html(review.results)]
        table = pd.DataFrame([r.row() for r in review.results]).drop(columns=["run"])
        table.insert(0, "status", [_status_class(r) for r in review.results])
        md += [f"## {heading}: {review.verdict}", "", f"Folder: `{review.run.path}`", "",
               markdown_table(table.drop(columns=["passed"]), floatfmt="{:.4g}"), ""]
        for name in review.figures:
            file = f"run{k}-{name}.png"
            parts.append(f"<h3>{html.escape(name.replace('_', ' '))}</h3><img alt='{name}' "
                         f"src='data:image/png;base64,{base64.b64encode(pngs[file]).decode()}'>")
            md += [f"![{name}]({file})", ""]
        for title, detail in _details_tables(review.results):
            parts.append(f"<details><summary>{html.escape(title)}: detail ({len(detail)} rows)</summary>{_html_table(detail)}</details>")
            stem = f"run{k}-{_slug(title)}"
            detail.to_csv(out / f"{stem}.csv", index=False)
            md += [f"- {title}: `{stem}.csv` ({len(detail)} rows)"]
        md.append("")
    parts.append("</body></html>")
    paths = {"html": out / "report.html", "markdown": out / "report.md", "verdict": out / "verdict.json"}
    paths["html"].write_text("\n".join(parts))
    paths["markdown"].write_text("\n".join(md) + "\n")
    paths["verdict"].write_text(json.dumps({
        "verdict": overall,
        "thresholds": vars(thresholds),
        "runs": {review.run.name: {"verdict": review.verdict, "seconds": review.seconds,
                                   "checks": {r.name: {"passed": r.passed, "value": r.value, "severity": r.severity}
                                              for r in review.results}} for review in reviews},
    }, indent=2, default=float) + "\n")
    return paths


def diagnose(run_paths: list[Path], tables_dir: Path, out: Path | None = None, thresholds: Thresholds = Thresholds(),
             ppc_draws: int = 200, seed: int = 0) -> tuple[list[RunReview], dict[str, Path]]:
    """Review every run and write the report (default: ``<first run>/diagnose/``)."""
    reviews = [review_run(open_run(p, tables_dir), thresholds, ppc_draws, seed) for p in run_paths]
    out = Path(out) if out is not None else Path(run_paths[0]) / "diagnose"
    return reviews, write_report(reviews, out, thresholds)
