"""Sensitivity analyses: how the alliance-potential effect moves with the analyst's choices (the grid)
and with each repair of the published analysis (the audit)."""
