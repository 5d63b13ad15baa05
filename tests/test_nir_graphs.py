"""NIR graphs beyond chains, the new primitives, the source conventions and repairs, and the Sinabs graphs.

Graphs are built with the ``nir`` library; the float reference is checked against independent numpy
loops, composed synapses against the uncomposed graph, and the Sinabs fixtures (written by Sinabs
3.1.3's own ``to_nir``, simulated by Sinabs; tests/fixtures/nir/peers) against Sinabs' outputs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snnhw.backends import lava_runtime
from snnhw.cli import main
from snnhw.io.nir import NIRFormatError, graph_to_model, load_model
from snnhw.io.nir.chain import linear_input, subdag
from snnhw.nir_import import float_reference, import_nir, synaptic_input
from snnhw.nir_import.measure import cosine, pearson

PEERS = Path(__file__).parent / "fixtures" / "nir" / "peers"
sys.path.insert(0, str(PEERS))
import make_peers  # noqa: E402  (load_input: the stored inputs, packed or not)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _spikes(rng, b, t, n, p=0.3):
    return (rng.random((b, t, n)) < p).astype(np.float64)


def _lif(v, a, beta, g, theta, v_reset=0.0, leak=0.0):
    """One forward-Euler LIF step in numpy (zero reset to v_reset): (spikes, v after reset)."""
    v = beta * v + g * a + leak
    s = (v > theta).astype(np.float64)
    return s, np.where(s > 0, v_reset, v)


def _io(n_in, n_out):
    return {"input": nir.Input(input_type={"input": np.array([n_in])}),
            "output": nir.Output(output_type={"output": np.array([n_out])})}


# ------------------------------------------------------------------------------------------------
# General graphs
# ------------------------------------------------------------------------------------------------
def _dag():
    """Input fans out to an Affine path and a skip; lif2 sums both (fan-in), IF with v_reset."""
    rng = np.random.default_rng(1)
    wa, ba = rng.normal(0, 1, (5, 4)), rng.normal(0.1, 0.05, 5)
    wb, wc = rng.normal(0.5, 1, (3, 5)), rng.normal(0.3, 1, (3, 4))
    nodes = {**_io(4, 3), "a": nir.Affine(weight=wa, bias=ba),
             "lif1": nir.LIF(tau=np.full(5, 1e-3), r=np.full(5, 10.0), v_leak=np.zeros(5), v_threshold=np.ones(5)),
             "b": nir.Linear(weight=wb), "c": nir.Linear(weight=wc),
             "lif2": nir.IF(r=np.full(3, 1e4), v_threshold=np.full(3, 1.5), v_reset=np.full(3, -0.2))}
    edges = [("input", "a"), ("a", "lif1"), ("lif1", "b"), ("b", "lif2"), ("input", "c"), ("c", "lif2"),
             ("lif2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-4}), (wa, ba, wb, wc)


def test_dag_with_fan_in_and_skip_matches_numpy():
    g, (wa, ba, wb, wc) = _dag()
    model = graph_to_model(g, source="nir")
    assert "lif2" in model.chain_error and "'input'" in model.chain_error
    x = _spikes(np.random.default_rng(2), 3, 30, 4)
    ref = float_reference(model, x)
    v1, v2 = np.zeros((3, 5)), np.zeros((3, 3))
    out = []
    for t in range(30):
        s1, v1 = _lif(v1, x[:, t] @ wa.T + ba, 0.9, 1.0, 1.0)
        s2, v2 = _lif(v2, s1 @ wb.T + x[:, t] @ wc.T, 1.0, 1.0, 1.5, v_reset=-0.2)
        out.append(s2)
    np.testing.assert_array_equal(ref.output, np.stack(out, 1))
    assert ref.output.sum() > 10


def _dag_with_delay_and_recurrence():
    """_dag plus a recurrent Linear on lif1 and a 2-step Delay on the skip path."""
    g, _ = _dag()
    g.nodes["rec"] = nir.Linear(weight=np.random.default_rng(8).normal(0, 0.5, (5, 5)))
    g.nodes["dly"] = nir.Delay(delay=np.full(3, 2e-4))
    g.edges = [e for e in g.edges if e != ("c", "lif2")] + [("lif1", "rec"), ("rec", "lif1"), ("c", "dly"),
                                                            ("dly", "lif2")]
    return g


def test_dag_runs_on_the_chip_mapping_with_synaptic_delays(tmp_path):
    """Not a chain: every population gets one synapse per source; the skip synapse waits 1 step (the
    path lengths differ by one Dense) + 2 steps (the Delay node) on Loihi 2's synaptic delay."""
    from snnhw.nir_import.dag import dag_spec

    g = _dag_with_delay_and_recurrence()
    model = graph_to_model(g, source="nir")
    x = _spikes(np.random.default_rng(9), 4, 40, 4)
    spec = dag_spec(model, x, reset="zero", quantized=True)
    assert [(s.src, s.delay) for s in spec.pops[1].syns] == [(-1, 3), (0, 0)]
    assert spec.pops[0].weight_rec is not None and [p.depth for p in spec.pops] == [1, 2]
    nir.write(tmp_path / "dag.nir", g)
    rep = import_nir(tmp_path / "dag.nir", target="float", source="nir", inputs=x, out=tmp_path / "f")
    assert rep["mapping"]["why"].startswith("population 'lif2' receives input from 'input', 'lif1'")
    assert rep["agreement"]["output_cosine"] > 0.95 and rep["spec_from"] == "graph mapping"
    assert rep["model_nir"].startswith("not written")


