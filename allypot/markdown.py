"""Markdown pipe tables for the generated reports (pandas' ``to_markdown`` needs tabulate,
which is not a dependency)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def markdown_table(df: pd.DataFrame, index: bool = False, floatfmt: str = "{:.4g}") -> str:
    """A pipe table; missing values are empty cells, whole floats print as integers."""
    frame = df.reset_index() if index else df

    def cell(v) -> str:
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return str(int(v)) if float(v).is_integer() else floatfmt.format(v)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |",
             "|" + "|".join("---" for _ in frame.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
