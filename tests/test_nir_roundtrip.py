"""snnhw -> NIR -> snnhw: every parameter and every output spike (fixed-point and float), NIR's own
read-back type check on every written file, the float semantics of the written graph, lossy refusal."""
from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.core.network import simulate
from snnhw.io.nir import (NIRFormatError, export_nir, load_model, model_to_spec_exact, read_nir_spec,
                          spec_to_graph)
from snnhw.nir_import import float_reference
from snnhw.spec import Neuron

from nir_specs import cnn, mlp, recurrent, spikes

SPECS = {"mlp": mlp, "cnn": cnn, "recurrent": recurrent}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _same_spec(a, b):
    da, db = a.to_dict(), b.to_dict()
    assert da["input_shape"] == db["input_shape"] and da["quantized"] == db["quantized"]
    assert len(da["layers"]) == len(db["layers"])
    for la, lb in zip(da["layers"], db["layers"]):
        assert set(la) == set(lb), (la.keys(), lb.keys())
        for k in la:
            va, vb = la[k], lb[k]
            if isinstance(va, dict) and "__array__" in va:
                np.testing.assert_array_equal(np.asarray(va["__array__"]), np.asarray(vb["__array__"]), err_msg=k)
            else:
                assert va == vb, (la["name"], k, va, vb)


@pytest.mark.parametrize("quantized", [True, False], ids=["fixed", "float"])
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_round_trip_parameters_and_spikes(tmp_path, kind, quantized):
    spec = SPECS[kind](quantized=quantized)
    path = tmp_path / f"{kind}.nir"
    assert export_nir(spec, path) == []
    g = nir.read(path)  # nir's read-back type check
    assert isinstance(g, nir.NIRGraph)
    back = read_nir_spec(path)
    _same_spec(spec, back)
    x = spikes(spec)
    a, b = simulate(spec, x), simulate(back, x)
    assert a.output.sum() > 0
    for la, lb in zip(a.layer_spikes, b.layer_spikes):
        assert torch.equal(la, lb)


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_written_float_values_mean_the_chip(tmp_path, kind):
    """The NIR floats alone (no metadata) under forward Euler + Loihi's one-step synapse delay reproduce
    snnhw's float simulation of the spec spike for spike."""
    spec = SPECS[kind](quantized=False)
    path = tmp_path / "f.nir"
    export_nir(spec, path)
    model = load_model(path)
    x = spikes(spec, samples=8, steps=60)
    ref = float_reference(model, x, synapse_delay=1)
    sim = simulate(spec, x, exact=False)
    assert sim.output.sum() > 10
    for r, s in zip(ref.layer_spikes, sim.layer_spikes):
        assert np.mean(r == s.numpy()) > 0.999


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_quantized_floats_match_integers(tmp_path, kind):
    """De-quantized floats of a fixed-point spec, in the float reference with Loihi timing, track the
    bit-exact chip (only rounding differs)."""
    spec = SPECS[kind](quantized=True)
    path = tmp_path / "q.nir"
    export_nir(spec, path)
    x = spikes(spec, samples=8, steps=60)
    ref = float_reference(load_model(path), x, synapse_delay=1)
    chip = simulate(spec, x)
    for r, c in zip(ref.layer_spikes, chip.layer_spikes):
        rc, cc = r.sum(axis=1).ravel(), c.numpy().sum(axis=1).ravel()
        assert rc @ cc / (np.linalg.norm(rc) * np.linalg.norm(cc) + 1e-12) > 0.97


