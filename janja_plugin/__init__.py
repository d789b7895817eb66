"""Janja geochemical prospectivity: compute core, Processing glue and offline training.

Importing this package imports nothing from QGIS, so the core can be tested and used without it.
"""
