"""Domain-free autoencoder components shared by every latente domain."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("latente")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0+unknown"
