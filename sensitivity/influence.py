"""Leave-one-state-out influence on the alliance-potential effect (issue 9, "Influence").

Which states carry the effect? For each state ``s`` of a run's regression sample, the effect's
posterior without ``s``'s contribution rows is approximated by importance sampling from the
full posterior (Vehtari et al. 2024, PSIS): each draw gets the log weight

    log w_s = -sum_{rows n of s} log p(share_n | draw)

(the run folder's pointwise ``log_likelihood``, summed over the state's rows), Pareto-smoothed
by ``arviz_stats`` (``psislw``), and the effect's mean, median and 90% interval are the weighted
ones (``loo_expectation``, ``loo_quantile``). The Pareto k of each state's weights says whether
the approximation can be trusted: above about 0.7 the weights are too heavy-tailed, and
``allypot influence --refit`` refits the run's config with ``data.exclude_countries = [s]``
for those states instead (run folders like any other, reused when one with the same id exists).

Each state has its own country effects (the hurdle's ``logit_`` and ``log_country_effect``),
informed almost only by the state's rows: leaving the rows out moves them from their posterior
back to their prior, and importance weights built from the pointwise likelihood are then too
heavy-tailed (measured on the real joint run: k > 0.7 for 137 of 150 states). For the hurdle
family with country effects the weights therefore use the state's likelihood with its two
country effects integrated over their prior N(0, tau) (leave-one-group-out with the
group's parameters integrated out; Vehtari et al. 2017, sec. 4.3 and Merkle et al. 2019):

    log w_s = -log int prod_n p(z_n | eta_n - u_s + u) N(u | 0, tau_logit) du      (Gauss-Hermite)
              -log int prod_{n: share > 0} LogNormal(share_n | mu_n - v_s + v, sigma) N(v | 0, tau_log) dv
                                                                                   (closed form)

with the linear predictors rebuilt from the stored parameters (and checked against the stored
pointwise log likelihood), and the effect that is reweighted is the average derivative over the
other states' rows, which does not involve the left-out state's effects. Other families and
runs without country effects use the pointwise likelihood as it is.

Cut runs pool independent fits (one per measurement draw of potential) as consecutive chains.
Their measurement draws do not depend on the outcome, so each fit is reweighted on its own
(weights normalised within the fit) and the fits keep equal mass; k is the worst fit's.

PSIS and a refit answer slightly different questions in the joint, cut and plug-in models:
the weights remove only the state's contribution likelihood, whereas a refit also drops the
state from the sample that defines potential's projection (MODEL.md Part C) and its vote path.
The table says which method produced each row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import arviz_stats  # noqa: F401  (registers the .azstats accessor)
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import logsumexp

from allypot.markdown import markdown_table
from allypot.models.contribution import FAMILY_TO_OUTCOME_VAR

EFFECT = "potential_effect"
SAMPLE_DIMS = ("chain", "draw")
PROBS = (0.05, 0.95)
K_THRESHOLD = 0.7  # Vehtari et al. (2024): above 0.7 PSIS estimates are unreliable at any sample size
TABLE_COLUMNS = ["ccode", "stateabb", "name", "rows", "pareto_k", "method", "mean", "median", "q05", "q95",
                 "change_mean", "change_median", "change_mean_sd", "psis_change_mean_sd", "run"]


def summarise_draws(draws: xr.DataArray) -> dict[str, float]:
    """Mean, median, SD and the 90% equal-tailed interval of one scalar's draws."""
    values = np.asarray(draws, dtype="float64").ravel()
    q05, median, q95 = np.quantile(values, [PROBS[0], 0.5, PROBS[1]])
    return {"mean": values.mean(), "median": median, "sd": values.std(ddof=1), "q05": q05, "q95": q95}


def state_log_likelihood(log_likelihood: xr.DataArray, states: np.ndarray) -> xr.DataArray:
    """Sum the pointwise log likelihood over each state's rows: (chain, draw, row) -> (chain, draw, state)."""
    if log_likelihood.sizes["row"] != len(states):
        raise ValueError(f"{log_likelihood.sizes['row']} log-likelihood rows but {len(states)} row labels")
    labelled = log_likelihood.astype("float64").assign_coords(state=("row", np.asarray(states)))
    return labelled.groupby("state").sum("row")


