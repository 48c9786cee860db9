"""Outcome probabilities (prior + learned correction) and the value model that combines them."""