@pytest.mark.skipif(not lava_runtime.lava_available(), reason="needs lava-nc (Python 3.10 lane)")
def test_dag_on_lava_equals_core_bit_for_bit():
    """Differential: two Dense/DelayDense processes into one LIF a_in (fan-in, skip with synaptic delay) and
    a recurrent Dense, on Lava fixed_pt, equal snnhw's core spike for spike and v for v."""
    from snnhw.nir_import.dag import dag_spec, run_dag_lava, simulate_dag

    model = graph_to_model(_dag_with_delay_and_recurrence(), source="nir")
    x = _spikes(np.random.default_rng(10), 3, 30, 4)
    spec = dag_spec(model, x, reset="zero", quantized=True)
    xp = np.concatenate([x, np.zeros((3, 2, 4))], axis=1)
    core_s, core_v = simulate_dag(spec, xp)
    lava_s, lava_v = run_dag_lava(spec, xp)
    for a, b in zip(core_s + core_v, lava_s + lava_v):
        np.testing.assert_array_equal(a, b)
    assert all(s.sum() > 0 for s in core_s)
    ref = float_reference(model, x)
    assert cosine(core_s[1][:, 2:32].sum(1), ref.output.sum(1)) > 0.95


def test_nested_subgraph_and_affine_chain_compose():
    """Affine -> Scale -> Affine inside a nested subgraph composes into one dense synapse (float exact)."""
    rng = np.random.default_rng(3)
    w1, b1, w2 = rng.normal(0, 1, (6, 4)), rng.normal(0, 0.1, 6), rng.normal(0, 1, (3, 6))
    sub = nir.NIRGraph(nodes={"i": nir.Input(input_type={"input": np.array([4])}), "f1": nir.Affine(weight=w1, bias=b1),
                              "sc": nir.Scale(scale=np.array(0.5)), "f2": nir.Linear(weight=w2),
                              "o": nir.Output(output_type={"output": np.array([3])})},
                       edges=[("i", "f1"), ("f1", "sc"), ("sc", "f2"), ("f2", "o")], type_check=False)
    g = nir.NIRGraph(nodes={**_io(4, 3), "syn": sub,
                            "lif": nir.LIF(tau=np.full(3, 1e-3), r=np.full(3, 10.0), v_leak=np.zeros(3),
                                           v_threshold=np.ones(3))},
                     edges=[("input", "syn"), ("syn", "lif"), ("lif", "output")], type_check=False)
    model = graph_to_model(g, source="nir")
    assert model.chain_error is None and [s.kind for s in model.stages] == ["dense"]
    st = model.stages[0]
    np.testing.assert_allclose(st.weight, 0.5 * w2 @ w1, rtol=1e-12)
    np.testing.assert_allclose(st.bias, 0.5 * w2 @ b1, rtol=1e-12)


