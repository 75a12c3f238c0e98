"""Slow, obviously-correct oracles that every fast path is tested against."""
