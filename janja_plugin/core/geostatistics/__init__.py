"""Samples to kriged element rasters: censored-value parsing, variograms, kriging."""
