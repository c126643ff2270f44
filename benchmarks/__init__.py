"""Benchmarks: plain scripts that print comparison tables (not timed tests)."""
