"""snnhw as a real package: the wheel carries the recipes and target files, finds them from any working
directory, and reports the version of its metadata."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_lists_every_package():
    """setuptools' package-dir mapping needs an explicit package list: it must name every package."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "snnhw").rglob("__init__.py")}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == {"snnhw.models", "snnhw.hardware_configs"}


def test_version_is_the_metadata_version():
    from importlib.metadata import version

    import snnhw

    assert snnhw.__version__ == version("snnhw") == PYPROJECT["project"]["version"]
    out = subprocess.run([sys.executable, "-m", "snnhw.cli", "--version"], capture_output=True, text=True)
    assert out.stdout.strip() == f"snnhw {PYPROJECT['project']['version']}"


def test_lava_is_an_extra_for_python_310_only():
    deps = PYPROJECT["project"]["dependencies"]
    assert not any(d.startswith(("lava-nc", "lava-dl")) for d in deps)
    lava = PYPROJECT["project"]["optional-dependencies"]["lava"]
    assert sorted(d.split(";")[0].strip() for d in lava) == ["lava-dl==0.6.0", "lava-nc==0.10.0"]
    assert all("python_version < '3.11'" in d for d in lava)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built by the project's own PEP 517 backend (setuptools, a dependency), in a subprocess."""
    out = tmp_path_factory.mktemp("wheel")
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    (whl,) = out.glob("snnhw-*.whl")
    return whl


def test_wheel_ships_recipes_and_targets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for sub, folder in (("models", ROOT / "models"), ("hardware_configs", ROOT / "hardware_configs")):
        shipped = {pathlib.PurePath(n).name for n in names if n.startswith(f"snnhw/{sub}/")}
        assert shipped == {p.name for p in folder.glob("*.toml")}


@pytest.mark.slow
def test_installed_wheel_trains_from_another_directory(wheel, tmp_path):
    """The wheel installed on its own (dependencies from this environment) runs `snnhw train --target
    loihi2` from a directory far from the source tree, finding the recipe inside the package."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking it
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import snnhw, sys; from snnhw.resources import data_dir; "
            "print(snnhw.__file__); print(data_dir('models'))")
    where = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    assert all(w.startswith(str(site)) for w in where), where
    r = subprocess.run([sys.executable, "-m", "snnhw.cli", "train", "--target", "loihi2", "--epochs", "1",
                        "--verify-samples", "20", "--out", str(work / "run")], cwd=work, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((work / "run" / "report.json").read_text())
    assert report["recipe"]["name"] == "digits_mlp"
