"""Trainable layers: what the model computes is exactly what simulate(model.to_spec()) -- and Lava -- run."""
import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.core.layers import (FlattenLayer, SpikingConv, SpikingDense, SpikingNet, SpikingSumPool,
                               quantize_weight)
from snnhw.loihi import weight_grid
from snnhw.core.network import simulate
from snnhw.spec import Neuron


def _fill(model, seed, std=60.0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for l in model.neuron_layers():
            if hasattr(l, "weight") and isinstance(l.weight, torch.nn.Parameter):
                l.weight.copy_(torch.randn(l.weight.shape, generator=g) * std)
            if getattr(l, "weight_rec", None) is not None:
                l.weight_rec.copy_(torch.randn(l.weight_rec.shape, generator=g) * std / 2)
            if getattr(l, "bias", None) is not None:
                l.bias.copy_(torch.randn(l.bias.shape, generator=g) * 4)


def _mlp(quantized=True, exps=(-2, 0), rec=True):
    n1 = Neuron(i_decay=2048, v_decay=512, vth_mant=300)
    n2 = Neuron(i_decay=1024, v_decay=128, vth_mant=200)
    return SpikingNet((40,), [SpikingDense("fc1", 40, 24, n1, recurrent=rec, bias=True, weight_exp=exps[0],
                                           rec_exp=-1, quantized=quantized),
                              SpikingDense("fc2", 24, 10, n2, weight_exp=exps[1], quantized=quantized)],
                      quantized=quantized)


def _cnn(quantized=True):
    n = Neuron(i_decay=1024, v_decay=256, vth_mant=150)
    c1 = SpikingConv("conv1", (1, 8, 8), 4, 3, n, padding=1, bias=True, quantized=quantized)
    p1 = SpikingSumPool("pool1", c1.out_shape, 2, Neuron(i_decay=4096, v_decay=4096, vth_mant=60),
                        pool_weight=64, quantized=quantized)
    f = FlattenLayer("flat", p1.out_shape)
    d = SpikingDense("fc", int(np.prod(p1.out_shape)), 10, n, quantized=quantized)
    return SpikingNet((1, 8, 8), [c1, p1, f, d], quantized=quantized)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("make", [_mlp, _cnn])
def test_forward_equals_simulate_of_spec(seed, make):
    torch.manual_seed(seed)
    m = make()
    _fill(m, seed)
    for l in m.neuron_layers():
        l.legalize_constants()
    x = (torch.rand(6, 18, m.n_in) < 0.3).float()
    out, layers = m(x, return_all=True)
    spec = m.to_spec()
    sim = simulate(spec, x.numpy())
    assert out.sum() > 0, "test network must spike to mean anything"
    assert torch.equal(out, sim.output.to(out.dtype))
    for a, b in zip(layers, sim.layer_spikes):
        assert torch.equal(a, b.to(a.dtype))


def test_float_model_equals_float_simulate():
    m = _mlp(quantized=False)
    _fill(m, 3)
    x = (torch.rand(4, 15, 40) < 0.3).float()
    out = m(x)
    spec = m.to_spec()
    assert not spec.quantized
    assert torch.equal(out, simulate(spec, x.numpy()).output.to(out.dtype))


def test_spec_round_trip_and_legal_values():
    m = _mlp()
    _fill(m, 4, std=300.0)  # far beyond the 8-bit range: quantization must clamp
    spec = m.to_spec()  # validate() inside: legal Loihi integers
    for l in spec.neuron_layers():
        w = np.asarray(l.weight)
        step, lim = weight_grid(l.weight_exp)
        assert np.all(w % step == 0) and np.abs(w).max() <= lim
        eff, _ = loihi.dense_effective_weights(w)
        assert np.array_equal(eff, w)
    m2 = SpikingNet.from_spec(spec)
    x = (torch.rand(3, 12, 40) < 0.4).float()
    assert torch.equal(m(x), m2(x))
    assert m2.to_spec().to_json() == spec.to_json()


def test_positive_exponent_is_folded_into_weights():
    m = _mlp(exps=(2, 0))
    _fill(m, 5, std=10.0)
    before = m.layers[0].weight.detach().clone()
    m.layers[0].legalize_constants()
    assert m.layers[0].weight_exp == 0
    assert torch.allclose(m.layers[0].weight, before * 4)


def test_quantizer_grid_and_straight_through():
    w = torch.tensor([-300.0, -3.0, -1.2, 0.4, 1.0, 2.9, 129.0, 400.0], requires_grad=True)
    q = quantize_weight(w, 0)
    assert q.tolist() == [-254.0, -4.0, -2.0, 0.0, 0.0, 2.0, 128.0, 254.0]
    q.sum().backward()
    assert w.grad.tolist() == [0, 1, 1, 1, 1, 1, 1, 0]
    assert quantize_weight(torch.tensor([5.0, 7.0, 254.0]), -3).tolist() == [8.0, 8.0, 248.0]


def test_gradients_reach_every_parameter():
    m = _mlp()
    _fill(m, 6)
    x = (torch.rand(8, 20, 40) < 0.3).float()
    out = m(x)
    loss = torch.nn.functional.cross_entropy(out.sum(1), torch.arange(8) % 10)
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_layer_constants_are_buffers_in_the_state_dict():
    """vth_mant, decays and exponents live in state_dict: a fresh model of the same structure loading it
    computes the same thing (a checkpoint is a plain state_dict)."""
    m = _cnn()
    _fill(m, 7)
    m.layers[0].neuron = Neuron(i_decay=1000, v_decay=200, vth_mant=123)
    m.layers[1].pool_weight = 40
    m.layers[3].weight_exp = -1
    sd = m.state_dict()
    for key in ("layers.0.vth_mant", "layers.0.i_decay", "layers.0.v_decay", "layers.0.weight_exp",
                "layers.1.pool_weight", "layers.3.weight_exp"):
        assert key in sd and sd[key].dtype == torch.int64
    fresh = _cnn()
    assert fresh.layers[0].vth_mant == 150
    fresh.load_state_dict(sd)
    assert fresh.layers[0].neuron == Neuron(i_decay=1000, v_decay=200, vth_mant=123)
    assert (fresh.layers[1].pool_weight, fresh.layers[3].weight_exp) == (40, -1)
    assert isinstance(fresh.layers[0].vth_mant, int)
    x = (torch.rand(3, 10, 64) < 0.4).float()
    assert torch.equal(m(x), fresh(x))
    assert fresh.to_spec().to_json() == m.to_spec().to_json()
    r = SpikingDense("r", 4, 3, Neuron(), recurrent=True, rec_exp=-2)
    assert r.state_dict()["rec_exp"].item() == -2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_model_runs_on_the_accelerator_with_identical_exact_spikes():
    """The whole forward (synapses and the neuron loop) runs on the input's device; the exact path gives
    the CPU's spikes bit for bit, and gradients come back on the device."""
    for make in (_mlp, _cnn):
        m = make()
        _fill(m, 8)
        x = (torch.rand(4, 12, m.n_in) < 0.3).float()
        ref = m(x)
        m.cuda()
        out = m(x.cuda())
        assert out.device.type == "cuda" and torch.equal(out.cpu(), ref)
        out.sum().backward()
        assert all(p.grad.device.type == "cuda" for p in m.parameters() if p.grad is not None)