def test_metadata_keys_and_node_types(tmp_path):
    spec = recurrent()
    export_nir(spec, tmp_path / "r.nir", dt=2e-4)
    g = nir.read(tmp_path / "r.nir")
    assert float(g.metadata["dt"]) == 2e-4
    assert str(g.metadata["snnhw.discretization"]) == "forward-euler"
    types = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert types == {"input": "Input", "rec1": "Linear", "rec1_lif": "CubaLIF", "rec1_rec": "Linear",
                     "out": "Linear", "out_lif": "CubaLIF", "output": "Output"}
    assert ("rec1_lif", "rec1_rec") in g.edges and ("rec1_rec", "rec1_lif") in g.edges
    lif = g.nodes["rec1_lif"]
    assert int(lif.metadata["snnhw.i_decay"]) == 1024 and int(lif.metadata["snnhw.lava_du"]) == 1023
    assert int(lif.metadata["snnhw.v_decay"]) == 614 and int(lif.metadata["snnhw.vth_mant"]) == 200
    np.testing.assert_allclose(lif.tau_syn, 2e-4 * 4096 / 1024)
    np.testing.assert_allclose(lif.r, lif.tau_mem / 2e-4)
    np.testing.assert_allclose(lif.w_in, lif.tau_syn / 2e-4)
    np.testing.assert_array_equal(lif.v_threshold, np.full(24, 200.0))
    w = g.nodes["rec1"]
    np.testing.assert_array_equal(w.weight, spec.layers[0].weight * 2.0)  # weight units: mant * 2**1
    np.testing.assert_array_equal(g.nodes["rec1_rec"].metadata["snnhw.weight_mant"], spec.layers[0].weight_rec)
    assert lif.input_type["input"].tolist() == [24]


def test_bias_without_current_decay_goes_to_affine(tmp_path):
    spec = mlp()
    g, _ = spec_to_graph(spec)
    assert type(g.nodes["fc2"]).__name__ == "Affine"  # i_decay = 4096: exact current bias
    assert type(g.nodes["fc1"]).__name__ == "Linear"  # bias in v_leak
    assert np.any(g.nodes["fc1_lif"].v_leak != 0)
    assert type(g.nodes["fc3"]).__name__ == "Linear"


def test_subtract_reset_refused_unless_lossy(tmp_path):
    spec = mlp(quantized=False)
    spec.layers[1].neuron = Neuron(4096.0, 333.3, 4.2, reset="subtract")
    with pytest.raises(NIRFormatError, match="subtract"):
        export_nir(spec, tmp_path / "s.nir")
    assert not (tmp_path / "s.nir").exists()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        notes = export_nir(spec, tmp_path / "s.nir", lossy=True)
    assert notes and any("lossy" in str(x.message) for x in w)
    g = nir.read(tmp_path / "s.nir")
    assert "subtractive reset" in str(g.metadata["snnhw.lossy"])
    assert str(g.nodes["fc2_lif"].metadata["snnhw.reset"]) == "subtract"


def test_edited_floats_disable_metadata(tmp_path):
    spec = mlp()
    g, _ = spec_to_graph(spec)
    g.nodes["fc1"].weight = g.nodes["fc1"].weight * 1.5
    nir.write(tmp_path / "e.nir", g)
    with pytest.raises(NIRFormatError, match="disagree"):
        model_to_spec_exact(load_model(tmp_path / "e.nir"))


