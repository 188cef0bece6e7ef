"""Table 1 replication: recovery on simulated data, Bambi vs OLS, errors, published panel."""

import time

import numpy as np
import pandas as pd
import pytest
from allypot.data.pipeline.published import PUBLISHED_SCHEMA
from allypot.data.schema import read_table
from allypot.inference.replicate import (
    PAPER_TABLE1,
    compare_to_paper,
    estimation_sample,
    fit_bambi,
    fit_ols,
    format_table1,
    replicate_table1,
)

from allypot.models.sample import NON_CONTRIBUTORS

from allypot.paths import TABLES_DIR

TRUE_BETA = 0.01


def simulate(seed: int) -> pd.DataFrame:
    """A panel from the political-controls model with known coefficients and country effects.

    The other regressors are independent of ``potential``, so every specification is
    unbiased for ``TRUE_BETA`` (the country effects only add error variance to the
    pooled ones).
    """
    rng = np.random.default_rng(seed)
    n_c, years = 60, range(2001, 2015)
    df = pd.DataFrame([(100 + c, y) for c in range(n_c) for y in years], columns=["ccode", "year"])
    n = len(df)
    df["potential"] = rng.uniform(-0.3, 0.8, n)
    df["un_agreement_us"] = rng.uniform(0, 1, n)
    df["democracy"] = rng.integers(0, 2, n).astype(float)
    df["casualties_annual"] = rng.poisson(2, n).astype(float)
    df["us_ally"] = rng.integers(0, 2, n).astype(float)
    df["cinc"] = rng.uniform(0, 0.02, n)
    u = np.repeat(rng.normal(0, 0.003, n_c), len(years))
    df["share"] = (
        0.001 + TRUE_BETA * df["potential"] + 0.004 * df["un_agreement_us"] + 0.005 * df["us_ally"]
        + 0.0003 * df["casualties_annual"] + u + rng.normal(0, 0.004, n)
    )
    return df


@pytest.fixture(scope="module")
def simulated():
    return simulate(7)


@pytest.fixture(scope="module")
def published():
    return read_table(TABLES_DIR / "published_panel.csv", PUBLISHED_SCHEMA)


# fixed_effects: 40 OLS fits with a dummy per country, over a minute on a loaded machine
@pytest.mark.parametrize("spec", ["baseline", "political", pytest.param("fixed_effects", marks=pytest.mark.slow)])
def test_ols_recovers_coefficient(spec):
    """Over 40 simulated panels the 95% interval covers the truth about 95% of the time."""
    covered = []
    for seed in range(40):
        data = simulate(seed)
        res = fit_ols(data, spec).set_index("term")
        lo, hi = res.loc["potential", ["lower", "upper"]]
        covered.append(lo < TRUE_BETA < hi)
        assert res["n"].iloc[0] == len(data)
    # P(Binomial(40, 0.95) <= 33) is about 0.014
    assert sum(covered) >= 34


@pytest.mark.slow
def test_bambi_agrees_with_ols(simulated):
    start = time.perf_counter()
    bayes = fit_bambi(simulated, "political", draws=300, chains=2, seed=1).set_index("term")
    elapsed = time.perf_counter() - start
    ols = fit_ols(simulated, "political").set_index("term")
    for term in ("potential", "us_ally"):
        # flat-ish default priors: posterior mean within a fifth of an OLS SE
        assert abs(bayes.loc[term, "estimate"] - ols.loc[term, "estimate"]) < 0.2 * ols.loc[term, "se_or_sd"]
        assert bayes.loc[term, "se_or_sd"] == pytest.approx(ols.loc[term, "se_or_sd"], rel=0.25)
    assert elapsed < 30


def test_missing_columns_error_lists_them(simulated):
    rebuilt = simulated.drop(columns=["potential", "cinc"])
    with pytest.raises(ValueError, match=r"rebuilt lacks column\(s\) \['potential', 'cinc'\]"):
        replicate_table1({"rebuilt": rebuilt}, specs=["political"])
    with pytest.raises(ValueError, match=r"\['gdp', 'gdp_per_capita', 'dist_kabul_km'\]"):
        replicate_table1({"rebuilt": simulated}, specs=["all_controls"])


def test_published_baseline_complete_cases(published):
    res = fit_ols(published, "baseline")
    kept = published[~published["ccode"].isin(list(NON_CONTRIBUTORS))]
    complete = kept["share"].notna() & kept["potential"].notna()
    assert res["n"].iloc[0] == complete.sum() == 2210
    assert len(estimation_sample(published, "baseline")) == complete.sum()


def test_published_matches_paper_table1(published):
    """All four OLS potential coefficients, CIs and Ns equal the printed Table 1."""
    table = replicate_table1({"published": published})
    cmp = compare_to_paper(table)
    assert set(cmp["spec"]) == set(PAPER_TABLE1)
    assert cmp["matches_print"].all(), cmp
    md = format_table1(table)
    assert "Alliance Potential" in md and "| N | 2210 | 1774 | 807 | 1774 |" in md
