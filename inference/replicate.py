"""Replication of Gannon & Kent (2020) Table 1, by OLS and by Bambi, on any panel.

How Table 1 was estimated, read off ``docs/05_Model.Rmd`` (CenterForPeaceAndSecurityStudies/ISAF,
commit 5343e8f) and checked against the table it wrote (``paper/table.tex``, commit 7be1b22):

- data ``iiss_afghan_complete.rds``; Afghanistan, the US and Iceland (zero armed forces)
  dropped (here by the project's one sample rule, :func:`~allypot.models.sample.select_sample`,
  under which Iceland's undefined share is a missing outcome); no year restriction
  (2001-2014); zeros kept; each model on its own complete cases (R's default ``na.omit``),
  so N differs by column (2210, 1774, 807, 1774);
- outcome ``troops_afghan_final_ratio`` (troops in Afghanistan / active forces), untransformed;
- (1) baseline: ``pot_gain``; (2) political controls: + ``pctagreeus`` ("UN Voting", the
  share of votes agreeing with the US, *not* the ideal-point distance), ``dem`` (the
  democ >= 6 dummy, *not* polity2), ``casualties`` (annual, *not* cumulative or lagged),
  ``us_ally``, ``cinc``; (3) all controls: (2) + log GDP + log GDP per capita + distance
  to Kabul (distance *not* logged); (4) fixed effects: ``plm(model = "within",
  index = c("ccode", "year"))`` = country effects only, no year effects, and the UN voting
  control is left out;
- ``glm`` Gaussian / ``plm`` classical standard errors (no clustering, no robust SEs);
  ``texreg(ci.force = TRUE)`` prints normal 95% intervals, estimate +- 1.96 SE.

The specifications are the ``replication_terms`` of the project's one registry
(:data:`~allypot.models.sample.SPECIFICATIONS`), which also holds the design's controls.
The published panel reproduces all four columns of that table to its three printed decimals
(see :data:`PAPER_TABLE1`). Terms here use the project's column names; a panel only needs
those columns, so a rebuilt panel (with a caller-supplied plug-in ``potential``) runs the same code.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from allypot.models.sample import LOG_COLUMNS, SPECIFICATIONS, Specification, get_specification, select_sample
from scipy import stats

OUTCOME = "share"
KEY = ("ccode", "year")
# a categorical copy of ccode: patsy and formulae both expand a string column into
# country dummies, so the fixed-effects formula is the same text for OLS and Bambi
COUNTRY_FACTOR = "country_fe"
CI_LEVEL = 0.95

TERM_LABELS = {
    "Intercept": "Intercept",
    "potential": "Alliance Potential",
    "un_agreement_us": "UN Voting",
    "democracy": "Democracy",
    "casualties_annual": "Casualties",
    "us_ally": "U.S. Ally",
    "cinc": "CINC Score",
    "log_gdp": "Log GDP",
    "log_gdp_per_capita": "Log GDPPC",
    "dist_kabul_km": "Distance (km)",
}

# Table 1 as printed (paper/table.tex, commit 7be1b22): alliance-potential estimate, 95% CI, N
PAPER_TABLE1 = {
    "baseline": {"estimate": 0.002, "lower": 0.001, "upper": 0.003, "n": 2210},
    "political": {"estimate": 0.010, "lower": 0.008, "upper": 0.012, "n": 1774},
    "all_controls": {"estimate": 0.005, "lower": 0.003, "upper": 0.008, "n": 807},
    "fixed_effects": {"estimate": 0.006, "lower": 0.001, "upper": 0.011, "n": 1774},
}

RESULT_COLUMNS = ["panel", "spec", "method", "term", "estimate", "se_or_sd", "lower", "upper", "n", "r2"]


def _spec(spec: str | Specification) -> Specification:
    return spec if isinstance(spec, Specification) else get_specification(spec)


def required_columns(spec: str | Specification) -> list[str]:
    """Panel columns a specification needs (derived terms name their source column)."""
    s = _spec(spec)
    return [*KEY, OUTCOME, *(LOG_COLUMNS.get(t, t) for t in s.replication_terms)]


def check_columns(panel: pd.DataFrame, spec: str | Specification, name: str = "panel") -> None:
    """Raise ``ValueError`` listing every column ``spec`` needs that ``panel`` lacks."""
    missing = [c for c in required_columns(spec) if c not in panel.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {missing} needed by specification {_spec(spec).label!r}"
            f" (needs {required_columns(spec)}); for a rebuilt panel supply the plug-in 'potential' column"
        )


def formula(spec: str | Specification) -> str:
    """The model formula, shared by :func:`fit_ols` and :func:`fit_bambi`."""
    s = _spec(spec)
    rhs = list(s.replication_terms) + ([COUNTRY_FACTOR] if s.fixed_effects else [])
    return f"{OUTCOME} ~ {' + '.join(rhs)}"


def estimation_sample(panel: pd.DataFrame, spec: str | Specification) -> pd.DataFrame:
    """Rows Table 1 uses for ``spec``: the project's sample rule, then complete cases.

    :func:`~allypot.models.sample.select_sample` drops the US and Afghanistan, as
    05_Model.Rmd did, and then every row with a missing or non-finite regressor (R's
    ``na.omit``; Iceland's undefined share and logs of non-positive GDP fall here, where
    R's ``lm`` would have failed on ``-Inf``). The exclusion counts are in
    ``attrs["exclusions"]``.
    """
    s = _spec(spec)
    check_columns(panel, s)
    used = [OUTCOME, *s.replication_terms]
    chosen = select_sample(panel, used)
    data = chosen.rows
    data[COUNTRY_FACTOR] = data["ccode"].astype("int64").astype(str)
    data[used] = data[used].astype("float64")
    out = data[[*KEY, COUNTRY_FACTOR, *used]].copy()
    out.attrs["exclusions"] = chosen.exclusions
    return out


def _within_r2(data: pd.DataFrame, resid: np.ndarray) -> float:
    """R-squared of the demeaned outcome, the figure ``plm`` prints for a within model."""
    y = data[OUTCOME]
    demeaned = y - y.groupby(data[COUNTRY_FACTOR]).transform("mean")
    return float(1 - np.sum(resid**2) / np.sum(demeaned**2))


def fit_ols(panel: pd.DataFrame, spec: str | Specification, cluster: bool = False) -> pd.DataFrame:
    """OLS of Table 1 column ``spec`` on ``panel``.

    Parameters
    ----------
    panel : DataFrame
        Country-years with the columns of :func:`required_columns`.
    spec : str or Specification
        A key of :data:`SPECIFICATIONS`.
    cluster : bool
        False (default) gives the classical SEs the paper used; True clusters by country,
        the obvious robustness check for a panel with serially correlated errors.

    Returns
    -------
    DataFrame
        One row per reported term (country dummies omitted): term, estimate, se_or_sd,
        lower, upper (normal 95% interval, as texreg printed), n, r2 (within R-squared
        for the fixed-effects model, as plm reports).
    """
    s = _spec(spec)
    data = estimation_sample(panel, s)
    model = smf.ols(formula(s), data=data)
    if cluster:
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": data[COUNTRY_FACTOR].astype("category").cat.codes})
    else:
        fit = model.fit()
    terms = list(s.replication_terms) if s.fixed_effects else ["Intercept", *s.replication_terms]
    z = stats.norm.ppf(0.5 + CI_LEVEL / 2)
    est, se = fit.params[terms], fit.bse[terms]
    r2 = _within_r2(data, fit.resid.to_numpy()) if s.fixed_effects else fit.rsquared
    return pd.DataFrame(
        {
            "term": terms,
            "estimate": est.to_numpy(),
            "se_or_sd": se.to_numpy(),
            "lower": (est - z * se).to_numpy(),
            "upper": (est + z * se).to_numpy(),
            "n": int(fit.nobs),
            "r2": r2,
        }
    )


def fit_bambi(
    panel: pd.DataFrame,
    spec: str | Specification,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    inference_method: str = "nutpie",
) -> pd.DataFrame:
    """Bayesian version of Table 1 column ``spec`` with Bambi's default priors.

    Bambi's defaults are weakly informative normal priors scaled to the data (about 2.5
    outcome SDs per predictor SD) and a half-Student-t on sigma, so with these sample
    sizes the posterior mean should sit on the OLS estimate; a gap would flag a data or
    formula problem, not a prior effect. Country effects are ordinary dummies, as in OLS.

    Returns
    -------
    DataFrame
        term, estimate (posterior mean), se_or_sd (posterior SD), lower/upper (equal-tailed
        95% interval), n, r2 (NaN).
    """
    import bambi as bmb

    s = _spec(spec)
    data = estimation_sample(panel, s)
    model = bmb.Model(formula(s), data)
    idata = model.fit(
        draws=draws, tune=draws, chains=chains, random_seed=seed, inference_method=inference_method, progressbar=False
    )
    posterior = idata["posterior"]
    terms = list(s.replication_terms) if s.fixed_effects else ["Intercept", *s.replication_terms]
    tail = (1 - CI_LEVEL) / 2
    rows = []
    for term in terms:
        values = np.asarray(posterior[term]).ravel()
        lo, hi = np.quantile(values, [tail, 1 - tail])
        rows.append({"term": term, "estimate": values.mean(), "se_or_sd": values.std(ddof=1), "lower": lo, "upper": hi})
    out = pd.DataFrame(rows)
    out["n"] = len(data)
    out["r2"] = np.nan
    return out


def replicate_table1(
    panels: dict[str, pd.DataFrame],
    bayes: bool = False,
    draws: int = 1000,
    chains: int = 4,
    seed: int = 0,
    specs: list[str] | None = None,
) -> pd.DataFrame:
    """Table 1 for each panel (e.g. ``{"published": ..., "rebuilt": ...}``), tidy.

    Every panel must already hold the columns of :func:`required_columns` (for the rebuilt
    panel the caller supplies the plug-in ``potential``); all missing columns are listed at once.

    Returns
    -------
    DataFrame
        Columns :data:`RESULT_COLUMNS`: panel, spec, method ("ols" or "bambi"), term,
        estimate, se_or_sd, lower, upper, n, r2.
    """
    specs = list(SPECIFICATIONS) if specs is None else specs
    for name, panel in panels.items():
        for spec in specs:
            check_columns(panel, spec, name)
    parts = []
    for name, panel in panels.items():
        for spec in specs:
            fits = {"ols": fit_ols(panel, spec)}
            if bayes:
                fits["bambi"] = fit_bambi(panel, spec, draws=draws, chains=chains, seed=seed)
            for method, res in fits.items():
                parts.append(res.assign(panel=name, spec=spec, method=method))
    return pd.concat(parts, ignore_index=True)[RESULT_COLUMNS]


def compare_to_paper(table: pd.DataFrame, panel: str = "published") -> pd.DataFrame:
    """OLS alliance-potential rows of ``table`` next to the printed Table 1 (:data:`PAPER_TABLE1`)."""
    ours = table[(table["panel"] == panel) & (table["method"] == "ols") & (table["term"] == "potential")]
    paper = pd.DataFrame.from_dict(PAPER_TABLE1, orient="index").add_prefix("paper_")
    merged = ours.set_index("spec")[["estimate", "lower", "upper", "n"]].join(paper, how="inner")
    rounded = merged[["estimate", "lower", "upper"]].round(3).to_numpy()
    printed = merged[["paper_estimate", "paper_lower", "paper_upper"]].to_numpy()
    merged["matches_print"] = np.isclose(rounded, printed, atol=1e-9).all(axis=1) & (
        merged["n"] == merged["paper_n"]
    )
    return merged.reset_index(names="spec")


def format_table1(table: pd.DataFrame, digits: int = 3) -> str:
    """Markdown Table 1: rows = terms (estimate, then [95% interval]), columns = spec x panel x method."""
    cols = table[["spec", "panel", "method"]].drop_duplicates()
    keys = list(cols.itertuples(index=False, name=None))
    header = [
        f"{SPECIFICATIONS[s].label if s in SPECIFICATIONS else s} ({p}, {m})" for s, p, m in keys
    ]
    terms = [t for t in TERM_LABELS if t in set(table["term"])] + sorted(set(table["term"]) - set(TERM_LABELS))
    indexed = table.set_index(["spec", "panel", "method", "term"])
    fmt = f"{{:.{digits}f}}"
    lines = ["| | " + " | ".join(header) + " |", "|---|" + "---|" * len(keys)]
    for term in terms:
        est, ci = [], []
        for key in keys:
            if (*key, term) in indexed.index:
                r = indexed.loc[(*key, term)]
                est.append(fmt.format(r["estimate"]))
                ci.append(f"[{fmt.format(r['lower'])}; {fmt.format(r['upper'])}]")
            else:
                est.append("")
                ci.append("")
        lines.append(f"| {TERM_LABELS.get(term, term)} | " + " | ".join(est) + " |")
        lines.append("| | " + " | ".join(ci) + " |")
    first = table.groupby(["spec", "panel", "method"], sort=False).first()
    lines.append("| N | " + " | ".join(str(int(first.loc[k, "n"])) for k in keys) + " |")
    lines.append(
        "| R² | "
        + " | ".join("" if pd.isna(first.loc[k, "r2"]) else fmt.format(first.loc[k, "r2"]) for k in keys)
        + " |"
    )
    return "\n".join(lines)
