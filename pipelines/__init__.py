"""Thin DVC stage entry points: `python -m pipelines.<domain> <stage>`."""
