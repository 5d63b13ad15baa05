"""Where the shipped recipes (``models/``) and target descriptions (``hardware_configs/``) are.

In the repository they are top-level folders. A built wheel carries them inside the package as
``snnhw/models`` and ``snnhw/hardware_configs`` (pyproject.toml maps the folders there with setuptools'
``package-dir``), so an installed snnhw finds them from any working directory. Both are looked up
through :mod:`importlib.resources` on the ``snnhw`` package: first inside it (an installed wheel), then
beside it (a source checkout or an editable install).
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from snnhw.errors import MissingFileError

DATA_DIRS = ("models", "hardware_configs")


def data_dir(name: str) -> Path:
    """The folder of shipped ``name`` files (``"models"`` or ``"hardware_configs"``)."""
    if name not in DATA_DIRS:
        raise ValueError(f"unknown data folder {name!r}; snnhw ships {', '.join(DATA_DIRS)}")
    pkg = Path(str(resources.files("snnhw")))
    for d in (pkg / name, pkg.parent / name):
        if d.is_dir():
            return d
    raise MissingFileError(f"snnhw's {name}/ folder is missing from {pkg} (a broken install; reinstall snnhw)")
