"""snnhw without Lava: training verifies by the artifact round trip, every Lava-only command stops with
one line naming ``snnhw[lava]`` and Python 3.10 (exit 2), ``import-nir --target loihi2`` runs the chip side
on snnhw's core and says so.

Runs in both lanes: on Python 3.10 with Lava installed, Lava's absence is simulated by patching
``snnhw.backends.lava_runtime.lava_available`` (every caller looks it up there: ``require_lava``,
``loihi2_hardware_available``, the train stages, the commands, ``nir_import.chip``) and its re-export in
``snnhw.backends.lava``; on Python 3.11+ Lava really is absent and the patch changes nothing.
"""
import contextlib
import io
import json

import numpy as np
import pytest

from snnhw.backends import lava as lava_backend
from snnhw.backends import lava_runtime
from snnhw.cli import main
from snnhw.train.verify import RoundTripMismatch, artifact_roundtrip
from tiny_recipe import TINY

SAMPLES = 24


def _no_lava(mp):
    mp.setattr(lava_runtime, "lava_available", lambda: False)
    mp.setattr(lava_backend, "lava_available", lambda: False)


@pytest.fixture
def no_lava(monkeypatch):
    _no_lava(monkeypatch)


@pytest.fixture(scope="module")
def run_without_lava(tmp_path_factory):
    """``snnhw train`` of a tiny recipe without Lava: (run directory, stdout, exit status)."""
    tmp = tmp_path_factory.mktemp("nolava")
    recipe = tmp / "tiny.toml"
    recipe.write_text(TINY.replace("EPOCHS", "1"))
    out = tmp / "run"
    buf = io.StringIO()  # capsys is function-scoped
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(buf):
        _no_lava(mp)
        rc = main(["train", str(recipe), "--out", str(out), "--no-progress"])
    return out, buf.getvalue(), rc


def _one_line_error(capsys, args):
    assert main(args) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnhw: error: "), cap.err
    assert "snnhw[lava]" in lines[0] and "3.10" in lines[0] and "Traceback" not in cap.err
    return lines[0]


def test_train_verifies_by_artifact_roundtrip(run_without_lava):
    out, text, rc = run_without_lava
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["verification"] == "artifact-roundtrip"
    assert [a["artifact"] for a in rep["artifact_roundtrip"]] == ["model.net", "model.nir"]
    assert [a["reader"] for a in rep["artifact_roundtrip"]] == ["snnhw.io.netx.read_netx",
                                                                 "snnhw.io.nir.read_nir_spec"]
    for a in rep["artifact_roundtrip"]:
        assert a["exact"] and a["identical_samples"] == a["samples"] == SAMPLES and a["output_spikes"] == 1.0
    assert rep["agreement"] is None and rep["accuracy"]["lava"] is None
    assert "snnhw[lava]" in rep["verification_note"] and "Python 3.10" in rep["verification_note"]
    assert not (out / "verify" / "lava_output_spikes.npy").exists()
    assert "verify/lava_output_spikes.npy" not in rep["files"]
    assert ("verification: artifact-roundtrip — model.net and model.nir re-read and re-simulated: "
            f"{SAMPLES}/{SAMPLES} samples identical (exact)") in text.splitlines()
    assert any(l.startswith("note: ") and "snnhw[lava]" in l for l in text.splitlines())
    md = (out / "report.md").read_text()
    assert "Verification: **artifact-roundtrip**" in md and "| model.nir | `snnhw.io.nir.read_nir_spec` |" in md


def test_roundtrip_mismatch_is_a_loud_internal_error(run_without_lava, tmp_path):
    """A written file that does not reproduce the trained spikes is a bug: RoundTripMismatch (a
    RuntimeError, not a user error), one line naming each file and how many samples differ."""
    out, _, _ = run_without_lava
    inputs = np.load(out / "verify" / "inputs.npy")
    expected = np.load(out / "verify" / "torch_output_spikes.npy").copy()
    assert len(artifact_roundtrip(str(out), ["model.net", "model.nir"], inputs, expected)) == 2
    expected[[2, 5], 0, 0] ^= 1
    with pytest.raises(RoundTripMismatch) as e:
        artifact_roundtrip(str(out), ["model.net", "model.nir"], inputs, expected)
    msg = str(e.value)
    assert isinstance(e.value, RuntimeError) and "\n" not in msg and msg.startswith("internal error: ")
    assert "model.net (re-read by snnhw.io.netx.read_netx) on 2/24 samples" in msg
    assert "model.nir (re-read by snnhw.io.nir.read_nir_spec) on 2/24 samples" in msg
    (tmp_path / "model.net").write_bytes(b"not hdf5")
    with pytest.raises(RoundTripMismatch, match="model.net written by this run cannot be re-read"):
        artifact_roundtrip(str(tmp_path), ["model.net"], inputs, expected)


@pytest.mark.parametrize("backend", ["lava", "netx"])
def test_train_explicit_lava_backend_fails_before_training(no_lava, backend, tmp_path, capsys):
    (tmp_path / "tiny.toml").write_text(TINY.replace("EPOCHS", "1"))
    line = _one_line_error(capsys, ["train", str(tmp_path / "tiny.toml"), "--backend", backend,
                                    "--out", str(tmp_path / "r"), "--no-progress"])
    assert "lava-nc is not installed" in line
    assert not (tmp_path / "r").exists() and not (tmp_path / ".r.partial").exists()


def test_simulate_lava_backend_one_line(no_lava, run_without_lava, capsys):
    out, _, _ = run_without_lava
    line = _one_line_error(capsys, ["simulate", str(out / "model.net"), "--inputs", str(out / "verify/inputs.npy"),
                                    "--backend", "lava"])
    assert "--backend torch" in line
    assert main(["simulate", str(out / "model.net"), "--inputs", str(out / "verify/inputs.npy")]) == 0


@pytest.mark.parametrize("backend", ["lava", "netx"])
def test_verify_command_one_line(no_lava, run_without_lava, backend, capsys):
    out, _, _ = run_without_lava
    line = _one_line_error(capsys, ["verify", str(out), "--backend", backend])
    assert f"--backend {backend}" in line


def test_verify_command_says_lava_before_looking_at_the_directory(no_lava, tmp_path, capsys):
    _one_line_error(capsys, ["verify", str(tmp_path / "absent")])


def test_demo_one_line(no_lava, capsys):
    line = _one_line_error(capsys, ["demo", "--sizes", "6,12,4", "--steps", "20", "--samples", "2"])
    assert "cannot compare" in line


def test_import_nir_loihi2_runs_on_the_core_and_says_so(no_lava, run_without_lava, tmp_path, capsys):
    out, _, _ = run_without_lava
    dest = tmp_path / "imp"
    assert main(["import-nir", str(out / "model.nir"), "--target", "loihi2", "--samples", "4", "--steps", "10",
                 "--out", str(dest)]) == 0
    cap = capsys.readouterr()
    rep = json.loads((dest / "report.json").read_text())
    assert rep["backend"].startswith("snnhw-exact-core (lava-nc not installed")
    assert "bit-exact with Lava fixed_pt" in rep["backend"] and "snnhw[lava]" in rep["backend"]
    assert rep["spec_from"] == "snnhw metadata (bit-exact)"
    assert rep["backend"] in cap.out and "on Lava" not in cap.err