def psis_log_weights(state_ll: xr.DataArray, r_eff: float,
                     chain_groups: list[np.ndarray] | None = None) -> tuple[xr.DataArray, xr.DataArray]:
    """Pareto-smoothed log weights of leaving each state out, and each state's Pareto k.

    ``chain_groups`` lists chains that sample one posterior (a cut run: one group per fit);
    weights are smoothed and normalised within each group, so every group keeps equal mass.
    """
    groups = chain_groups if chain_groups is not None else [np.arange(state_ll.sizes["chain"])]
    weights, khats = [], []
    for chains in groups:
        part = state_ll.isel(chain=np.asarray(chains))
        # psislw takes the log likelihood and smooths its negation, the log importance ratios
        log_w, khat = part.azstats.psislw(r_eff=r_eff, dim=list(SAMPLE_DIMS))
        norm = xr.apply_ufunc(logsumexp, log_w, input_core_dims=[list(SAMPLE_DIMS)],
                              kwargs={"axis": (-2, -1)})
        weights.append(log_w - norm)
        khats.append(khat)
    return xr.concat(weights, "chain"), xr.concat(khats, "group").max("group")


def compute_influence(effect: xr.DataArray, state_ll: xr.DataArray,
                      chain_groups: list[np.ndarray] | None = None,
                      effect_without: xr.DataArray | None = None) -> pd.DataFrame:
    """PSIS leave-one-state-out summaries of ``effect``, one row per state.

    Parameters
    ----------
    effect : draws (chain, draw) of the scalar whose sensitivity is wanted.
    state_ll : log likelihood of each state's rows, (chain, draw, state).
    chain_groups : see :func:`psis_log_weights`.
    effect_without : draws (chain, draw, state) of the effect computed without each state's
        rows, when the effect is itself an average over rows; None: ``effect`` for every state.

    Returns
    -------
    DataFrame indexed by state with the leave-out ``mean``, ``median``, ``q05``, ``q95``, the
    ``pareto_k`` of the weights, and the changes from the full posterior (``change_mean_sd``
    in units of the full posterior's SD). The full posterior's summary is in ``.attrs["full"]``.

    Notes
    -----
    r_eff, the relative efficiency of the draws that the Pareto tail length is set from, is the
    effect's relative mean-ESS (arviz_stats' ``loo`` uses the posterior's mean relative ESS).
    """
    effect = effect.astype("float64")
    r_eff = float(effect.azstats.ess(method="mean", relative=True)) if effect.sizes["chain"] > 1 else 1.0
    log_w, khat = psis_log_weights(state_ll, min(r_eff, 1.0), chain_groups)
    draws = (effect if effect_without is None else effect_without.astype("float64")).broadcast_like(log_w)
    mean, _ = draws.azstats.loo_expectation(log_weights=log_w, pareto_k=khat, kind="mean")
    median, _ = draws.azstats.loo_expectation(log_weights=log_w, pareto_k=khat, kind="median")
    quantiles, _ = draws.azstats.loo_quantile(log_weights=log_w, pareto_k=khat, probs=list(PROBS))
    table = pd.DataFrame({
        "pareto_k": khat.to_series(),
        "mean": mean.to_series(),
        "median": median.to_series(),
        "q05": quantiles.sel(quantile=PROBS[0]).to_series(),
        "q95": quantiles.sel(quantile=PROBS[1]).to_series(),
    })
    table.index.name = "state"
    full = summarise_draws(effect)
    table.attrs["full"] = full
    return with_changes(table, full)


def with_changes(table: pd.DataFrame, full: dict[str, float]) -> pd.DataFrame:
    """Add the changes of mean and median from the full posterior (the mean's in SD units too)."""
    out = table.copy()
    out["change_mean"] = out["mean"] - full["mean"]
    out["change_median"] = out["median"] - full["median"]
    out["change_mean_sd"] = out["change_mean"] / full["sd"]
    return out


GAUSS_HERMITE_NODES = 80  # log error < 1e-7 against adaptive quadrature at tau_logit = 2 (40 nodes: 1e-5)


def integrates_country_effects(run) -> bool:
    """Whether the run's weights can integrate the state's country effects out (module docstring)."""
    return run.family == "hurdle" and bool(run.config["model"]["country_effects"])


@dataclass
class StateTerms:
    log_likelihood: xr.DataArray  # (chain, draw, state): country effects integrated out
    effect_without: xr.DataArray  # (chain, draw, state): the average derivative over the other rows


def _draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    return posterior[name].to_numpy().astype("float64")


