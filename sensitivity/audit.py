"""``allypot audit``: from the printed Table 1 to the joint model, one repair at a time.

The published alliance-potential effect rests on a chain of choices. This module rebuilds the
published regressors from the committed tables, then applies one documented repair at a
time and re-estimates the four Table 1 specifications after each, so a reader sees which
repair moves the effect and by how much. Every repair is a flag of one panel *recipe*
(:func:`audit_panel`): the published panel is the recipe with no flag, "cumulative" sets the
flags in :data:`STEPS` order, "alone" sets one flag on the published baseline, so the order
of the repairs cannot hide anything.

What the published regressor is (verified from the raw files, see ``tests/test_audit.py``):
``pot_gain = (1 - ideal_dist) - depth`` with ``depth = log(score + c)`` of the scores in
``AllianceDataScore_Kent.csv`` (``alliance_items.kent_depth``), c = 2.141 (recovered from the
data by :func:`published_depth_offset`). Those scores run *against* Benson & Clinton's
``Depth.score`` (r = -0.989 on the 479 alliances both score). Each state-year takes its
lowest-numbered scored US alliance (ATOP 5.1 membership, any obligation); non-allies and
allies whose pacts are all unscored get depth 0, and Afghanistan's ``log(0) = -Inf`` became 0.

The repairs (:data:`STEPS`):

1. ``direction``: B&C ``bc_depth`` in place of the reversed scores, same transformation;
2. ``deepest``: the state's deepest scored US alliance (under the score in force), not the
   lowest-numbered one;
3. ``contribution``: the rebuilt share (false zeros and lost placemat figures repaired);
4. ``universe``: the rebuilt alliance universe (ATOP 5.1 defence/offence phases in force)
   for both the candidate alliances and the ``us_ally`` control;
5. ``measurement``: the plug-in potential of the project's measurement models (IRT depth,
   vote-agreement preference, least-squares projection) in place of ``pot_gain``;
5b. ``controls``: the rebuilt controls and state-year universe (cumulatively this is the
   rebuilt column of ``allypot replicate``);
6a. ``effects``: country and year effects;
6b-7. the project's hurdle family (plug-in), then cut and joint inference: MCMC fits of the
   project's model, reused from run folders whose id matches, cumulative only.

Published conventions that a repair does not touch stay as published (depth 0 for allies
without a scored pact, ``ideal_dist`` as published, Table 1's complete-case rule), so each
step changes only what it names.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from allypot.inference.replicate import (
    KEY,
    OUTCOME,
    PAPER_TABLE1,
    fit_bambi,
    fit_ols,
)
from allypot.markdown import markdown_table
from allypot.models.sample import LOG_COLUMNS, NON_CONTRIBUTORS, SPECIFICATIONS, Specification

KEY_COLS = list(KEY)
# the Table 1 regressors that are controls (everything but potential), by our names
CONTROL_COLUMNS = ("un_agreement_us", "democracy", "casualties_annual", "us_ally", "cinc", "gdp",
                   "gdp_per_capita", "dist_kabul_km")
# Table 1 specification -> the project's model specification: one registry
# (models/sample.py SPECIFICATIONS), so the names are the same
PROJECT_SPECIFICATION = {name: name for name in SPECIFICATIONS}
MCMC_MODES = ("plugin", "cut", "joint")
YEAR_PREFIX = "year_"
SEED = 20011007


@dataclass(frozen=True)
class Step:
    """One repair: its flag in :func:`audit_panel` (None for the MCMC steps) and what it changes."""

    key: str
    label: str
    changes: str
    mcmc_mode: str | None = None


STEPS: tuple[Step, ...] = (
    Step("direction", "1 depth direction", "B&C depth scores replace the reversed (Kent) scores, log(score + c) kept"),
    Step("deepest", "2 deepest alliance", "the deepest scored US alliance replaces the lowest-numbered one"),
    Step("contribution", "3 rebuilt contribution", "the rebuilt share replaces the published one"),
    Step("universe", "4 alliance universe", "ATOP 5.1 defence/offence membership for the alliances and us_ally"),
    Step("measurement", "5 measurement models", "plug-in potential of the IRT/vote-agreement models replaces pot_gain"),
    Step("controls", "5b rebuilt controls", "rebuilt controls and state-years (cumulatively: `allypot replicate` rebuilt)"),
    Step("effects", "6a country+year effects", "country and year effects added to every specification"),
    Step("hurdle", "6b hurdle family", "the project's hurdle model, plug-in potential (effect on the expected share)", "plugin"),
    Step("cut", "7a cut inference", "measurement uncertainty of potential propagated (cut)", "cut"),
    Step("joint", "7b joint inference", "measurement and contribution estimated jointly", "joint"),
)
OLS_FLAGS = tuple(s.key for s in STEPS if s.mcmc_mode is None)
BASELINE_LABEL = "0 published (Table 1)"


# ---------------------------------------------------------------------------- the finding


def published_depth_offset(published: pd.DataFrame, items: pd.DataFrame, tol: float = 1e-6) -> float:
    """The constant c of the published ``depth = log(kent_depth + c)``, recovered from the data.

    Raises ``ValueError`` if ``exp(depth) - kent_depth`` is not one constant on the allied
    state-years with a positive depth, i.e. if the published depth is not that transformation.
    """
    allied = published.dropna(subset=["atopid", "depth"])
    allied = allied[allied["depth"] > 0]
    kent = allied["atopid"].astype("int64").map(items.set_index("atopid")["kent_depth"])
    offsets = np.exp(allied["depth"].to_numpy()) - kent.to_numpy()
    if np.isnan(offsets).any() or np.ptp(offsets) > tol:
        raise ValueError(f"published depth is not log(kent_depth + c) with one c: exp(depth) - kent_depth "
                         f"spans [{np.nanmin(offsets)}, {np.nanmax(offsets)}]")
    return float(np.round(offsets.mean(), 9))


def depth_direction(published: pd.DataFrame, items: pd.DataFrame) -> dict:
    """The depth-direction finding, from the committed tables: how the published depth relates to
    the Kent and Benson & Clinton scores, item by item, and which US alliance it picks."""
    offset = published_depth_offset(published, items)
    scored = items.dropna(subset=["kent_depth", "bc_depth"])
    item_cols = ["milcontact", "commondef", "intcom", "milaid", "base", "contrib", "organ1", "ecaid", "secrecy"]
    allied = published.dropna(subset=["atopid"]).astype({"atopid": "int64"})
    finite = allied[allied["depth"] > 0]
    implied = np.log(finite["atopid"].map(items.set_index("atopid")["kent_depth"]) + offset)
    return {
        "offset": offset,
        "r_published_depth_log_kent": float(np.corrcoef(implied, finite["depth"])[0, 1]),
        "max_abs_gap_published_depth": float(np.abs(implied - finite["depth"]).max()),
        "n_common_alliances": len(scored),
        "r_kent_bc": float(scored["kent_depth"].corr(scored["bc_depth"])),
        "r_items_kent": {c: float(scored[c].corr(scored["kent_depth"])) for c in item_cols},
        "r_items_bc": {c: float(scored[c].corr(scored["bc_depth"])) for c in item_cols},
        "published_depth_by_alliance": allied.groupby("atopid")["depth"].first().to_dict(),
    }


# ---------------------------------------------------------------------------- the recipe


@dataclass
class AuditTables:
    """The committed tables the audit reads, plus the plug-in potential when step 5 is wanted."""

    published: pd.DataFrame
    rebuilt: pd.DataFrame
    items: pd.DataFrame
    membership: pd.DataFrame
    universe: str
    plugin_potential: pd.DataFrame | None = None


def load_audit_tables(tables_dir: Path) -> AuditTables:
    """Read the published and rebuilt panels and the alliance tables (no raw file needed)."""
    from allypot.data.pipeline.alliances import load_alliance_rules
    from allypot.data.pipeline.published import PUBLISHED_SCHEMA
    from allypot.data.loaders import load_table
    from allypot.data.schema import read_table

    tables_dir = Path(tables_dir)
    meta = json.loads((tables_dir / "us_alliance_membership.meta.json").read_text())
    universe = meta.get("rules", {}).get("universe") or load_alliance_rules().universe
    return AuditTables(
        published=read_table(tables_dir / "published_panel.csv", PUBLISHED_SCHEMA),
        rebuilt=load_table("panel", tables_dir),
        items=load_table("alliance_items", tables_dir),
        membership=load_table("us_alliance_membership", tables_dir),
        universe=universe,
    )


def choose_alliance(keys: pd.DataFrame, allied: np.ndarray, candidates: pd.DataFrame, score: pd.Series,
                    rule: str) -> pd.DataFrame:
    """Per state-year: the US alliance whose score stands for its depth, and that score.

    ``candidates`` are (ccode, year, atopid) rows; only alliances with a score count. ``rule``
    is "lowest" (the smallest atopid, what the published panel did) or "deepest" (the highest
    score). Non-allies and allies with no scored candidate get no alliance (NaN).
    """
    cand = candidates[KEY_COLS + ["atopid"]].copy()
    cand["score"] = cand["atopid"].map(score)
    cand = cand.dropna(subset=["score"])
    order = ["atopid"] if rule == "lowest" else ["score"]
    cand = cand.sort_values(order, ascending=rule == "lowest", kind="stable")
    chosen = cand.drop_duplicates(KEY_COLS, keep="first")
    out = keys[KEY_COLS].merge(chosen, on=KEY_COLS, how="left", validate="one_to_one")
    out.loc[~allied, ["atopid", "score"]] = np.nan
    return out


def audit_panel(tables: AuditTables, flags: frozenset[str] | set[str] = frozenset()) -> pd.DataFrame:
    """The Table 1 panel with the repairs in ``flags`` applied (see the module docstring).

    Returns the columns :mod:`~allypot.inference.replicate` needs, plus ``atopid``,
    ``depth_score`` and ``alliance_depth`` (the alliance standing for the state's depth, its
    score and log(score + c)). ``flags`` outside :data:`OLS_FLAGS` are refused.
    """
    unknown = set(flags) - set(OLS_FLAGS)
    if unknown:
        raise ValueError(f"unknown repair(s) {sorted(unknown)}; known: {list(OLS_FLAGS)}")
    pub, reb = tables.published, tables.rebuilt
    pub_cols = KEY_COLS + [OUTCOME, "potential", "ideal_distance", *CONTROL_COLUMNS]
    published = pub[pub_cols].astype("float64").astype({"ccode": "int64", "year": "int64"})
    if "controls" in flags:
        base = reb[KEY_COLS].astype("int64")
    else:
        base = published[KEY_COLS]
    panel = base.merge(published, on=KEY_COLS, how="left", validate="one_to_one")

    # alliance depth: which score, which alliance of the state's, which alliances count
    offset = published_depth_offset(pub, tables.items)
    score = tables.items.set_index("atopid")["bc_depth" if "direction" in flags else "kent_depth"]
    rebuilt_ally = panel[KEY_COLS].merge(reb[KEY_COLS + ["us_ally"]], on=KEY_COLS, how="left")["us_ally"]
    if "universe" in flags:
        from allypot.data.pipeline.alliances import in_universe

        allied = rebuilt_ally.fillna(False).astype(bool).to_numpy()
        candidates = tables.membership[in_universe(tables.membership, tables.universe)]
        panel["us_ally"] = rebuilt_ally.astype("float64").to_numpy()
    else:
        allied = (panel["us_ally"] == 1).to_numpy()
        candidates = tables.membership
    chosen = choose_alliance(panel, allied, candidates, score, "deepest" if "deepest" in flags else "lowest")
    panel["atopid"] = chosen["atopid"].to_numpy()
    panel["depth_score"] = chosen["score"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.log(panel["depth_score"] + offset)
    # published conventions kept: no scored alliance -> 0, log(<= 0) -> 0 (Afghanistan)
    panel["alliance_depth"] = depth.where(np.isfinite(depth), 0.0)
    panel["potential"] = (1 - panel["ideal_distance"]) - panel["alliance_depth"]

    if "contribution" in flags:
        panel[OUTCOME] = panel[KEY_COLS].merge(reb[KEY_COLS + ["share"]], on=KEY_COLS, how="left")["share"].to_numpy()
    if "measurement" in flags:
        if tables.plugin_potential is None:
            raise ValueError("repair 'measurement' needs the plug-in potential (AuditTables.plugin_potential)")
        pot = tables.plugin_potential[KEY_COLS + ["potential"]].astype({"ccode": "int64", "year": "int64"})
        panel["potential"] = panel[KEY_COLS].merge(pot, on=KEY_COLS, how="left")["potential"].to_numpy()
    if "controls" in flags:
        controls = rebuilt_controls(reb)
        merged = panel[KEY_COLS].merge(controls, on=KEY_COLS, how="left", validate="one_to_one")
        for col in CONTROL_COLUMNS:
            panel[col] = merged[col].to_numpy()
    if "effects" in flags:
        for year in sorted(panel["year"].unique())[1:]:
            panel[f"{YEAR_PREFIX}{year}"] = (panel["year"] == year).astype("float64")
    return panel


def rebuilt_controls(rebuilt: pd.DataFrame) -> pd.DataFrame:
    """The rebuilt panel's Table 1 controls, mapped as ``allypot replicate`` maps them."""
    from allypot.inference.replicate_cli import rebuilt_for_replication

    no_potential = rebuilt[KEY_COLS].assign(potential=np.nan)
    with warnings.catch_warnings():
        # the placeholder potential is all missing by construction; only the controls are used
        warnings.simplefilter("ignore")
        mapped = rebuilt_for_replication(rebuilt, no_potential)
    return mapped[KEY_COLS + list(CONTROL_COLUMNS)]


