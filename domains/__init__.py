"""One package per domain: loaders, preprocessing, metrics, baselines and CLI commands."""