def _potential(run) -> np.ndarray:
    """Potential per draw and row as the regression saw it: a plug-in run's fixed potential is
    stored in ``constant_data`` (float64; recomputing it from the stored float32 measurement
    means is off by enough to move the log likelihood by 0.08), every other run's via rundata."""
    from allypot.diagnostics.rundata import potential_draws

    constant = run.group("constant_data")
    if constant is not None and "potential" in constant.data_vars:
        shape = (run.posterior.sizes["chain"], run.posterior.sizes["draw"], constant.sizes["row"])
        return np.broadcast_to(constant["potential"].to_numpy().astype("float64"), shape)
    return potential_draws(run).to_numpy().astype("float64")


def hurdle_state_terms(run, pointwise_ll: xr.DataArray, states: np.ndarray) -> StateTerms:
    """The integrated log likelihood of each state's rows and the effect without them (hurdle family).

    The linear predictors of both parts are rebuilt from the stored parameters in the model's
    own coordinates (``logit_intercept``, ``logit_gamma``, ...; models/contribution.py); the
    rebuilt pointwise log likelihood must match the stored one, else the run was made by a
    model this function does not know and it refuses.
    """
    from scipy.special import expit, log_expit

    post, inputs = run.posterior, run.inputs
    share = inputs.outcome
    positive = share > 0
    potential = _potential(run)  # (chain, draw, row)
    controls = inputs.controls  # (row, control), standardised
    log_centre = np.log(share[positive]).mean()

    def predictor(tag: str) -> tuple[np.ndarray, np.ndarray]:
        """Without and with the country effect: (chain, draw, row) each."""
        eta = _draws(post, f"{tag}intercept")[..., None] + _draws(post, f"{tag}beta")[..., None] * potential
        if controls.shape[1]:
            eta = eta + _draws(post, f"{tag}gamma") @ controls.T  # (c, d, p) @ (p, n) -> (c, d, n)
        if run.config["model"]["year_effects"]:
            eta = eta + _draws(post, f"{tag}year_effect")[..., inputs.year_idx]
        return eta, eta + _draws(post, f"{tag}country_effect")[..., inputs.country_idx]

    eta_other, eta = predictor("logit_")
    mu_other, mu = predictor("log_")
    mu_other, mu = mu_other + log_centre, mu + log_centre
    sigma = _draws(post, "log_sigma")[..., None]
    log_y = np.log(np.where(positive, share, 1.0))
    log_normal = -log_y - np.log(sigma) - 0.5 * np.log(2 * np.pi) - 0.5 * ((log_y - mu) / sigma) ** 2
    rebuilt = np.where(positive, log_expit(eta) + log_normal, log_expit(-eta))
    stored = pointwise_ll.to_numpy().astype("float64")
    gap = np.abs(rebuilt - stored).max()
    if not gap < 1e-3 * max(1.0, np.abs(stored).max()):
        raise ValueError(f"{run.path}: the hurdle predictors rebuilt from the posterior do not reproduce the stored "
                         f"log likelihood (largest gap {gap:.3g}); use a run made by this allypot")
    psi = expit(eta)
    positive_mean = np.exp(mu + sigma**2 / 2)
    derivative = (psi * (1 - psi) * _draws(post, "logit_beta")[..., None] * positive_mean
                  + psi * positive_mean * _draws(post, "log_beta")[..., None])
    total = derivative.sum(axis=-1)

    tau_logit = _draws(post, "logit_country_effect_sigma")
    tau_log = _draws(post, "log_country_effect_sigma")
    codes = np.unique(states)
    log_lik = np.empty(potential.shape[:2] + (len(codes),))
    without = np.empty_like(log_lik)
    for k, code in enumerate(codes):
        rows = np.flatnonzero(states == code)
        pos = rows[positive[rows]]
        log_lik[..., k] = integrated_log_likelihood(eta_other[..., rows], positive[rows], tau_logit,
                                                    log_y[pos], mu_other[..., pos], sigma[..., 0], tau_log)
        without[..., k] = (total - derivative[..., rows].sum(-1)) / (len(states) - len(rows))
    dims = ("chain", "draw", "state")
    coords = {"chain": post["chain"].values, "draw": post["draw"].values, "state": codes}
    return StateTerms(xr.DataArray(log_lik, dims=dims, coords=coords), xr.DataArray(without, dims=dims, coords=coords))