def step_specification(spec: str, flags: frozenset[str] | set[str], panel: pd.DataFrame) -> Specification:
    """The Table 1 specification ``spec``, with country and year effects when ``effects`` is set."""
    s = SPECIFICATIONS[spec]
    if "effects" not in flags:
        return s
    years = tuple(c for c in panel.columns if c.startswith(YEAR_PREFIX))
    return Specification(f"{s.label} + country and year effects", s.design_controls, s.replication_terms + years,
                         fixed_effects=True)


# ---------------------------------------------------------------------------- N explained


def term_frame(panel: pd.DataFrame, spec: Specification) -> pd.DataFrame:
    """Rows Table 1 considers for ``spec`` (the sample rule's non-contributors, the US and
    Afghanistan, dropped) with each term as a float (derived logs of non-positive values
    missing), as ``estimation_sample`` builds them through ``select_sample``. Iceland is not
    excluded here: its undefined share is a missing outcome, as under the sample rule."""
    data = panel[~panel["ccode"].isin(list(NON_CONTRIBUTORS))]
    out = data[KEY_COLS].copy()
    for term in (OUTCOME, *spec.replication_terms):
        source = LOG_COLUMNS.get(term, term)
        values = data[source].astype("float64")
        out[term] = np.log(values.where(values > 0)) if term in LOG_COLUMNS else values
    return out.set_index(KEY_COLS)