def _cnn_graph(avg: bool = False):
    rng = np.random.default_rng(4)
    w1, w2 = rng.normal(0, 1, (3, 2, 3, 3)), rng.normal(0, 1, (4, 3, 3, 3))
    pool = (nir.AvgPool2d if avg else nir.SumPool2d)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                     padding=np.array([0, 0]))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
             "conv1": nir.Conv2d(input_shape=(8, 8), weight=w1, stride=1, padding=1, dilation=1, groups=1,
                                 bias=np.zeros(3)),
             "if1": nir.IF(r=np.ones((3, 8, 8)), v_threshold=np.ones((3, 8, 8))), "pool": pool,
             "conv2": nir.Conv2d(input_shape=(4, 4), weight=w2, stride=1, padding=1, dilation=1, groups=1,
                                 bias=np.zeros(4)),
             "if2": nir.IF(r=np.ones((4, 4, 4)), v_threshold=np.full((4, 4, 4), 2.0)),
             "output": nir.Output(output_type={"output": np.array([4, 4, 4])})}
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "pool"), ("pool", "conv2"), ("conv2", "if2"),
             ("if2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("avg", [False, True])
def test_pool_then_conv_is_one_exact_conv(avg):
    """SumPool2d/AvgPool2d (stride = kernel) -> Conv2d becomes one conv (kernel 6x6, stride 2, padding 2)
    whose weights are the conv's own, repeated: the composed synapse equals the two nodes on any spikes."""
    model = graph_to_model(_cnn_graph(avg), source="nir", dt=1.0)
    st = model.stages[1]
    assert st.kind == "conv" and st.kernel == (6, 6) and st.stride == (2, 2) and st.padding == (2, 2)
    g = model.graph
    s = torch.as_tensor(_spikes(np.random.default_rng(5), 2, 6, 3 * 64))
    lin, _ = subdag(g, g.ff_preds("if2"))
    want, _ = linear_input(g, g.ff_preds("if2"), lin, {"if1": s.reshape(2, 6, 3, 8, 8)})
    got = synaptic_input(st, s) * (st.neuron.g_syn / g.neurons["if2"].g_syn)[0]
    np.testing.assert_allclose(got.numpy(), want.reshape(2, 6, -1).numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Primitives against numpy
# ------------------------------------------------------------------------------------------------
def _one_pop(op_nodes, op_edges, n_in, neuron, n_out):
    nodes = {**_io(n_in, n_out), **op_nodes, "pop": neuron}
    return nir.NIRGraph(nodes=nodes, edges=op_edges + [("pop", "output")], metadata={"dt": 1e-4}, type_check=False)


def test_primitives_match_numpy():
    """Threshold after Scale, Conv1d, Delay, CubaLI readout with scalar parameters, each against numpy."""
    rng = np.random.default_rng(6)
    x = _spikes(rng, 2, 20, 6)
    # Scale -> Threshold (memoryless): spikes where 0.7 * x > 0.5
    g = _one_pop({"sc": nir.Scale(scale=np.array(0.7))}, [("input", "sc"), ("sc", "pop")], 6,
                 nir.Threshold(threshold=np.array(0.5)), 6)
    np.testing.assert_array_equal(float_reference(graph_to_model(g, source="nir"), x).output, (0.7 * x > 0.5))
    # Conv1d (C=2, L=3 -> 1 x 2) -> LIF
    w = rng.normal(0, 1, (1, 2, 2))
    g = _one_pop({"cv": nir.Conv1d(input_shape=3, weight=w, stride=1, padding=0, dilation=1, groups=1,
                                   bias=np.zeros(1)),
                  "fl": nir.Flatten(input_type={"input": np.array([1, 2])})},
                 [("input", "cv"), ("cv", "fl"), ("fl", "pop")], 6,
                 nir.IF(r=np.full(2, 1e4), v_threshold=np.ones(2)), 2)
    g.nodes["input"] = nir.Input(input_type={"input": np.array([2, 3])})
    xc = x.reshape(2, 20, 2, 3)
    a = np.stack([np.einsum("btck,ck->bt", xc[..., j:j + 2], w[0]) for j in range(2)], -1)
    v, out = np.zeros((2, 2)), []
    for t in range(20):
        s, v = _lif(v, a[:, t], 1.0, 1.0, 1.0)
        out.append(s)
    np.testing.assert_array_equal(float_reference(graph_to_model(g, source="nir"), x).output, np.stack(out, 1))
    # Delay of 3 steps -> CubaLI readout with scalar (0-d) parameters: v is the output
    g = _one_pop({"d": nir.Delay(delay=np.array(3e-4))}, [("input", "d"), ("d", "pop")], 6,
                 nir.CubaLI(tau_syn=np.array(2e-4), tau_mem=np.array(5e-4), r=np.array(5.0), v_leak=np.array(0.0),
                            w_in=np.array(2.0)), 6)
    model = graph_to_model(g, source="nir")
    assert model.output_voltage
    ref = float_reference(model, x)
    i, v, vs = np.zeros((2, 6)), np.zeros((2, 6)), []
    for t in range(20):
        a = x[:, t - 3] if t >= 3 else np.zeros((2, 6))
        i = 0.5 * i + 1.0 * a
        v = 0.8 * v + 1.0 * i
        vs.append(v)
    np.testing.assert_allclose(ref.output_voltage, np.stack(vs, 1), rtol=1e-12)
    assert ref.output.sum() == 0


def test_scalar_li_readout_imports_with_voltage_outputs(tmp_path):
    """Scalar-shaped LIF/LI parameters (nir's type check fails on shape []) import, and the run directory
    holds the voltages; the report's agreement is Pearson r / arg-max of the mean voltage."""
    rng = np.random.default_rng(7)
    sc = lambda v: np.array([v], dtype=np.float32)  # noqa: E731  (one value for the whole population)
    nodes = {**_io(8, 3), "f1": nir.Affine(weight=rng.normal(0.3, 1, (10, 8)), bias=np.zeros(10)),
             "lif": nir.LIF(tau=sc(1e-3), r=sc(10.0), v_leak=sc(0.0), v_threshold=sc(1.0)),
             "f2": nir.Affine(weight=rng.normal(0, 1, (3, 10)), bias=np.zeros(3)),
             "li": nir.LI(tau=sc(2e-3), r=sc(20.0), v_leak=sc(0.0))}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "f1"), ("f1", "lif"), ("lif", "f2"), ("f2", "li"),
                                         ("li", "output")], type_check=False)
    nir.write(tmp_path / "li.nir", g)
    with pytest.raises(Exception):
        nir.read(tmp_path / "li.nir", type_check=True)
    rep = import_nir(tmp_path / "li.nir", target="float", source="nir", rate=0.3, steps=40, samples=3,
                     out=tmp_path / "run")
    assert rep["output"] == "voltage" and rep["nir_type_check"] != "passed"
    assert rep["agreement"]["measure"] == "voltage" and rep["agreement"]["output_pearson_r"] > 0.98
    fv = np.load(tmp_path / "run" / "verify" / "float_output_voltage.npy")
    assert fv.shape == (3, 40, 3) and np.abs(fv).max() > 0


