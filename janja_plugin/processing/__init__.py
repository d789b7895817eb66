"""Thin QGIS Processing glue: one algorithm per file; parameters in, core call, outputs and styles out."""