def integrated_log_likelihood(eta_other: np.ndarray, positive: np.ndarray, tau_logit: np.ndarray,
                              log_y: np.ndarray, mu_other: np.ndarray, sigma: np.ndarray,
                              tau_log: np.ndarray) -> np.ndarray:
    """log of one state's hurdle likelihood with its two country effects integrated over their prior.

    Parameters
    ----------
    eta_other : (..., n) logit predictors of the state's rows without its country effect.
    positive : (n,) which rows have a positive share.
    tau_logit, sigma, tau_log : (...) the logit effect's scale, the log part's SD and its effect's scale.
    log_y : (m,) log shares of the positive rows; mu_other : (..., m) their log-part predictors
        without the country effect.

    Notes
    -----
    Logit part by Gauss-Hermite: int prod_n p(z_n | eta_n + u) N(u | 0, tau^2) du
    = pi^(-1/2) sum_q w_q prod_n p(z_n | eta_n + sqrt(2) tau x_q). Log part in closed form:
    r = log y - mu ~ N(0, sigma^2 I + tau^2 1 1'), whose inverse and determinant follow from
    the Sherman-Morrison formula; the log-normal's Jacobian adds -sum log y.
    """
    from scipy.special import log_expit

    nodes, node_weights = np.polynomial.hermite.hermgauss(GAUSS_HERMITE_NODES)
    shifted = eta_other[..., None] + np.sqrt(2) * tau_logit[..., None, None] * nodes  # (..., n, q)
    sign = np.where(positive, 1.0, -1.0)[:, None]  # log p(z) = log_expit(+eta) if z = 1, log_expit(-eta) if 0
    per_node = log_expit(sign * shifted).sum(axis=-2)
    logit_part = logsumexp(per_node + np.log(node_weights) - 0.5 * np.log(np.pi), axis=-1)
    m = len(log_y)
    if not m:
        return logit_part
    r = log_y - mu_other
    s2, t2 = sigma**2, tau_log**2
    log_part = (-log_y.sum() - 0.5 * m * np.log(2 * np.pi) - 0.5 * (m - 1) * np.log(s2) - 0.5 * np.log(s2 + m * t2)
                - ((r**2).sum(-1) - t2 * r.sum(-1) ** 2 / (s2 + m * t2)) / (2 * s2))
    return logit_part + log_part


WEIGHT_TEXT = {
    "integrated": "minus the log likelihood of the state's rows with its two country effects integrated over "
                  "their prior, and the effect averaged over the other states' rows",
    "pointwise": "minus the state's summed pointwise log likelihood",
}


@dataclass
class Influence:
    """The influence table of one run: states ranked by |change of the effect's mean| (in SDs)."""

    run: Path
    table: pd.DataFrame
    full: dict[str, float]
    k_threshold: float
    seconds: float
    weights: str = "pointwise"  # "integrated": country effects integrated out (module docstring)

    @property
    def high_k(self) -> pd.DataFrame:
        return self.table[self.table["pareto_k"] > self.k_threshold]


def influence_of_run(run, k_threshold: float = K_THRESHOLD) -> Influence:
    """PSIS leave-one-state-out influence of a run folder opened with ``diagnostics.rundata.open_run``."""
    from allypot.data.loaders import load_table

    started = time.perf_counter()
    outcome = FAMILY_TO_OUTCOME_VAR[run.family]
    log_lik = run.group("log_likelihood")
    if log_lik is None or outcome not in log_lik.data_vars:
        raise ValueError(f"{run.path}: posterior.nc has no log_likelihood/{outcome}, the pointwise contribution "
                         "log likelihood PSIS needs; refit the run with this allypot")
    if EFFECT not in run.posterior.data_vars:
        raise ValueError(f"{run.path}: the posterior has no {EFFECT}")
    labels = run.row_labels
    states = labels["ccode"].to_numpy()
    if integrates_country_effects(run):
        terms = hurdle_state_terms(run, log_lik[outcome], states)
        table = compute_influence(run.posterior[EFFECT], terms.log_likelihood, run.chain_groups, terms.effect_without)
        weights = "integrated"
    else:
        table = compute_influence(run.posterior[EFFECT], state_log_likelihood(log_lik[outcome], states),
                                  run.chain_groups)
        weights = "pointwise"
    full = table.attrs["full"]
    names = load_table("crosswalk", run.tables_dir).set_index("ccode")["name"]
    table = table.rename_axis("ccode").reset_index()
    table["stateabb"] = table["ccode"].map(labels.drop_duplicates("ccode").set_index("ccode")["stateabb"])
    table["name"] = table["ccode"].map(names)
    table["rows"] = table["ccode"].map(labels["ccode"].value_counts())
    table["method"] = "psis"
    table["psis_change_mean_sd"] = table["change_mean_sd"]
    table["run"] = ""
    return Influence(run.path, ranked(table), full, k_threshold, time.perf_counter() - started, weights)


