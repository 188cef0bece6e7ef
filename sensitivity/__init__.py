"""Sensitivity of the headline effect to the published choices: the audit and the grid."""
