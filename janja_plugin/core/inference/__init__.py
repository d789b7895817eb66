"""Learned maps: model cards, the window engine, prospectivity and anomaly-score inference."""
