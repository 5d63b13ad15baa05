"""Malformed or unsupported NIR input -> one line on stderr and exit code != 0, never a traceback.

Hand-written cases for each kind the issue names, plus a hypothesis property test that generates
corrupted files (random bytes, truncation, byte flips, NaN/inf parameters, shape changes, unknown
node types, cycles without Input) and runs them through the CLI.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnhw.cli import main
from snnhw.io.nir import export_nir

from nir_specs import mlp

FIX = Path(__file__).parent / "fixtures" / "nir"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cli(argv, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.err


def _assert_one_line_error(rc, err):
    assert rc != 0
    lines = [l for l in err.strip().splitlines() if not l.startswith(("graph:", "running"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("snnhw: error: ") and "Traceback" not in err


def _base_graph():
    w = np.array([[1.0, -0.5, 0.25], [0.5, 0.5, -1.0]], dtype=np.float32)
    n = 2
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([3])}), "fc": nir.Linear(weight=w),
               "lif": nir.CubaLIF(tau_syn=np.full(n, 4e-4), tau_mem=np.full(n, 1e-3), r=np.full(n, 10.0),
                                  v_leak=np.zeros(n), v_threshold=np.ones(n), w_in=np.full(n, 4.0)),
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")])


def _import(path):
    return ["import-nir", str(path), "--target", "float", "--samples", "2", "--steps", "5",
            "--out", str(Path(path).parent / "run")]


def _import_graph_fails(g, path, capsys) -> str:
    """Write graph ``g`` to ``path``, run ``import-nir`` on it, assert a one-line error; return stderr."""
    nir.write(path, g)
    rc, err = _cli(_import(path), capsys)
    _assert_one_line_error(rc, err)
    return err


def test_non_nir_file(tmp_path, capsys):
    p = tmp_path / "x.nir"
    p.write_text("this is not a NIR file\n")
    rc, err = _cli(_import(p), capsys)
    _assert_one_line_error(rc, err)
    assert "not a NIR file" in err


def test_missing_file(tmp_path, capsys):
    _assert_one_line_error(*_cli(_import(tmp_path / "nope.nir"), capsys))


def test_truncated_hdf5(tmp_path, capsys):
    p = tmp_path / "t.nir"
    nir.write(p, _base_graph())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(*_cli(_import(p), capsys))


def test_unknown_node_type(tmp_path, capsys):
    p = tmp_path / "u.nir"
    nir.write(p, _base_graph())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Bogus")
    _assert_one_line_error(*_cli(_import(p), capsys))


def test_unsupported_known_node_type(tmp_path, capsys):
    g = _base_graph()
    g.nodes["delay"] = nir.Delay(delay=np.ones(2))
    g.edges = [("input", "fc"), ("fc", "lif"), ("lif", "delay"), ("delay", "output")]
    err = _import_graph_fails(g, tmp_path / "d.nir", capsys)
    assert "unsupported node type Delay" in err


def test_mismatched_shapes(tmp_path, capsys):
    g = _base_graph()
    g.nodes["fc"] = nir.Linear(weight=np.ones((2, 5), dtype=np.float32))  # Input gives 3
    _import_graph_fails(g, tmp_path / "s.nir", capsys)


def test_neuron_size_mismatch(tmp_path, capsys):
    g = _base_graph()
    g.nodes["fc"] = nir.Linear(weight=np.ones((4, 3), dtype=np.float32))
    _import_graph_fails(g, tmp_path / "n.nir", capsys)


def test_nan_parameters(tmp_path, capsys):
    g = _base_graph()
    g.nodes["lif"].tau_mem = np.array([1e-3, np.nan])
    err = _import_graph_fails(g, tmp_path / "nan.nir", capsys)
    assert "NaN" in err


def test_cycle_without_input(tmp_path, capsys):
    n = 2
    g = nir.NIRGraph(nodes={"lif": _base_graph().nodes["lif"], "w": nir.Linear(weight=np.eye(n, dtype=np.float32)),
                            "output": nir.Output(output_type={"output": np.array([n])})},
                     edges=[("lif", "w"), ("w", "lif"), ("lif", "output")], type_check=False)
    _import_graph_fails(g, tmp_path / "c.nir", capsys)


def test_branching_graph_is_refused(tmp_path, capsys):
    g = _base_graph()
    g.nodes["fc2"] = nir.Linear(weight=np.ones((2, 3), dtype=np.float32))
    g.edges = g.edges + [("input", "fc2"), ("fc2", "lif")]
    _import_graph_fails(g, tmp_path / "b.nir", capsys)


def test_export_bad_source(tmp_path, capsys):
    p = tmp_path / "junk.json"
    p.write_text("{not json")
    _assert_one_line_error(*_cli(["export", str(p), "--format", "nir", "--out", str(tmp_path / "o.nir")], capsys))
    _assert_one_line_error(*_cli(["export", str(tmp_path), "--format", "nir"], capsys))


def test_real_cli_process_prints_one_line(tmp_path):
    p = tmp_path / "x.nir"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    exe = Path(sys.executable).parent / "snnhw"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from snnhw.cli import main; "
                                                                 "sys.exit(main())"]
    r = subprocess.run(cmd + _import(p), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------------
# Property test: generated malformed files
# ------------------------------------------------------------------------------------------------
MUTATIONS = ("random_bytes", "truncate", "flip_bytes", "nan_param", "inf_weight", "shape", "unknown_type",
             "drop_input", "dangling_edge", "neg_tau")
MUST_FAIL = {"random_bytes", "truncate", "nan_param", "inf_weight", "shape", "unknown_type", "drop_input",
             "dangling_edge", "neg_tau"}


@pytest.fixture(scope="module")
def valid_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("valid")
    p = d / "mlp.nir"
    export_nir(mlp(), p)
    return p


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.sampled_from(MUTATIONS), seed=st.integers(0, 2 ** 31 - 1), frac=st.floats(0.01, 0.99))
def test_generated_malformed_files(tmp_path_factory, valid_file, capsys, mutation, seed, frac):
    rng = np.random.default_rng(seed)
    d = tmp_path_factory.mktemp("m")
    p = d / "bad.nir"
    shutil.copy(valid_file, p)
    if mutation == "random_bytes":
        p.write_bytes(rng.integers(0, 256, int(10 + frac * 4000), dtype=np.uint8).tobytes())
    elif mutation == "truncate":
        data = p.read_bytes()
        p.write_bytes(data[: max(1, int(len(data) * frac * 0.95))])
    elif mutation == "flip_bytes":
        data = bytearray(p.read_bytes())
        for i in rng.integers(0, len(data), 1 + int(frac * 20)):
            data[i] = int(rng.integers(0, 256))
        p.write_bytes(bytes(data))
    else:
        g = nir.read(valid_file)
        names = [k for k, v in g.nodes.items() if isinstance(v, nir.CubaLIF)]
        lif = g.nodes[names[int(rng.integers(len(names)))]]
        if mutation == "nan_param":
            pname = ["tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"][int(rng.integers(6))]
            arr = np.array(getattr(lif, pname), dtype=np.float64)
            arr[int(rng.integers(arr.size))] = np.nan
            setattr(lif, pname, arr)
        elif mutation == "neg_tau":
            lif.tau_mem = -np.abs(lif.tau_mem)
        elif mutation == "inf_weight":
            w = np.array(g.nodes["fc2"].weight)
            w[int(rng.integers(w.shape[0])), int(rng.integers(w.shape[1]))] = np.inf
            g.nodes["fc2"].weight = w
        elif mutation == "shape":
            w = np.array(g.nodes["fc2"].weight)
            g.nodes["fc2"].weight = w[:, : max(1, int(w.shape[1] * frac * 0.9))]
        elif mutation == "unknown_type":
            pass
        elif mutation == "drop_input":
            del g.nodes["input"]
            g.edges = [e for e in g.edges if e[0] != "input"] + [("fc1_lif", "fc1")]
        elif mutation == "dangling_edge":
            g.edges = list(g.edges) + [("fc2_lif", "ghost")]
        nir.write(p, g)
        if mutation == "unknown_type":
            with h5py.File(p, "r+") as f:
                key = f"node/nodes/{names[0]}/type"
                del f[key]
                f[key] = np.bytes_(["Spike", "Reset", "LIFX", "nonsense"][int(rng.integers(4))])
    rc = main(_import(p))
    err = capsys.readouterr().err
    if mutation in MUST_FAIL:
        assert rc != 0, mutation
    if rc != 0:
        _assert_one_line_error(rc, err)