def test_nested_subgraph_reads_like_flat(tmp_path):
    """The snnTorch/Spyx/Rockpool form (recurrence in a 4-node subgraph) maps to the same chain."""
    spec = recurrent()
    g, _ = spec_to_graph(spec)
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([24])}),
                              "lif": g.nodes["rec1_lif"], "w_rec": g.nodes["rec1_rec"],
                              "output": nir.Output(output_type={"output": np.array([24])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
    nodes = {k: v for k, v in g.nodes.items() if k not in ("rec1_lif", "rec1_rec")}
    nodes["rnn"] = sub
    edges = [("input", "rec1"), ("rec1", "rnn"), ("rnn", "out"), ("out", "out_lif"), ("out_lif", "output")]
    nested = nir.NIRGraph(nodes=nodes, edges=edges, metadata=dict(g.metadata))
    nir.write(tmp_path / "n.nir", nested)
    flat_m, nest_m = load_model(tmp_path / "n.nir"), None
    nest_m = flat_m
    flat_m = load_model_from_graph(g)
    x = spikes(spec)
    np.testing.assert_array_equal(float_reference(flat_m, x).output, float_reference(nest_m, x).output)
    _same_spec(spec, model_to_spec_exact(nest_m))


def load_model_from_graph(g):
    from snnhw.io.nir import graph_to_model

    return graph_to_model(g)


# ------------------------------------------------------------------------------------------------
# snnhw export CLI
# ------------------------------------------------------------------------------------------------
def test_export_cli_from_spec_json_checkpoint_and_nir(tmp_path, capsys):
    from snnhw.cli import main
    from snnhw.core.layers import SpikingNet
    from snnhw.io.netx import read_netx
    from snnhw.train.checkpoint import save_checkpoint

    spec = recurrent()
    run = tmp_path / "run"
    run.mkdir()
    (run / "spec.json").write_text(spec.to_json())
    assert main(["export", str(run / "spec.json"), "--format", "nir", "--out", str(tmp_path / "a.nir")]) == 0
    assert "read back with nir type check: ok" in capsys.readouterr().out
    _same_spec(spec, read_nir_spec(tmp_path / "a.nir"))
    # a training checkpoint (values) + its run directory's spec.json (structure)
    net = SpikingNet.from_spec(spec)
    save_checkpoint(str(run / "checkpoint.pt"), net, None, None, 1, {})
    assert main(["export", str(run), "--format", "nir"]) == 0
    _same_spec(net.to_spec(), read_nir_spec(run / "model.nir"))
    # NIR -> netx conversion of an snnhw-written file (netx encodes weight_exp <= 0 only)
    spec0 = recurrent()
    spec0.layers[0].weight_exp = 0
    export_nir(spec0, tmp_path / "z.nir")
    assert main(["export", str(tmp_path / "z.nir"), "--format", "netx", "--out", str(tmp_path / "z.net")]) == 0
    back = read_netx(tmp_path / "z.net")
    x = spikes(spec0)
    assert torch.equal(simulate(back, x).output, simulate(spec0, x).output)


def test_export_cli_lossy_flag(tmp_path, capsys):
    from snnhw.cli import main

    spec = mlp(quantized=False)
    spec.layers[0].neuron = Neuron(1000.5, 250.25, 3.1, reset="subtract")
    (tmp_path / "s.json").write_text(spec.to_json())
    assert main(["export", str(tmp_path / "s.json"), "--out", str(tmp_path / "s.nir")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--lossy" in err
    assert main(["export", str(tmp_path / "s.json"), "--out", str(tmp_path / "s.nir"), "--lossy"]) == 0
    assert "lossy" in capsys.readouterr().err
    assert "subtractive" in str(nir.read(tmp_path / "s.nir").metadata["snnhw.lossy"])


# ------------------------------------------------------------------------------------------------
# Property: any legal dense/recurrent spec survives export -> nir.read(type_check) -> spec exactly
# ------------------------------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@st.composite
def _dense_specs(draw):
    from snnhw.spec import Dense, NetworkSpec

    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    n_in = draw(st.integers(1, 12))
    layers, prev = [], n_in
    for i in range(draw(st.integers(1, 3))):
        n = draw(st.integers(1, 10))
        w = np.clip(2 * rng.integers(-128, 128, (n, prev)), loihi.WEIGHT_MANT_MIN, loihi.MIXED_MANT_MAX).astype(np.int64)
        neuron = Neuron(i_decay=draw(st.sampled_from([0, 1, 1024, 4095, 4096])),
                        v_decay=draw(st.sampled_from([0, 1, 256, 4096])), vth_mant=draw(st.integers(0, 131071)))
        layer = Dense(f"l{i}", w, neuron, weight_exp=draw(st.integers(-8, 7)))
        if draw(st.booleans()):
            layer.bias_mant = rng.integers(-4096, 4096, n).astype(np.int64)
        if draw(st.booleans()):
            layer.weight_rec = np.clip(2 * rng.integers(-128, 128, (n, n)), loihi.WEIGHT_MANT_MIN,
                                       loihi.MIXED_MANT_MAX).astype(np.int64)
            layer.rec_exp = draw(st.integers(-8, 7))
        layers.append(layer)
        prev = n
    return NetworkSpec(input_shape=(n_in,), layers=layers).validate()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=_dense_specs(), dt=st.sampled_from([1e-4, 1e-3, 2.5e-5]))
def test_property_any_dense_spec_round_trips(tmp_path_factory, spec, dt):
    path = tmp_path_factory.mktemp("p") / "s.nir"
    lossy_needed = any(l.bias_mant is not None and np.any(l.bias_mant != 0) and l.neuron.v_decay == 0
                       and l.neuron.i_decay != 4096 for l in spec.layers)
    if lossy_needed:
        with pytest.raises(NIRFormatError, match="no exact NIR form"):
            export_nir(spec, path, dt=dt)
        return
    export_nir(spec, path, dt=dt)
    nir.read(path)  # type check on
    back = read_nir_spec(path)
    _same_spec(spec, back)
    x = spikes(spec, samples=2, steps=12)
    assert torch.equal(simulate(spec, x).output, simulate(back, x).output)