# ------------------------------------------------------------------------------------------------
# Conventions, repairs, refusals
# ------------------------------------------------------------------------------------------------
def test_conventions_detected_and_named(tmp_path):
    m = load_model(PEERS / "sinabs_mlp_li.nir")
    assert m.convention.name == "sinabs" and m.dt == 1.0 and "detected" in m.convention_source
    li = m.graph.neurons[m.graph.output]
    assert np.allclose(li.beta, np.exp(-1 / 12)) and np.allclose(li.g_mem, 1.0)  # ExpLeak, norm_input=False
    m = load_model(PEERS / "sinabs_mlp_li.nir", source="nir", dt=1.0)
    assert m.convention_source == "--from" and np.allclose(m.graph.neurons[m.graph.output].beta, 1 - 1 / 12)
    g, _ = _dag()  # r = tau/dt at dt = 1e-4 s on its LIF: snnTorch's pattern, whose default reset subtracts
    m = graph_to_model(g)
    assert m.convention.name == "snntorch" and m.convention.reset == "subtract-undecayed"
    assert load_model(PEERS.parent / "lif_norse.nir").convention.name == "nir"


def test_wrong_subgraph_input_shape_refused_or_repaired(tmp_path, capsys):
    """An older Rockpool wrote a recurrent subgraph whose Input says [12] while its LIF has 5 neurons."""
    n = 5
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([12])}),
                              "lif": nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                                             v_threshold=np.ones(n)),
                              "w_rec": nir.Linear(weight=0.1 * np.ones((n, n))),
                              "output": nir.Output(output_type={"output": np.array([n])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                       type_check=False)
    g = nir.NIRGraph(nodes={**_io(12, n), "fc": nir.Linear(weight=np.ones((n, 12))), "rnn": sub},
                     edges=[("input", "fc"), ("fc", "rnn"), ("rnn", "output")], type_check=False)
    p = tmp_path / "rnn.nir"
    nir.write(p, g)
    argv = ["import-nir", str(p), "--target", "float", "--samples", "1", "--steps", "5", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("snnhw: error: subgraph Input 'rnn.input' declares shape (12,) but receives (5,) from 'fc' "
                              "(an exporter bug; --repair uses the received shape)")
    assert main(argv + ["--repair"]) == 0
    err = capsys.readouterr().err
    assert "repaired node 'rnn.input': subgraph Input shape (12,) replaced by (5,), the shape it receives" in err


def test_recurrence_from_another_population_is_refused():
    g, _ = _dag()
    g.nodes["back"] = nir.Linear(weight=np.ones((5, 3)))
    g.edges = g.edges + [("lif2", "back"), ("back", "lif1")]
    with pytest.raises(NIRFormatError, match="recurrent input of 'lif1' comes from 'lif2'"):
        graph_to_model(g, source="nir")


# ------------------------------------------------------------------------------------------------
# Sinabs' own graphs and outputs
# ------------------------------------------------------------------------------------------------
def _peer_input(name):
    x = make_peers.load_input(name)
    return x.reshape(x.shape[0], x.shape[1], -1)


def test_sinabs_cnn_float_reference_equals_sinabs():
    """Conv2d -> IF -> SumPool2d -> Conv2d -> IF -> SumPool2d -> Flatten -> Affine -> IF, subtract reset."""
    model = load_model(PEERS / "sinabs_cnn.nir")
    assert [s.kind for s in model.stages] == ["conv", "conv", "flatten", "dense"]
    ref = float_reference(model, _peer_input("sinabs_cnn"), reset=model.convention.reset)
    peer = np.load(PEERS / "sinabs_cnn_spikes.npy").reshape(ref.output.shape)
    np.testing.assert_array_equal(ref.output, peer)


def test_sinabs_li_readout_float_reference_equals_sinabs():
    model = load_model(PEERS / "sinabs_mlp_li.nir")
    ref = float_reference(model, _peer_input("sinabs_mlp_li"), reset=model.convention.reset)
    np.testing.assert_allclose(ref.output_voltage, np.load(PEERS / "sinabs_mlp_li_voltage.npy"), atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not lava_runtime.lava_available(), reason="needs lava-nc (Python 3.10 lane)")
@pytest.mark.parametrize("name", ["sinabs_cnn", "sinabs_mlp_li"])
def test_sinabs_graphs_on_lava_stay_close_to_sinabs(tmp_path, name):
    """Acceptance: CNN per-output spike-count cosine >= 0.95, LI readout voltage Pearson r >= 0.9 on Lava."""
    rep = import_nir(PEERS / f"{name}.nir", inputs=_peer_input(name), out=tmp_path)
    assert rep["backend"] == "lava-cpu-sim"
    v = tmp_path / "verify"
    if name == "sinabs_cnn":
        peer = np.load(PEERS / "sinabs_cnn_spikes.npy").sum(axis=1)
        chip = np.load(v / "lava_output_spikes.npy").sum(axis=1)
        assert np.mean([cosine(chip[:, j], peer[:, j]) for j in range(peer.shape[1])]) >= 0.95
    else:
        assert pearson(np.load(v / "lava_output_voltage.npy"), np.load(PEERS / "sinabs_mlp_li_voltage.npy")) >= 0.9


@pytest.mark.skipif(not lava_runtime.lava_available(), reason="needs lava-nc (Python 3.10 lane)")
def test_readout_lif_that_cannot_fire_reads_v_back_like_the_core():
    """Differential: the readout (a Lava LIF whose threshold is out of reach, v read back) equals snnhw's
    bit-exact core's v, and never spikes."""
    from snnhw.backends.lava import run_lava
    from snnhw.core.network import simulate
    from snnhw.nir_import.quantize import quantize_model
    from snnhw.nir_import.readout import chip_model

    model = load_model(PEERS / "sinabs_mlp_li.nir")
    x = _peer_input("sinabs_mlp_li")[:2, :20]
    spec, _ = quantize_model(chip_model(model, [x], "zero"), x)
    xp = np.concatenate([x, np.zeros((2, 3, x.shape[2]))], axis=1)
    lava = run_lava(spec, xp, record=True, hardware=False)
    core = simulate(spec, xp, record=True)
    np.testing.assert_array_equal(lava.traces[-1][1], core.traces[-1].v.numpy())
    assert lava.output.sum() == 0 and np.abs(lava.traces[-1][1]).max() > 0


def test_broadcastable_parameters_expand_to_the_population():
    """One threshold per channel ([C, 1, 1]) on a (C, H, W) population, a scalar r: expanded, channel-major."""
    g = _cnn_graph()
    g.nodes["if1"] = nir.IF(r=np.ones((3, 1, 1)), v_threshold=np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1))
    g.nodes["if1"].r = np.array(1.0)  # nir's constructor wants equal shapes; a reader may still meet this
    model = graph_to_model(g, source="nir", dt=1.0)
    nd = model.graph.neurons["if1"]
    np.testing.assert_array_equal(nd.theta, np.repeat([1.0, 2.0, 3.0], 64))
    np.testing.assert_array_equal(nd.g_mem, np.ones(3 * 64))


def test_cli_from_sinabs_prints_the_voltage_agreement(tmp_path, capsys):
    np.save(tmp_path / "x.npy", _peer_input("sinabs_mlp_li")[:2, :20].astype(np.uint8))
    rc = main(["import-nir", str(PEERS / "sinabs_mlp_li.nir"), "--target", "float", "--from", "sinabs",
               "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "run")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "convention sinabs (--from); reset subtract" in cap.err
    assert "output voltage Pearson r" in cap.out
    assert np.load(tmp_path / "run" / "verify" / "lava_output_voltage.npy").shape == (2, 20, 5)


def test_threshold_population_on_the_chip(tmp_path):
    """Threshold (memoryless) maps to a LIF with i_decay = v_decay = 4096: on the chip (Lava when
    installed, else the exact core) it follows the reference one step later."""
    rng = np.random.default_rng(11)
    g = _one_pop({"fc": nir.Linear(weight=rng.normal(0.4, 0.5, (6, 6)))}, [("input", "fc"), ("fc", "pop")], 6,
                 nir.Threshold(threshold=np.full(6, 0.5)), 6)
    nir.write(tmp_path / "thr.nir", g)
    x = _spikes(rng, 3, 30, 6)
    rep = import_nir(tmp_path / "thr.nir", source="nir", inputs=x, out=tmp_path / "run")
    assert rep["quantization"][0]["i_decay"] == 4096 and rep["quantization"][0]["v_decay"] == 4096
    assert rep["agreement"]["output_cosine"] > 0.97


@pytest.mark.parametrize("name, source, dt, reset", [
    ("snntorch_mlp", "snntorch", 1e-4, "subtract-undecayed"),
    ("norse_mlp", "norse", 1e-6, "zero"),
    ("rockpool_lif", "rockpool", 1e-3, "subtract")])
def test_peer_graphs_float_reference_equals_the_peer(name, source, dt, reset):
    """Each peer's own export, detected (Rockpool's batch-axis Input repaired), read under the peer's
    convention, reproduces the peer's own simulation spike for spike."""
    model = load_model(PEERS / f"{name}.nir", repair=True)
    assert model.convention.name == source and model.convention.reset == reset
    assert model.dt == pytest.approx(dt, rel=1e-6)
    x = _peer_input(name)
    ref = float_reference(model, x, reset=reset)
    np.testing.assert_array_equal(ref.output, np.load(PEERS / f"{name}_spikes.npy").reshape(ref.output.shape))


def test_batch_axis_input_refused_or_repaired():
    with pytest.raises(NIRFormatError, match=r"Input node 'input' has shape \(1, 12\): a leading batch axis "
                                             r"\(Rockpool's exporter keeps it\) before an Affine/Linear node; "
                                             r"--repair drops it"):
        load_model(PEERS / "rockpool_lif.nir")
    m = load_model(PEERS / "rockpool_lif.nir", repair=True)
    assert m.repairs == ["node 'input': Input shape (1, 12) has a leading batch axis, using (12,)"]


@pytest.mark.parametrize("target", ["float", pytest.param("loihi2", marks=pytest.mark.slow)])
def test_li_readout_behind_a_skip_connection(tmp_path, target):
    """The graph mapping with a non-spiking output: fan-in into an LI readout, its voltage read back."""
    g, _ = _dag()
    g.nodes["lif2"] = nir.LI(tau=np.full(3, 2e-3), r=np.full(3, 20.0), v_leak=np.zeros(3))
    nir.write(tmp_path / "dag_li.nir", g)
    rep = import_nir(tmp_path / "dag_li.nir", target=target, source="nir", rate=0.3, steps=60, samples=6,
                     out=tmp_path / "run")
    assert rep["output"] == "voltage" and rep["spec_from"] == "graph mapping"
    assert rep["agreement"]["output_pearson_r"] > 0.98 and rep["agreement"]["predictions"] == 1.0
    assert np.load(tmp_path / "run" / "verify" / "lava_output_voltage.npy").shape == (6, 60, 3)


@pytest.mark.parametrize("name", ["cnn_pool_conv", "avg_pool_conv", "sinabs_cnn", "sinabs_mlp_li", "snntorch_mlp",
                                  "rockpool_lif"])
def test_chain_stages_equal_the_graph_evaluation(name):
    """On chains the composed stages (what the chip mapping quantizes) and the population-by-population
    graph evaluation give the same reference (the composition is exact)."""
    if name in ("cnn_pool_conv", "avg_pool_conv"):
        model = graph_to_model(_cnn_graph(name == "avg_pool_conv"), source="nir", dt=1.0)
        x = _spikes(np.random.default_rng(12), 2, 15, 2 * 64)
    else:
        model = load_model(PEERS / f"{name}.nir", repair=True)
        x = _peer_input(name)
    assert model.chain_error is None
    a = float_reference(model, x, reset="subtract", record=True, via="stages")
    b = float_reference(model, x, reset="subtract", record=True, via="graph")
    for (ua, va), (ub, vb) in zip(a.traces, b.traces):
        np.testing.assert_allclose(va, vb, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(a.output, b.output)


def test_reference_runs_a_chain_as_its_stages_say():
    """A chain model whose stages were changed (as the subtract-reset compensation adds a self-excitation
    to a stage's recurrent weights) runs as changed."""
    import dataclasses

    model = load_model(PEERS / "snntorch_mlp.nir")
    x = _peer_input("snntorch_mlp")
    st = model.stages[0]
    boosted = dataclasses.replace(st, weight_rec=np.eye(st.neuron.n) * 0.5 * st.neuron.theta)
    changed = dataclasses.replace(model, stages=[boosted] + model.stages[1:])
    a = float_reference(model, x).layer_spikes[0].sum()
    b = float_reference(changed, x).layer_spikes[0].sum()
    assert b > a


def test_cli_loihi2_voltage_output_with_subtract_reset(tmp_path, capsys):
    """The chip path of a readout output with subtract reset prints the compensation line in Pearson r."""
    np.save(tmp_path / "x.npy", _peer_input("sinabs_mlp_li")[:2, :20].astype(np.uint8))
    rc = main(["import-nir", str(PEERS / "sinabs_mlp_li.nir"), "--inputs", str(tmp_path / "x.npy"),
               "--out", str(tmp_path / "run")])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "subtract reset: without compensation Pearson r" in cap.out