def _first_missing(frame: pd.DataFrame, keys: pd.Index) -> pd.Series:
    """For each key, the first term (outcome first) that is missing or not finite."""
    sub = frame.reindex(keys)
    bad = ~np.isfinite(sub.to_numpy(dtype="float64"))
    first = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)
    names = np.array(sub.columns)
    return pd.Series([names[i] if i >= 0 else "" for i in first], index=keys)


def explain_n(before: pd.DataFrame, before_spec: Specification, after: pd.DataFrame,
              after_spec: Specification) -> tuple[int, int, list[tuple[str, int]]]:
    """How the estimation sample changed: (N before, N after, [(reason, signed count)]).

    A lost row is explained by the first term missing after (or "state-year not in the
    panel"), a gained one by the first term that was missing before. The counts add up:
    N before + sum(counts) = N after, which is checked.
    """
    fb, fa = term_frame(before, before_spec), term_frame(after, after_spec)
    in_b = fb.index[np.isfinite(fb.to_numpy(dtype="float64")).all(axis=1)]
    in_a = fa.index[np.isfinite(fa.to_numpy(dtype="float64")).all(axis=1)]
    lost, gained = in_b.difference(in_a), in_a.difference(in_b)
    reasons: dict[str, int] = {}
    lost_reason = _first_missing(fa, lost)
    for key, term in lost_reason.items():
        label = f"{term} missing" if key in fa.index else "state-year not in the panel"
        reasons[label] = reasons.get(label, 0) - 1
    gained_reason = _first_missing(fb, gained)
    for key, term in gained_reason.items():
        label = f"{term} now present" if key in fb.index else "state-year new to the panel"
        reasons[label] = reasons.get(label, 0) + 1
    n_before, n_after = len(in_b), len(in_a)
    if n_before + sum(reasons.values()) != n_after:
        raise AssertionError(f"N does not add up: {n_before} + {sum(reasons.values())} != {n_after}")
    return n_before, n_after, sorted(reasons.items(), key=lambda kv: (kv[1] > 0, -abs(kv[1])))


