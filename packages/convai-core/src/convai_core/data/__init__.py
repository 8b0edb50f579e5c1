"""Datasets shipped with the core (small, synthetic, generated on the fly)."""
