"""User, item and context features."""
