"""Which state-years enter a regression: the specification registry and the one sample rule.

Every consumer of regression rows (the joint, cut and plug-in modes through
:func:`~allypot.models.inputs.inputs_from_tables`, the prior check, and the Table 1
replication on either panel) selects them with :func:`select_sample`, so the modes and the
replication cannot disagree about who is in the sample.

The rule (MODEL.md Part A, "The sample"):

1. state-years outside the analysed years are dropped;
2. the coalition leader (the US, 2) and the host (Afghanistan, 700) never enter: neither is
   a contributor to the war (Afghanistan's "share" is 0 by construction);
3. then complete cases on the outcome and the specification's columns (a missing or
   non-finite value drops the row; Iceland, with no armed forces, drops here for its
   undefined share, as in the paper);
4. last, the states a run config leaves out on purpose (``data.exclude_countries``, e.g. a
   leave-one-state-out refit of ``allypot influence``), one reason per state, so each count
   is exactly the rows that state would have had in the sample.

Every dropped state-year is counted once, under the first reason that applies, so the
counts and the kept rows add up to the panel.

A :class:`Specification` holds both control sets of one column of Table 1 explicitly:
``design_controls`` are MODEL.md Part D's controls, used by the Bayesian model, and
``replication_terms`` are the regressors the paper's code used (05_Model.Rmd), used by the
Table 1 replication. They differ on purpose (see :mod:`allypot.inference.replicate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

US_CCODE = 2
HOST_CCODE = 700
NON_CONTRIBUTORS = {
    US_CCODE: "the United States (coalition leader, not a contributor)",
    HOST_CCODE: "Afghanistan (the host, not a contributor)",
}
# derived columns: name -> panel column it is the natural log of (log of <= 0 is missing)
LOG_COLUMNS = {"log_gdp": "gdp", "log_gdp_per_capita": "gdp_per_capita", "log_dist_kabul": "dist_kabul_km"}


@dataclass(frozen=True)
class Specification:
    """One column of Table 1.

    Attributes
    ----------
    label : the heading printed in Table 1.
    design_controls : MODEL.md Part D controls (panel or :data:`LOG_COLUMNS` names) of the
        Bayesian model; potential enters separately.
    replication_terms : the paper's regressors (05_Model.Rmd) in the replication's column
        names, potential included.
    fixed_effects : the specification has country effects (the joint model requires them,
        the replication adds country dummies).
    """

    label: str
    design_controls: tuple[str, ...]
    replication_terms: tuple[str, ...]
    fixed_effects: bool = False


_DESIGN_POLITICAL = ("ideal_distance", "polity2", "casualties_cum", "us_ally", "cinc")
# 05_Model.Rmd: UN voting is the agreement share, democracy the democ >= 6 dummy, casualties annual
_PAPER_POLITICAL = ("potential", "un_agreement_us", "democracy", "casualties_annual", "us_ally", "cinc")
SPECIFICATIONS: dict[str, Specification] = {
    "baseline": Specification("Baseline", (), ("potential",)),
    "political": Specification("Political Controls", _DESIGN_POLITICAL, _PAPER_POLITICAL),
    "all_controls": Specification(
        "All Controls",
        _DESIGN_POLITICAL + ("log_gdp", "log_gdp_per_capita", "log_dist_kabul"),
        # the paper logged GDP and GDP per capita but not the distance
        _PAPER_POLITICAL + ("log_gdp", "log_gdp_per_capita", "dist_kabul_km"),
    ),
    # the paper's within model leaves UN voting out; the design keeps the political set
    "fixed_effects": Specification(
        "Fixed Effects",
        _DESIGN_POLITICAL,
        ("potential", "democracy", "casualties_annual", "us_ally", "cinc"),
        fixed_effects=True,
    ),
}


def get_specification(name: str) -> Specification:
    """The registered specification ``name`` (a clear error names the known ones)."""
    try:
        return SPECIFICATIONS[name]
    except KeyError:
        raise KeyError(f"unknown specification {name!r}; known: {list(SPECIFICATIONS)}") from None


def add_log_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every :data:`LOG_COLUMNS` column whose source it has."""
    out = frame.copy()
    for name, source in LOG_COLUMNS.items():
        if source in out.columns:
            values = out[source].astype("float64")
            out[name] = np.log(values.where(values > 0))
    return out


@dataclass
class Sample:
    """The regression rows and every excluded state-year with its reason."""

    rows: pd.DataFrame
    exclusions: list[tuple[str, int]] = field(default_factory=list)
    n_input: int = 0

    @property
    def n_excluded(self) -> int:
        return sum(n for _, n in self.exclusions)


def select_sample(panel: pd.DataFrame, columns: list[str] | tuple[str, ...],
                  years: tuple[int, int] | None = None, exclude_countries: tuple[int, ...] = ()) -> Sample:
    """Apply the sample rule (module docstring) to a state-year panel.

    Parameters
    ----------
    panel : DataFrame with ``ccode``, ``year`` and ``columns`` (derived log columns are
        added by :func:`add_log_columns` first).
    columns : the outcome and the regressors that must be present and finite.
    years : first and last year kept (inclusive), or None for all.
    exclude_countries : COW codes left out by the run config (step 4); each must be a state
        of the panel.

    Returns
    -------
    Sample
        ``rows`` sorted by (ccode, year) with a fresh index; ``exclusions`` lists
        (reason, state-years) for every reason that dropped at least one row, and every
        state left out by ``exclude_countries`` (with 0 when it had no rows in the sample).
    """
    data = add_log_columns(panel)
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise ValueError(f"panel lacks column(s) {missing} needed by the sample rule")
    known = set(data["ccode"].astype("int64"))
    unknown = [c for c in exclude_countries if c not in known]
    if unknown:
        raise ValueError(f"data.exclude_countries: {unknown} not a state (ccode) of the panel")
    exclusions: list[tuple[str, int]] = []

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal data
        exclusions.append((reason, int(mask.sum())))
        data = data[~mask]

    if years is not None:
        drop(~data["year"].between(*years), f"outside years {years[0]}-{years[1]}")
    for ccode, reason in NON_CONTRIBUTORS.items():
        drop(data["ccode"].astype("int64") == ccode, reason)
    for column in columns:
        drop(~np.isfinite(data[column].astype("float64")), f"{column} missing")
    kept = [e for e in exclusions if e[1] > 0]
    for ccode in exclude_countries:
        mask = data["ccode"].astype("int64") == ccode
        data = data[~mask]
        kept.append((f"{exclusion_label(panel, ccode)} left out by data.exclude_countries", int(mask.sum())))
    rows = data.sort_values(["ccode", "year"]).reset_index(drop=True)
    return Sample(rows, kept, len(panel))


def exclusion_label(panel: pd.DataFrame, ccode: int) -> str:
    """``ccode 255 (GMY)``: the code and, where the panel has it, the state's abbreviation."""
    if "stateabb" not in panel.columns:
        return f"ccode {ccode}"
    names = panel.loc[panel["ccode"].astype("int64") == ccode, "stateabb"].dropna()
    return f"ccode {ccode} ({names.iloc[0]})" if len(names) else f"ccode {ccode}"
