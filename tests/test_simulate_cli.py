"""``snnhw simulate``: torch backend == lava backend on netx files the test writes; one-line errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

from netx_files import HAVE_LAVA_DL, cuba, write_raw
from snnhw.cli import main


@pytest.fixture
def net(tmp_path):
    rng = np.random.default_rng(5)
    path = write_raw(tmp_path / "m.net", [
        dict(type="dense", weight=rng.integers(-60, 61, (14, 10)) * 2, bias=rng.integers(-5, 10, 14),
             neuron=cuba(0, 4096, 70)),
        dict(type="dense", weight=rng.integers(-50, 81, (9, 14)) * 2, bias=rng.integers(-3, 4, 9),
             neuron=cuba(4096, 0, 120)),
        dict(type="dense", weight=rng.integers(-20, 101, (4, 9)) * 2, neuron=cuba(1000, 300, 40))])
    x = (rng.random((5, 32, 10)) < 0.35).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    return str(path), str(tmp_path / "x.npy"), x


def test_torch_backend_writes_sink_layout(net, tmp_path, capsys):
    path, xpath, x = net
    out = tmp_path / "y.npy"
    assert main(["simulate", path, "--inputs", xpath, "--out", str(out), "--batch-size", "2"]) == 0
    y = np.load(out)
    assert y.shape == (5, 32, 4) and y.dtype == np.uint8
    assert 0 < y.sum() < y.size
    # three Dense stages: input column c can reach the output no earlier than column c + 3
    assert not y[:, :3].any()
    line = capsys.readouterr().out.strip()
    assert line == f"torch: 5 samples x 32 steps x 4 outputs, {int(y.sum())} output spikes -> {out}"
    # batching does not change the result
    out2 = tmp_path / "y2.npy"
    assert main(["simulate", path, "--inputs", xpath, "--out", str(out2)]) == 0
    np.testing.assert_array_equal(np.load(out2), y)


@pytest.mark.skipif(not HAVE_LAVA_DL, reason="lava-dl is not installed")
def test_torch_equals_lava_backend_and_quiet_stdout(net, tmp_path):
    """Runs the CLI as a subprocess: stdout is exactly the one summary line (no lava-dl noise)."""
    path, xpath, _ = net
    ys = {}
    for backend in ("torch", "lava"):
        out = tmp_path / f"y_{backend}.npy"
        r = subprocess.run([sys.executable, "-m", "snnhw.cli", "simulate", path, "--inputs", xpath,
                            "--backend", backend, "--out", str(out)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("\n") == 1 and r.stdout.startswith(f"{backend}: 5 samples x 32 steps x 4"), r.stdout
        ys[backend] = np.load(out)
    assert 0 < ys["lava"].sum() < ys["lava"].size
    np.testing.assert_array_equal(ys["torch"], ys["lava"])


def _run_error(args, capsys):
    rc = main(["simulate"] + args)
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("snnhw: error: ") and err.count("\n") == 1, err
    return err


def test_bad_inputs_one_line_errors(net, tmp_path, capsys):
    path, xpath, x = net
    def says(msg):
        return f"snnhw: error: {msg}\n"

    nope = str(tmp_path / "nope.net")
    assert _run_error([nope, "--inputs", xpath], capsys) == says(f"{nope}: no such file")
    nope = str(tmp_path / "nope.npy")
    assert _run_error([path, "--inputs", nope], capsys) == says(f"{nope}: no such file")
    assert _run_error([xpath, "--inputs", xpath], capsys).startswith(says(f"{xpath}: not a readable HDF5 file (")[:-1])
    assert _run_error([path, "--inputs", path], capsys) == says(f"{path}: not a .npy file (save the inputs with "
                                                                "numpy.save)")
    bad = str(tmp_path / "2d.npy")
    np.save(bad, x[0])
    assert _run_error([path, "--inputs", bad], capsys) == says(
        f"{bad}: inputs must be shaped [samples, steps, inputs], got shape (32, 10)")
    np.save(tmp_path / "wide.npy", np.zeros((2, 5, 11), np.uint8))
    assert _run_error([path, "--inputs", str(tmp_path / "wide.npy")], capsys) == says(
        f"inputs have 11 channels but {path} expects 10")
    bad = str(tmp_path / "graded.npy")
    np.save(bad, x * 2)
    assert _run_error([path, "--inputs", bad], capsys) == says(f"{bad}: inputs must hold 0/1 spikes")
    bad = str(tmp_path / "empty.npy")
    np.save(bad, np.zeros((0, 5, 10), np.uint8))
    assert _run_error([path, "--inputs", bad], capsys) == says(
        f"{bad}: inputs must have at least one sample and one step, got shape (0, 5, 10)")
    data = open(xpath, "rb").read()
    (tmp_path / "trunc.npy").write_bytes(data[:100])
    assert "not a readable .npy array" in _run_error([path, "--inputs", str(tmp_path / "trunc.npy")], capsys)
    out = tmp_path / "no" / "y.npy"
    assert _run_error([path, "--inputs", xpath, "--out", str(out)], capsys) == says(
        f"{out}: output folder {out.parent} does not exist")
    assert _run_error([path, "--inputs", xpath, "--batch-size", "0"], capsys) == says(
        "--batch-size must be at least 1, got 0")
    bad = write_raw(tmp_path / "pool.net", [dict(type="pool", weight=np.ones((1, 10)), neuron=cuba())])
    assert "pool layers are not implemented by lava-dl netx 0.6.0" in _run_error([str(bad), "--inputs", xpath],
                                                                                 capsys)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
