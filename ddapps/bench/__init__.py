"""Benchmarks: commands that compare methods side by side and write tables, JSON and plots."""
