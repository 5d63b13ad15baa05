"""snnhw: Loihi 2 fixed-point SNN training, export and verification."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("snnhw")  # the installed distribution's metadata (pyproject.toml)
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"
