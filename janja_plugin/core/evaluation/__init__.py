"""Scoring any map against known deposits: ROC/AUC, success rate, prediction-area, sample protocol."""
