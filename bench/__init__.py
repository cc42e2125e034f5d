"""Benchmarks: `python -m bench.<domain>`."""
