"""Conventional anomaly separation on samples or rasters: thresholds, fractal C-A/C-N, robust Mahalanobis."""
