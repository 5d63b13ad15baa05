"""Malformed or unsupported NIR input -> one line on stderr naming the node and what is wrong, exit
code 2, never a traceback.

Hand-written cases for each kind the issue names (each asserting its message), plus a hypothesis
property test that generates corrupted files (random bytes, truncation, byte flips, NaN/inf
parameters, shape changes, unknown node types, cycles without Input) and runs them through the CLI.
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


def _assert_one_line_error(rc, err, *expected):
    """Exit code 2 (a user error), one ``snnhw: error:`` line holding each of ``expected``."""
    assert rc == 2, err
    lines = [l for l in err.strip().splitlines() if not l.startswith(("graph:", "running", "not a chain"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("snnhw: error: ") and "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])


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


def _import_graph_fails(g, path, capsys, *expected) -> str:
    """Write graph ``g`` to ``path``, run ``import-nir`` on it, assert a one-line error holding each of
    ``expected``; return stderr."""
    nir.write(path, g)
    rc, err = _cli(_import(path), capsys)
    _assert_one_line_error(rc, err, *expected)
    return err


def test_non_nir_file(tmp_path, capsys):
    p = tmp_path / "x.nir"
    p.write_text("this is not a NIR file\n")
    _assert_one_line_error(*_cli(_import(p), capsys), f"{p} is not a NIR file (not HDF5)")


def test_missing_file(tmp_path, capsys):
    _assert_one_line_error(*_cli(_import(tmp_path / "nope.nir"), capsys), "nope.nir: no such file")


def test_truncated_hdf5(tmp_path, capsys):
    p = tmp_path / "t.nir"
    nir.write(p, _base_graph())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _assert_one_line_error(*_cli(_import(p), capsys), f"cannot read NIR file {p}: OSError", "truncated file")


def test_unknown_node_type(tmp_path, capsys):
    p = tmp_path / "u.nir"
    nir.write(p, _base_graph())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = np.bytes_("Bogus")
    _assert_one_line_error(*_cli(_import(p), capsys), "node 'lif': unknown NIR node type 'Bogus'")


def test_unsupported_known_node_type(tmp_path, capsys):
    g = _base_graph()
    g.nodes["integ"] = nir.I(r=np.ones(2))
    g.edges = [("input", "fc"), ("fc", "lif"), ("lif", "integ"), ("integ", "output")]
    _import_graph_fails(g, tmp_path / "d.nir", capsys, "unsupported node type I (node 'integ')")


def test_linear_node_feeding_the_output_is_refused(tmp_path, capsys):
    g = _base_graph()
    g.nodes["delay"] = nir.Delay(delay=np.full(2, 2e-4))
    g.edges = [("input", "fc"), ("fc", "lif"), ("lif", "delay"), ("delay", "output")]
    _import_graph_fails(g, tmp_path / "d.nir", capsys, "synapse node 'delay' feeds the Output directly")


def test_mismatched_shapes(tmp_path, capsys):
    g = _base_graph()
    g.nodes["fc"] = nir.Linear(weight=np.ones((2, 5), dtype=np.float32))  # Input gives 3
    _import_graph_fails(g, tmp_path / "s.nir", capsys, "node 'fc' expects 5 inputs, receives 3 (shape mismatch)")


def test_neuron_size_mismatch(tmp_path, capsys):
    g = _base_graph()
    g.nodes["fc"] = nir.Linear(weight=np.ones((4, 3), dtype=np.float32))
    _import_graph_fails(g, tmp_path / "n.nir", capsys,
                        "node 'lif': parameter 'v_threshold' has 2 values, the layer has 4 neurons")


def test_nan_parameters(tmp_path, capsys):
    g = _base_graph()
    g.nodes["lif"].tau_mem = np.array([1e-3, np.nan])
    _import_graph_fails(g, tmp_path / "nan.nir", capsys, "node 'lif': parameter 'tau_mem' contains NaN")


def test_cycle_without_input(tmp_path, capsys):
    n = 2
    g = nir.NIRGraph(nodes={"lif": _base_graph().nodes["lif"], "w": nir.Linear(weight=np.eye(n, dtype=np.float32)),
                            "output": nir.Output(output_type={"output": np.array([n])})},
                     edges=[("lif", "w"), ("w", "lif"), ("lif", "output")], type_check=False)
    _import_graph_fails(g, tmp_path / "c.nir", capsys, "the graph needs exactly one Input node, found 0")


def test_readout_feeding_a_population_is_refused_on_the_chip(tmp_path, capsys):
    """An LI (non-spiking) population feeding another one: the float reference passes its voltage on,
    but a Loihi LIF can only send spikes."""
    g = _base_graph()
    g.nodes["li"] = nir.LI(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2))
    g.nodes["fc2"] = nir.Linear(weight=np.ones((2, 2), dtype=np.float32))
    g.edges = [("input", "fc"), ("fc", "li"), ("li", "fc2"), ("fc2", "lif"), ("lif", "output")]
    _import_graph_fails(g, tmp_path / "b.nir", capsys, "node 'li' (LI) feeds other nodes: on the chip a "
                                                      "non-spiking population can only be the output")


def _cnn_graph():
    from snnhw.io.nir import spec_to_graph

    from nir_specs import cnn

    g, _ = spec_to_graph(cnn(quantized=False))
    return g


def test_conv2d_input_shape_with_channels(tmp_path, capsys):
    """A Sinabs-style Conv2d whose input_shape holds (C, H, W) instead of (H, W): nir itself fails with
    ``IndexError: index 2 is out of bounds``; snnhw names the node and the entry."""
    g = _cnn_graph()
    g.nodes["conv1"].input_shape = np.array([2, 8, 8])
    err = _import_graph_fails(g, tmp_path / "c3.nir", capsys, "node 'conv1': Conv2d input_shape [2, 8, 8] must be "
                                                               "the (H, W) size of the input map")
    assert "IndexError" not in err


def test_conv2d_without_input_shape(tmp_path, capsys):
    """A Conv2d stored without its input_shape entry (nir needs it to build the node)."""
    p = tmp_path / "c0.nir"
    nir.write(p, _cnn_graph())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/conv1/input_shape"]
    rc, err = _cli(_import(p), capsys)
    _assert_one_line_error(rc, err, "node 'conv1': Conv2d has no 'input_shape' entry", "--repair sets it")
    assert "TypeError" not in err
    rc, err = _cli(_import(p) + ["--repair"], capsys)
    assert rc == 0, err
    assert "repaired node 'conv1': Conv2d input_shape was missing, set to (8, 8) from the incoming map" in err


def test_node_without_type_and_bad_weight(tmp_path, capsys):
    p = tmp_path / "t.nir"
    nir.write(p, _base_graph())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/fc/type"]
    _assert_one_line_error(*_cli(_import(p), capsys), "node 'fc' has no 'type' entry")
    nir.write(p, _base_graph())
    with h5py.File(p, "r+") as f:
        del f["node/nodes/fc/weight"]
        f["node/nodes/fc/weight"] = np.ones(3, dtype=np.float32)
    _assert_one_line_error(*_cli(_import(p), capsys), "node 'fc': Linear weight must be 2-D, got shape (3,)")


def test_bad_dt_metadata(tmp_path, capsys):
    g = _base_graph()
    g.metadata = {"dt": -1.0}
    _import_graph_fails(g, tmp_path / "dt.nir", capsys, "graph metadata dt = -1.0 must be a positive number")


def test_export_bad_source(tmp_path, capsys):
    p = tmp_path / "junk.json"
    p.write_text("{not json")
    _assert_one_line_error(*_cli(["export", str(p), "--format", "nir", "--out", str(tmp_path / "o.nir")], capsys),
                           "junk.json")
    _assert_one_line_error(*_cli(["export", str(tmp_path), "--format", "nir"], capsys))


def test_real_cli_process_prints_one_line(tmp_path):
    p = tmp_path / "x.nir"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    exe = Path(sys.executable).parent / "snnhw"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from snnhw.cli import main; "
                                                                 "sys.exit(main())"]
    r = subprocess.run(cmd + _import(p), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"cannot read NIR file {p}: OSError" in r.stderr


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


def _mutate_graph(g, mutation, rng, frac) -> str:
    """Apply a graph-level ``mutation`` in place; the message the import must give."""
    names = [k for k, v in g.nodes.items() if isinstance(v, nir.CubaLIF)]
    name = names[int(rng.integers(len(names)))]
    lif = g.nodes[name]
    if mutation == "nan_param":
        pname = ["tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in"][int(rng.integers(6))]
        arr = np.array(getattr(lif, pname), dtype=np.float64)
        arr[int(rng.integers(arr.size))] = np.nan
        setattr(lif, pname, arr)
        return f"node '{name}': parameter '{pname}' contains NaN or infinity"
    if mutation == "neg_tau":
        lif.tau_mem = -np.abs(lif.tau_mem)
        return f"node '{name}': tau_mem must be positive"
    w = np.array(g.nodes["fc2"].weight)
    if mutation == "inf_weight":
        w[int(rng.integers(w.shape[0])), int(rng.integers(w.shape[1]))] = np.inf
        g.nodes["fc2"].weight = w
        return "node 'fc2': parameter 'weight' contains NaN or infinity"
    if mutation == "shape":
        g.nodes["fc2"].weight = w[:, : max(1, int(w.shape[1] * frac * 0.9))]
        return f"node 'fc2' expects {g.nodes['fc2'].weight.shape[1]} inputs, receives {w.shape[1]} (shape mismatch)"
    if mutation == "unknown_type":
        return f"node '{names[0]}': unknown NIR node type"  # the type is replaced in the file below
    if mutation == "drop_input":
        del g.nodes["input"]
        g.edges = [e for e in g.edges if e[0] != "input"] + [("fc1_lif", "fc1")]
        return "the graph needs exactly one Input node, found 0"
    assert mutation == "dangling_edge"
    g.edges = list(g.edges) + [("fc2_lif", "ghost")]
    return "edge (fc2_lif, ghost) names a node that does not exist"


def _mutate_bytes(p, mutation, rng, frac) -> str:
    """Apply a byte-level ``mutation`` to file ``p``; the message the import must give ("" for any)."""
    data = p.read_bytes()
    if mutation == "random_bytes":
        p.write_bytes(rng.integers(0, 256, int(10 + frac * 4000), dtype=np.uint8).tobytes())
        return "is not a NIR file (not HDF5)"
    if mutation == "truncate":
        p.write_bytes(data[: max(1, int(len(data) * frac * 0.95))])
        return "NIR file"  # "cannot read NIR file ...", or "... is not a NIR file" when the header is cut
    data = bytearray(data)
    for i in rng.integers(0, len(data), 1 + int(frac * 20)):
        data[i] = int(rng.integers(0, 256))
    p.write_bytes(bytes(data))
    return ""


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=st.sampled_from(MUTATIONS), seed=st.integers(0, 2 ** 31 - 1), frac=st.floats(0.01, 0.99))
def test_generated_malformed_files(tmp_path_factory, valid_file, capsys, mutation, seed, frac):
    rng = np.random.default_rng(seed)
    p = tmp_path_factory.mktemp("m") / "bad.nir"
    shutil.copy(valid_file, p)
    if mutation in ("random_bytes", "truncate", "flip_bytes"):
        expected = _mutate_bytes(p, mutation, rng, frac)
    else:
        g = nir.read(valid_file)
        expected = _mutate_graph(g, mutation, rng, frac)
        nir.write(p, g)
        if mutation == "unknown_type":
            names = [k for k, v in g.nodes.items() if isinstance(v, nir.CubaLIF)]
            with h5py.File(p, "r+") as f:
                key = f"node/nodes/{names[0]}/type"
                del f[key]
                f[key] = np.bytes_(["Spike", "Reset", "LIFX", "nonsense"][int(rng.integers(4))])
    rc = main(_import(p))
    err = capsys.readouterr().err
    if mutation in MUST_FAIL:
        assert rc != 0, mutation
    if rc != 0:  # flip_bytes may leave a readable file
        _assert_one_line_error(rc, err, expected)