def format_reasons(reasons: list[tuple[str, int]]) -> str:
    return "; ".join(f"{n:+d} {why}" for why, n in reasons) if reasons else "same rows"


# ---------------------------------------------------------------------------- estimation


def _effect_rows(result: pd.DataFrame, potential_sd: float) -> dict:
    row = result.set_index("term").loc["potential"]
    return {"estimate": float(row["estimate"]), "lower": float(row["lower"]), "upper": float(row["upper"]),
            "n": int(row["n"]), "per_sd": float(row["estimate"]) * potential_sd}


def estimate_step(panel: pd.DataFrame, flags, specs: list[str], bayes: bool, bambi_kw: dict) -> list[dict]:
    """OLS (and Bambi if ``bayes``) of every spec on one audit panel: the potential rows.

    BLAS is held to one thread: the designs with ~190 country and year dummies are solved by
    an SVD that, on a loaded 2-core machine, took 5.8 s with two threads and 0.1 s with one.
    With country effects, time-invariant controls (distance to Kabul) are absorbed and
    statsmodels warns of a rank-deficient design; the potential coefficient is unaffected.
    """
    from statsmodels.tools.sm_exceptions import SingularMatrixWarning
    from threadpoolctl import threadpool_limits

    rows = []
    for spec in specs:
        s = step_specification(spec, flags, panel)
        frame = term_frame(panel, s)
        complete = frame[np.isfinite(frame.to_numpy(dtype="float64")).all(axis=1)]
        # a year absent from the sample (all controls: GDP ends in 2012) has a constant dummy,
        # which Bambi refuses; dropping it changes nothing in OLS
        constant = [t for t in s.replication_terms if t.startswith(YEAR_PREFIX) and complete[t].nunique() < 2]
        s = Specification(s.label, s.design_controls, tuple(t for t in s.replication_terms if t not in constant),
                          s.fixed_effects)
        sd = float(complete["potential"].std())
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularMatrixWarning)
            fits = {"ols": fit_ols(panel, s)}
        if bayes:
            fits["bambi"] = fit_bambi(panel, s, **bambi_kw)
        for method, res in fits.items():
            rows.append({"spec": spec, "method": method} | _effect_rows(res, sd))
    return rows


