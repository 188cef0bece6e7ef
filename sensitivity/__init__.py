"""Sensitivity analyses: how the alliance-potential effect moves with the analyst's choices."""