def ranked(table: pd.DataFrame) -> pd.DataFrame:
    """States by |change of the mean| in SDs, largest first."""
    order = table["change_mean_sd"].abs().sort_values(ascending=False, kind="stable").index
    return table.loc[order, TABLE_COLUMNS].reset_index(drop=True)


def refit_config(config: dict, ccode: int) -> dict:
    """The run's config with one more state left out (re-validated, so older run configs gain the
    keys added since; the resolved priors round-trip unchanged). The tables' folder is left for
    the caller to set (:func:`refit_state`): the run's may not exist on this machine."""
    from allypot.inference.config import resolve_config

    resolved = resolve_config({**config, "data": config["data"] | {"tables_dir": ""}}, source="run config")
    resolved["data"]["exclude_countries"] = sorted(resolved["data"]["exclude_countries"] + [int(ccode)])
    return resolved


def find_run(runs_dir: Path, run_id: str) -> Path | None:
    """A complete, loadable run folder with this id in ``runs_dir`` (newest first), or None."""
    from allypot.inference.runs import RunMismatchError, find_runs, load_run

    for path in find_runs(runs_dir, run_id):
        try:
            load_run(path)
            return path
        except (RunMismatchError, OSError):
            continue
    return None


def refit_state(config: dict, ccode: int, tables_dir: Path, runs_dir: Path, progress: bool = False) -> Path:
    """The run folder of ``config`` without state ``ccode``: reused if one with its id exists, else fitted."""
    from allypot.inference.config import use_tables_dir
    from allypot.inference.fit import fit_config
    from allypot.inference.runs import compute_run_id, data_hash, run_data_files

    refit = refit_config(config, ccode)
    use_tables_dir(refit, tables_dir)  # the saved config names the tables the refit read
    digest, _ = data_hash(tables_dir, files=run_data_files(refit))
    existing = find_run(runs_dir, compute_run_id(refit, digest))
    return existing if existing is not None else fit_config(refit, tables_dir, runs_dir, progress=progress).path


def apply_refits(influence: Influence, config: dict, tables_dir: Path, runs_dir: Path, max_refits: int | None = None,
                 progress: bool = False) -> Influence:
    """Replace the PSIS rows of the states with k above the threshold by exact refits.

    In the table's order (largest PSIS change first: with country effects most states have a high
    k, and a refit matters most where PSIS claims a large change); at most ``max_refits`` of them
    (None: all). The PSIS change stays in ``psis_change_mean_sd`` for comparison.
    """
    from allypot.inference.runs import load_run

    started = time.perf_counter()
    table = influence.table.copy()
    todo = table[table["pareto_k"] > influence.k_threshold]
    if max_refits is not None:
        todo = todo.head(max_refits)
    for index, row in todo.iterrows():
        if progress:
            print(f"refitting without {row['stateabb']} ({row['ccode']}, k = {row['pareto_k']:.2f}) ...", flush=True)
        path = refit_state(config, int(row["ccode"]), tables_dir, runs_dir, progress)
        idata, _, _ = load_run(path)
        summary = summarise_draws(idata["posterior"][EFFECT])
        for key in ("mean", "median", "q05", "q95"):
            table.loc[index, key] = summary[key]
        table.loc[index, ["method", "run"]] = ["refit", str(path)]
    table = with_changes(table.drop(columns=["change_mean", "change_median", "change_mean_sd"]), influence.full)
    return Influence(influence.run, ranked(table), influence.full, influence.k_threshold,
                     influence.seconds + time.perf_counter() - started, influence.weights)


def plot_influence(influence: Influence, top: int = 15):
    """The effect's 90% interval and median without each of the ``top`` states, beside the full sample's."""
    import matplotlib.pyplot as plt

    shown = influence.table.head(top)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.32 * (len(shown) + 1)))
    labels = ["full sample"] + [f"without {r.stateabb} (k {r.pareto_k:.2f}, {r.method})" for r in shown.itertuples()]
    lows = [influence.full["q05"], *shown["q05"]]
    highs = [influence.full["q95"], *shown["q95"]]
    medians = [influence.full["median"], *shown["median"]]
    unreliable = (shown["method"] == "psis") & (shown["pareto_k"] > influence.k_threshold)
    colours = ["black"] + ["tab:red" if m == "refit" else "darkgrey" if bad else "tab:blue"
                           for m, bad in zip(shown["method"], unreliable)]
    y = np.arange(len(labels))[::-1]
    ax.hlines(y, lows, highs, colors=colours, linewidth=2)
    ax.scatter(medians, y, color=colours, zorder=3, s=18)
    ax.axvline(influence.full["median"], color="black", linewidth=0.8, linestyle=":")
    ax.axvline(0.0, color="grey", linewidth=0.6)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(f"{EFFECT}: median and 90% interval\n(blue: PSIS, grey: PSIS with k > {influence.k_threshold}, "
                  "not trusted; red: refit)", fontsize=9)
    ax.set_title(f"Leave one state out: the {len(shown)} most influential states", fontsize=10)
    fig.tight_layout()
    return fig