def run_ols_steps(tables: AuditTables, specs: list[str] | None = None, bayes: bool = False,
                  bambi_kw: dict | None = None, steps: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every OLS-estimable step, cumulatively and alone, for every spec, with N explained.

    Returns a tidy frame: path ("cumulative" / "alone"), step (label), flags, spec, method,
    estimate, lower, upper, n, per_sd (effect per SD of potential in the sample), n_change
    (the reasons the sample differs from the previous step, or from the published baseline).
    """
    specs = list(SPECIFICATIONS) if specs is None else specs
    steps = OLS_FLAGS if steps is None else steps
    bambi_kw = bambi_kw or {}
    labels = {s.key: s.label for s in STEPS}
    recipes = [("cumulative", BASELINE_LABEL, frozenset())]
    for i, key in enumerate(steps):
        recipes.append(("cumulative", labels[key], frozenset(steps[: i + 1])))
    recipes += [("alone", labels[key], frozenset({key})) for key in steps]
    panels = {flags: audit_panel(tables, flags) for _, _, flags in recipes}
    out = []
    previous = frozenset()
    for path, label, flags in recipes:
        reference = previous if path == "cumulative" else frozenset()
        for row in estimate_step(panels[flags], flags, specs, bayes, bambi_kw):
            if flags:
                before = step_specification(row["spec"], reference, panels[reference])
                after = step_specification(row["spec"], flags, panels[flags])
                _, n_after, reasons = explain_n(panels[reference], before, panels[flags], after)
                if n_after != row["n"]:
                    raise AssertionError(f"{label} {row['spec']}: explained N {n_after} != fitted N {row['n']}")
                row["n_change"] = format_reasons(reasons)
            else:
                row["n_change"] = ""
            out.append({"path": path, "step": label, "flags": ",".join(sorted(flags))} | row)
        if path == "cumulative":
            previous = flags
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------- MCMC steps


def mcmc_config(spec: str, quick: bool, seed: int = SEED) -> dict:
    """The resolved config of the project's model for Table 1 column ``spec`` (hurdle family,
    country and year effects); ``quick`` = the light sampler of ``allypot replicate``."""
    from allypot.inference.config import resolve_config
    from allypot.inference.replicate_cli import LIGHT_SAMPLER

    user = {"run": {"name": f"audit-{'quick-' if quick else ''}{spec}", "seed": seed},
            "model": {"mode": "joint", "specification": PROJECT_SPECIFICATION[spec], "family": "hurdle",
                      "country_effects": True, "year_effects": True}}
    if quick:
        user["sampler"] = dict(LIGHT_SAMPLER)
        user["cut"] = {"measurement_draws": 10, "draws_per_fit": 200, "tune_per_fit": 300}
    return resolve_config(user)


def _mode_config(config: dict, mode: str) -> dict:
    return config | {"model": config["model"] | {"mode": mode}}


def expected_run_id(config: dict, tables_dir: Path) -> str:
    """The id a run folder of ``config`` on these tables has (what ``fit.py`` writes)."""
    from allypot.inference.runs import compute_run_id, data_hash, run_data_files

    digest, _ = data_hash(tables_dir, files=run_data_files(config))
    return compute_run_id(config, digest)


def find_run(runs_dir: Path, run_id: str) -> Path | None:
    """The newest run folder in ``runs_dir`` whose ``meta.json`` id is ``run_id``."""
    from allypot.inference.runs import find_runs

    hits = find_runs(runs_dir, run_id)
    return hits[0] if hits else None


def plugin_potential_for_audit(tables_dir: Path, runs_dir: Path, fit: bool, quick: bool,
                               seed: int = SEED) -> tuple[pd.DataFrame | None, str]:
    """Plug-in potential for step 5 from the measurement posterior of a plug-in run of the
    baseline specification (the widest sample), reused when its id matches, else fitted if
    ``fit``. Returns (potential or None, a sentence saying where it came from)."""
    from allypot.inference.fit import fit_config
    from allypot.inference.replicate_cli import plugin_potential

    config = _mode_config(mcmc_config("baseline", quick, seed), "plugin")
    run_id = expected_run_id(config, tables_dir)
    path = find_run(runs_dir, run_id)
    if path is None and not fit:
        return None, f"not yet run (no run folder with id {run_id} in {runs_dir}; pass --fit)"
    source = "reused"
    if path is None:
        path = fit_config(config, Path(tables_dir), Path(runs_dir), progress=False).path
        source = "fitted"
    potential = plugin_potential(Path(tables_dir), seed, potential_run=path, progress=False)
    return potential, f"{source} run {path.name} (id {run_id}{', quick sampler' if quick else ''})"


def run_mcmc_steps(tables_dir: Path, runs_dir: Path, specs: list[str], fit: bool, quick: bool,
                   seed: int = SEED) -> tuple[pd.DataFrame, list[str]]:
    """Steps 6b-7 (plug-in hurdle, cut, joint) per spec from run folders; fitted (all three
    modes with one measurement fit, ``allypot compare``) only if ``fit`` and a folder is missing."""
    from allypot.inference.fit import compare_modes, read_effect

    labels = {s.mcmc_mode: s.label for s in STEPS if s.mcmc_mode}
    rows, notes = [], []
    for spec in specs:
        config = mcmc_config(spec, quick, seed)
        ids = {mode: expected_run_id(_mode_config(config, mode), tables_dir) for mode in MCMC_MODES}
        paths = {mode: find_run(runs_dir, run_id) for mode, run_id in ids.items()}
        if any(p is None for p in paths.values()) and fit:
            _, fitted = compare_modes(config, Path(tables_dir), Path(runs_dir), progress=False)
            paths = {mode: fitted[mode] for mode in MCMC_MODES}
            notes.append(f"{spec}: fitted now")
        for mode in MCMC_MODES:
            row = {"path": "cumulative", "step": labels[mode], "flags": mode, "spec": spec, "method": mode}
            if paths[mode] is None:
                rows.append(row | {"n_change": f"not yet run (no run folder with id {ids[mode]})"})
                continue
            # refused if the folder's files changed since the run (checksums, ids)
            effect, meta = read_effect(paths[mode])
            excluded = "; ".join(f"-{n} {why}" for why, n in meta["sample"]["excluded"].items() if n)
            # a cut run pools fits made with different potentials: its R-hat is the worst within one fit
            rhat = meta["sampler"].get("cut_max_rhat_within_fit", meta.get("health", {}).get("max_rhat"))
            rows.append(row | {"estimate": effect["median"], "lower": effect["q05"], "upper": effect["q95"],
                               "n": int(meta["sample"]["rows"]),
                               "n_change": f"project's sample of the rebuilt panel ({excluded or 'nothing excluded'})",
                               "rhat": rhat, "run": paths[mode].name})
        used = [f"{mode} {paths[mode].name}" for mode in MCMC_MODES if paths[mode] is not None]
        if used:
            notes.append(f"{spec}: " + ", ".join(used))
    return pd.DataFrame(rows), notes


# ---------------------------------------------------------------------------- report


def reproduces_table1(results: pd.DataFrame) -> pd.DataFrame:
    """The baseline OLS rows against the printed Table 1 (estimate and interval to 3 decimals, N)."""
    base = results[(results["step"] == BASELINE_LABEL) & (results["method"] == "ols")].set_index("spec")
    rows = []
    for spec, printed in PAPER_TABLE1.items():
        ours = base.loc[spec]
        match = all(round(float(ours[k]), 3) == printed[k] for k in ("estimate", "lower", "upper"))
        rows.append({"spec": spec, "estimate": ours["estimate"], "lower": ours["lower"], "upper": ours["upper"],
                     "n": int(ours["n"]), "printed": f"{printed['estimate']:.3f} [{printed['lower']:.3f}, "
                     f"{printed['upper']:.3f}] n={printed['n']}",
                     "matches_print": bool(match and int(ours["n"]) == printed["n"])})
    return pd.DataFrame(rows)


def _cell(r) -> str:
    if pd.isna(r.get("estimate", np.nan)):
        return "not yet run"
    return f"{r['estimate']:.4f} [{r['lower']:.4f}, {r['upper']:.4f}] n={int(r['n'])}"


def wide_table(results: pd.DataFrame, path: str, method: str | tuple[str, ...]) -> pd.DataFrame:
    """Step x specification cells "estimate [interval] n=N" for one path and method(s)."""
    methods = (method,) if isinstance(method, str) else method
    sub = results[(results["path"] == path) & results["method"].isin(methods)]
    steps = list(dict.fromkeys(sub["step"]))
    specs = list(dict.fromkeys(sub["spec"]))
    cells = {(r["step"], r["spec"]): _cell(r) for _, r in sub.iterrows()}
    return pd.DataFrame([{"step": st} | {sp: cells.get((st, sp), "") for sp in specs} for st in steps])


def verdict(results: pd.DataFrame) -> list[str]:
    """Sentences read off the OLS rows: sign flips, significance changes, biggest moves."""
    ols = results[results["method"] == "ols"]
    lines = []
    for spec in dict.fromkeys(ols["spec"]):
        cum = ols[(ols["path"] == "cumulative") & (ols["spec"] == spec)].reset_index(drop=True)
        alone = ols[(ols["path"] == "alone") & (ols["spec"] == spec)].set_index("step")
        start = cum.iloc[0]
        flips, significance, moves, widths = [], [], [], []
        for prev, cur in zip(cum.iloc[:-1].itertuples(), cum.iloc[1:].itertuples()):
            if np.sign(prev.estimate) != np.sign(cur.estimate):
                flips.append(cur.step)
            excl = lambda r: r.lower > 0 or r.upper < 0  # noqa: E731
            if excl(prev) != excl(cur):
                significance.append(f"{cur.step} ({'now excludes' if excl(cur) else 'now includes'} 0)")
            moves.append((abs(cur.per_sd - prev.per_sd), cur.step, cur.per_sd - prev.per_sd))
            widths.append(((cur.upper - cur.lower) * abs(cur.per_sd / cur.estimate)
                           / ((prev.upper - prev.lower) * abs(prev.per_sd / prev.estimate)), cur.step))
        end = cum.iloc[-1]
        biggest = max(moves)
        widest = max(widths, key=lambda w: abs(np.log(w[0])))
        alone_flips = [st for st, r in alone.iterrows() if np.sign(r["estimate"]) != np.sign(start["estimate"])]
        alone_move = (alone["per_sd"] - start["per_sd"]).abs().idxmax()
        lines.append(
            f"**{SPECIFICATIONS[spec].label}**: published {start['estimate']:.4f} "
            f"[{start['lower']:.4f}, {start['upper']:.4f}] ({start['per_sd']:.4f} per SD of potential), "
            f"after all OLS repairs {end['estimate']:.4f} [{end['lower']:.4f}, {end['upper']:.4f}] "
            f"({end['per_sd']:.4f} per SD). Cumulatively the sign changes at "
            f"{', '.join(flips) or 'no step'}; whether the 95% interval excludes 0 changes at "
            f"{', '.join(significance) or 'no step'}. The largest move is {biggest[1]} "
            f"({biggest[2]:+.4f} per SD); the interval (per SD) changes most at {widest[1]} "
            f"(width x{widest[0]:.2f}). Alone on the published data, {', '.join(alone_flips) or 'no repair'} "
            f"flip{'s' if len(alone_flips) == 1 else ''} the sign, and {alone_move} moves it most "
            f"({alone.loc[alone_move, 'per_sd'] - start['per_sd']:+.4f} per SD)."
        )
    return lines


def mcmc_verdict(results: pd.DataFrame) -> list[str]:
    """One sentence per specification with MCMC steps: the effect under plug-in, cut and joint."""
    mcmc = results[results["method"].isin(MCMC_MODES)]
    lines = []
    for spec, rows in mcmc.groupby("spec", sort=False):
        parts = []
        for row in rows.itertuples():
            if pd.isna(row.estimate):
                parts.append(f"{row.method}: not yet run")
                continue
            sign = "excludes 0" if row.lower > 0 or row.upper < 0 else "includes 0"
            parts.append(f"{row.method} {row.estimate:.4f} [{row.lower:.4f}, {row.upper:.4f}] "
                         f"(90% interval {sign}, worst R-hat of any parameter {row.rhat:.2f})")
        lines.append(f"**{SPECIFICATIONS[spec].label}, the project's hurdle model** (effect on the expected share, "
                     f"cumulative only: these estimate the project's model, which has no published-data version): "
                     + "; ".join(parts) + ".")
    return lines


def forest_figure(results: pd.DataFrame, path: Path, sd_for_mcmc: dict[str, float]) -> None:
    """Forest plot per specification: effect per SD of potential with its interval, cumulative
    steps (filled) and single repairs on the published data (open); MCMC rows scaled by the SD
    of the plug-in potential in the step-6a sample of the same specification."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ols = results[results["method"].isin(["ols", *MCMC_MODES])].copy()
    scale = np.where(ols["method"] == "ols", ols["per_sd"] / ols["estimate"], ols["spec"].map(sd_for_mcmc))
    ols["lo_sd"], ols["hi_sd"], ols["est_sd"] = ols["lower"] * scale, ols["upper"] * scale, ols["estimate"] * scale
    specs = list(dict.fromkeys(ols["spec"]))
    labels = [BASELINE_LABEL] + [s.label for s in STEPS]
    fig, axes = plt.subplots(1, len(specs), figsize=(4.2 * len(specs), 6.5), sharey=True, squeeze=False)
    for ax, spec in zip(axes[0], specs):
        for offset, route, style in ((-0.18, "cumulative", "o"), (0.18, "alone", "s")):
            sub = ols[(ols["spec"] == spec) & (ols["path"] == route)].dropna(subset=["est_sd"])
            y = np.array([labels.index(s) for s in sub["step"]]) + offset
            ax.errorbar(sub["est_sd"], y, xerr=[sub["est_sd"] - sub["lo_sd"], sub["hi_sd"] - sub["est_sd"]],
                        fmt=style, mfc="C0" if route == "cumulative" else "white",
                        color="C0" if route == "cumulative" else "C1", ms=5, capsize=2, label=route)
        ax.axvline(0, color="grey", lw=0.8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_title(SPECIFICATIONS[spec].label)
        ax.set_xlabel("effect per SD of potential (95% / MCMC 90%)")
    axes[0][0].set_yticks(range(len(labels)), labels)
    axes[0][0].invert_yaxis()
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Alliance-potential effect, one repair at a time")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_audit(tables_dir: Path, out_dir: Path, runs_dir: Path, bayes: bool = False, fit: bool = False,
              quick: bool = False, mcmc_specs: tuple[str, ...] = ("political",), draws: int = 1000,
              chains: int = 4, seed: int = SEED) -> pd.DataFrame:
    """The whole audit: OLS steps (and Bambi if ``bayes``), the plug-in and MCMC steps from
    matching run folders (fitted if ``fit``; ``quick`` = light sampler), written as
    ``audit.md``, ``audit.csv`` and ``audit.png`` in ``out_dir``. Returns the tidy results."""
    tables_dir, out_dir, runs_dir = Path(tables_dir), Path(out_dir), Path(runs_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = load_audit_tables(tables_dir)
    finding = depth_direction(tables.published, tables.items)
    potential, potential_note = plugin_potential_for_audit(tables_dir, runs_dir, fit, quick, seed)
    tables.plugin_potential = potential
    steps = tuple(k for k in OLS_FLAGS if potential is not None or k != "measurement")
    print(f"audit: OLS{' and Bambi' if bayes else ''} steps {', '.join(steps)}", flush=True)
    results = run_ols_steps(tables, bayes=bayes, steps=steps,
                            bambi_kw={"draws": draws, "chains": chains, "seed": seed})
    mcmc, mcmc_notes = run_mcmc_steps(tables_dir, runs_dir, list(mcmc_specs), fit, quick, seed)
    results = pd.concat([results, mcmc], ignore_index=True)
    results.to_csv(out_dir / "audit.csv", index=False)
    cumulative_6a = results[(results["path"] == "cumulative") & (results["flags"].str.contains("effects"))
                            & (results["method"] == "ols")].set_index("spec")
    sd_for_mcmc = (cumulative_6a["per_sd"] / cumulative_6a["estimate"]).to_dict()
    forest_figure(results, out_dir / "audit.png", sd_for_mcmc)
    text = audit_report(results, finding, potential_note, mcmc_notes, quick, bayes and f"{chains} chains x {draws} draws",
                        steps)
    (out_dir / "audit.md").write_text(text)
    print(text)
    print(f"written: {out_dir / 'audit.md'}, {out_dir / 'audit.csv'}, {out_dir / 'audit.png'}")
    return results


def audit_report(results: pd.DataFrame, finding: dict, potential_note: str, mcmc_notes: list[str], quick: bool,
                 bayes: str | bool, steps: tuple[str, ...]) -> str:
    """The markdown report: finding, reproduction check, step tables, N changes, verdict
    (``bayes``: the Bambi sampler settings when the Bambi twin was fitted, else False)."""
    step_rows = pd.DataFrame([{"step": s.label, "what it changes": s.changes,
                               "run": "yes" if s.key in steps or s.mcmc_mode else "no (needs the plug-in potential)"}
                              for s in STEPS])
    items = pd.DataFrame({"item": list(finding["r_items_kent"]),
                          "r with published (Kent) score": list(finding["r_items_kent"].values()),
                          "r with B&C Depth.score": list(finding["r_items_bc"].values())})
    n_changes = results[results["method"].isin(["ols", *MCMC_MODES]) & (results["n_change"] != "")][
        ["path", "step", "spec", "n", "n_change"]]
    methods = ("ols", *MCMC_MODES)
    parts = [
        "# Audit: from the printed Table 1 to the joint model, one repair at a time",
        "Generated by `allypot audit` from the committed tables (`data/tables/`). Effect = the "
        "alliance-potential coefficient (OLS: estimate [95% normal interval]; MCMC steps: posterior "
        "median [90% interval] of the effect on the expected share). 'per SD' multiplies the effect "
        "by the SD of potential in the estimation sample, the only scale that survives step 5 (the "
        "plug-in potential is not on the published `pot_gain` scale).",
        "## The depth direction (verified)",
        f"Published `depth` = log(kent_depth + {finding['offset']:.3f}) on every allied state-year with a finite "
        f"log (r = {finding['r_published_depth_log_kent']:.4f}, largest gap {finding['max_abs_gap_published_depth']:.1e}); "
        f"those scores correlate {finding['r_kent_bc']:.3f} with Benson & Clinton's `Depth.score` on the "
        f"{finding['n_common_alliances']} alliances both score. Published depth by US alliance: "
        + ", ".join(f"{k} = {v:.3f}" for k, v in finding["published_depth_by_alliance"].items())
        + " (3075 Rio Treaty, 3150 OAS Charter, 3180 NATO).",
        markdown_table(items, floatfmt="{:.3f}"),
        "## Table 1 reproduced through the audit code path",
        markdown_table(reproduces_table1(results), floatfmt="{:.4f}"),
        "## The repairs",
        markdown_table(step_rows),
        f"Plug-in potential (step 5): {potential_note}.",
        "MCMC steps (6b-7, political specification unless stated): "
        + ("; ".join(mcmc_notes) if mcmc_notes else "no run folder")
        + (". **Quick runs** (2 chains x 300 draws, cut with 10 measurement draws): shorter than the "
           "shipped configs, indicative only." if quick else "."),
        "## Cumulative (each repair on top of the previous ones), OLS",
        markdown_table(wide_table(results, "cumulative", methods)),
        "## Each repair alone, on the published data, OLS",
        markdown_table(wide_table(results, "alone", "ols")),
    ]
    if bayes:
        parts += [f"## Bambi twin (posterior mean [95% interval]; default priors, {bayes}): cumulative, then alone",
                  markdown_table(wide_table(results, "cumulative", "bambi")),
                  markdown_table(wide_table(results, "alone", "bambi"))]
    per_sd = results[results["method"] == "ols"].pivot_table(index=["path", "step"], columns="spec",
                                                             values="per_sd", sort=False).reset_index()
    parts += [
        "## Effect per SD of potential, OLS",
        markdown_table(per_sd, floatfmt="{:.4f}"),
        "![forest plot](audit.png)",
        "## How N changes (against the previous step; 'alone' against the published data)",
        markdown_table(n_changes),
        "## Verdict",
        *verdict(results),
        *mcmc_verdict(results),
    ]
    return "\n\n".join(parts) + "\n"
