"""Ranker training data (logged at exposure time), incremental training, evaluation and versioning."""