def format_summary(influence: Influence, top: int = 15) -> str:
    """One screen: the full-sample effect, the most influential states, how many have high k."""
    full = influence.full
    shown = influence.table.head(top)
    lines = [
        f"allypot influence: {influence.run.name}",
        f"full sample: {EFFECT} mean {full['mean']:+.5f} (SD {full['sd']:.5f}), median {full['median']:+.5f}, "
        f"90% [{full['q05']:+.5f}, {full['q95']:+.5f}]",
        f"{len(influence.table)} states ({influence.weights} PSIS weights); {len(influence.high_k)} with Pareto k > "
        f"{influence.k_threshold} "
        f"({(influence.table['method'] == 'refit').sum()} refitted)",
        "",
        f"{'state':<28} {'ccode':>5} {'rows':>4} {'k':>5}  {'change/SD':>9}  {'median':>9}  90% interval          method",
    ]
    for r in shown.itertuples():
        lines.append(f"{(r.name if isinstance(r.name, str) else r.stateabb)[:28]:<28} {r.ccode:>5} {r.rows:>4} "
                     f"{r.pareto_k:>5.2f}  {r.change_mean_sd:>+9.3f}  {r.median:>+9.5f}  "
                     f"[{r.q05:+.5f}, {r.q95:+.5f}]  {r.method}")
    top3 = ", ".join(f"{r.name} ({r.change_mean_sd:+.2f} SD)" for r in shown.head(3).itertuples())
    lines += ["", f"most influential: {top3}"]
    return "\n".join(lines)


def influence_report(influence: Influence, top: int = 15) -> str:
    """Markdown: what was computed, the full-sample effect, the ranked states."""
    full = influence.full
    shown = influence.table.head(top).drop(columns=["run"])
    refits = influence.table[influence.table["method"] == "refit"]
    lines = [
        f"# Leave-one-state-out influence on the alliance-potential effect ({influence.run.name})",
        "",
        f"Run: `{influence.run}`. For each of the {len(influence.table)} states of the regression sample, the "
        f"posterior of `{EFFECT}` without that state's contribution rows, by Pareto-smoothed importance sampling "
        f"(weights: {WEIGHT_TEXT[influence.weights]}) or, where marked `refit`, by refitting the "
        "run's config with `data.exclude_countries` set to the state. `change_mean_sd` is the change of the "
        "posterior mean in units of the full posterior's SD. A refit also drops the state from potential's "
        "projection and its vote path, which PSIS keeps.",
        "",
        f"Full sample: mean {full['mean']:+.5f} (SD {full['sd']:.5f}), median {full['median']:+.5f}, "
        f"90% [{full['q05']:+.5f}, {full['q95']:+.5f}].",
        "",
        f"{len(influence.high_k)} state(s) have Pareto k > {influence.k_threshold} "
        f"({len(refits)} refitted); wall time {influence.seconds:.0f} s.",
        "",
        f"## The {len(shown)} most influential states",
        "",
        markdown_table(shown, floatfmt="{:.5f}"),
        "",
        "All states: `influence.csv`; figure: `influence.png`.",
    ]
    if len(refits):
        lines += ["", "## Refit run folders", ""] + [f"- {r.stateabb}: `{r.run}`" for r in refits.itertuples()]
    return "\n".join(lines) + "\n"


def write_influence(influence: Influence, out_dir: Path, top: int = 15) -> dict[str, Path]:
    """influence.csv (every state), influence.md and influence.png into a new folder ``out_dir``."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=False)
    paths = {"csv": out_dir / "influence.csv", "md": out_dir / "influence.md", "png": out_dir / "influence.png"}
    influence.table.to_csv(paths["csv"], index=False)
    paths["md"].write_text(influence_report(influence, top))
    fig = plot_influence(influence, top)
    try:
        fig.savefig(paths["png"], dpi=120)
    finally:
        plt.close(fig)
    return paths
