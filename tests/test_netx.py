"""netx HDF5 I/O: read_netx reproduces what lava-dl netx 0.6.0 builds, write_netx round-trips, and the
torch core runs netx files spike-for-spike like lava-dl's own loader on Lava's CPU simulator."""
import os
import subprocess
import sys
import zlib

import h5py
import numpy as np
import pytest
import torch

from netx_files import HAVE_LAVA_DL, cuba, lava_netx_weights, write_raw
from snnhw import loihi
from snnhw.core.network import simulate
from snnhw.backends.lava_runtime import lava_available
from snnhw.backends.netx_lava import run_netx_lava
from snnhw.errors import MissingDependencyError, MissingFileError
from snnhw.io.netx import NetxFormatError, read_netx, write_netx
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

needs_lava = pytest.mark.skipif(not HAVE_LAVA_DL, reason="lava-dl is not installed")


def torch_out(path, x):
    return simulate(read_netx(path), torch.as_tensor(x)).output.numpy().astype(np.uint8)


def spikes(rng, shape, p):
    return (rng.random(shape) < p).astype(np.int64)


# ------------------------------------------------------------------------------------------------
# Random netx files, compared against lava-dl netx on Lava (each case is one Lava build, 3 samples)
# ------------------------------------------------------------------------------------------------
def case_mixed_bias(rng):
    """Mixed even weights, positive and negative biases, medium decays."""
    return [dict(type="dense", weight=rng.integers(-40, 41, (16, 10)) * 2, bias=rng.integers(-8, 12, 16),
                 neuron=cuba(1024, 128, 60)),
            dict(type="dense", weight=rng.integers(-60, 61, (6, 16)) * 2, bias=rng.integers(-3, 6, 6),
                 neuron=cuba(300, 700, 90))], 0.3


def case_decay_edges(rng):
    """iDecay 0 / vDecay 4096 (v = u + B, no current decay), then iDecay 4096 / vDecay 0, low vth."""
    return [dict(type="dense", weight=rng.integers(-20, 41, (12, 9)) * 2, neuron=cuba(0, 4096, 40)),
            dict(type="dense", weight=rng.integers(-30, 61, (8, 12)) * 2, bias=rng.integers(-2, 3, 8),
                 neuron=cuba(4096, 0, 1)),
            dict(type="dense", weight=rng.integers(-30, 61, (5, 8)) * 2, neuron=cuba(4095, 1, 0))], 0.4


def case_thresholds_biases(rng):
    """Threshold 131071 reached through saturation by int16-range biases; a bias beyond int16 that
    wraps (40000 -> -25536); thresholds 0 and 1."""
    b1 = rng.integers(20000, 32767, 10)
    b1[::3] = 40000  # wraps to -25536 in Lava's int16 bias_mant
    return [dict(type="dense", weight=rng.integers(-100, 101, (10, 7)) * 2, bias=b1,
                 neuron=cuba(2000, 0, 131071)),
            dict(type="dense", weight=rng.integers(-10, 61, (7, 10)) * 2, neuron=cuba(100, 4000, 1)),
            dict(type="dense", weight=rng.integers(0, 61, (4, 7)), neuron=cuba(10, 30, 0))], 0.3


def case_odd_signs(rng):
    """Odd and fractional weights; excitatory odd, mixed odd (9-bit), inhibitory with -256 (-> -254),
    all <= 0 with a zero and -256 (netx mixed, Lava inhibitory -> -255)."""
    w_exc = rng.integers(0, 256, (9, 12)).astype(np.float32)
    w_exc[0, 0] = 255
    w_exc[1, :3] = [3.7, 5.2, 7.9]  # truncated to 3, 5, 7
    w_mix = rng.integers(-120, 120, (8, 9)) * 2 + 1  # odd mixed, |w| <= 239
    w_inh = -rng.integers(1, 257, (8, 8))
    w_inh[0, 0] = -256
    w_zin = -rng.integers(0, 40, (6, 8))
    w_zin[0, 0], w_zin[1, 1] = -256, 0
    w_zero = -rng.integers(0, 60, (5, 6)) * 2 - 1  # odd, <= 0 with a zero, min -255: netx 9 bits ...
    w_zero[0, 0], w_zero[1, 1] = -255, 0  # ... and Lava's negative shift zeroes every weight
    return [dict(type="dense", weight=w_exc, bias=rng.integers(-200, -60, 9), neuron=cuba(800, 300, 300)),
            dict(type="dense", weight=w_mix, bias=rng.integers(0, 30, 8), neuron=cuba(500, 200, 60)),
            dict(type="dense", weight=w_inh, bias=rng.integers(30, 120, 8), neuron=cuba(900, 100, 50)),
            dict(type="dense", weight=w_zin, bias=np.full(6, 40), neuron=cuba(1000, 2000, 20)),
            dict(type="dense", weight=w_zero, bias=np.array([10, 15, 20, 25, 30]), neuron=cuba(1000, 2000, 20))], 0.5


def case_saturation(rng):
    """64 dense inputs at weight 254, no current decay: u wraps past 2**23 and v saturates."""
    return [dict(type="dense", weight=np.full((6, 64), 254.0), neuron=cuba(0, 4096, 131071)),
            dict(type="dense", weight=np.full((4, 6), 254.0), bias=np.array([0, 5000, -5000, 20000]),
                 neuron=cuba(0, 0, 100000))], 0.9


def case_small_weights_rec(rng):
    """Small weights (large netx exponents), an input layer without neuron, a flat weight vector, and a
    dense_rec layer whose [weight | weight_rec] is re-encoded jointly."""
    w1 = rng.integers(-3, 4, (10, 8))
    return [dict(type="input", shape=np.array([8])),
            dict(type="dense", weight=w1.reshape(-1), shape=[10], bias=rng.integers(0, 2, 10),
                 neuron=cuba(200, 100, 2)),
            dict(type="dense_rec", weight=rng.integers(-50, 60, (7, 10)) * 2,
                 weight_rec=rng.integers(-40, 40, (7, 7)) * 2, bias=rng.integers(-2, 4, 7),
                 neuron=cuba(400, 300, 70)),
            dict(type="dense", weight=rng.integers(1, 9, (3, 7)), neuron=cuba(1500, 600, 6))], 0.4


def conv_layer(rng, cin, cout, k, stride, pad, shape, neuron, bias=True, scale=60):
    d = dict(type="conv", weight=(rng.integers(-scale, scale + 20, (cout, cin, *k, 1)) * 2).astype(np.float32),
             shape=shape, neuron=neuron,
             extra=dict(stride=np.array(stride), padding=np.array(pad), dilation=np.array([1, 1]), groups=1))
    if bias:
        d["bias"] = rng.integers(-5, 10, cout).astype(np.float32)
    return d


def case_conv_flatten_dense(rng):
    """(C, H, W) = (2, 5, 7) input; asymmetric kernel (3, 2), stride (1, 2), padding (1, 0); a second
    conv, flatten, dense: checks netx's kernel flips, (x, y, c) layout and flatten order."""
    return [dict(type="input", shape=[2, 5, 7]),
            conv_layer(rng, 2, 3, (3, 2), (1, 2), (1, 0), [3, 5, 3], cuba(1024, 128, 60)),
            conv_layer(rng, 3, 2, (2, 2), 1, 0, [2, 4, 2], cuba(0, 4096, 40), bias=False),
            dict(type="flatten", shape=[16]),
            dict(type="dense", weight=rng.integers(-60, 80, (4, 16)) * 2, neuron=cuba(800, 200, 30))], 0.3


def case_conv_output(rng):
    """A conv network whose output is a (C, H, W) map: the flat output order is (C, H, W) C-order;
    odd and 255 raw conv weights (Lava's Conv uses them unchanged), scalar stride/padding."""
    c1 = conv_layer(rng, 1, 2, (3, 3), 2, 1, [2, 3, 4], cuba(4096, 0, 1))
    c1["weight"][0, 0, 0, 0, 0], c1["weight"][1, 0, 1, 1, 0] = 255.0, -37.0
    return [dict(type="input", shape=[1, 6, 8]), c1,
            conv_layer(rng, 2, 3, (1, 2), 1, 0, [3, 3, 3], cuba(2000, 1000, 20))], 0.4


CASES = [case_mixed_bias, case_decay_edges, case_thresholds_biases, case_odd_signs, case_saturation,
         case_small_weights_rec, case_conv_flatten_dense, case_conv_output]


@needs_lava
@pytest.mark.parametrize("case", CASES, ids=[c.__name__[5:] for c in CASES])
def test_random_file_matches_lava(tmp_path, case):
    rng = np.random.default_rng(zlib.crc32(case.__name__.encode()))
    layers, p = case(rng)
    path = write_raw(tmp_path / "net.net", layers)
    n_in = read_netx(path).n_in
    x = spikes(rng, (3, 40, n_in), p)
    y_torch = torch_out(path, x)
    y_lava = run_netx_lava(path, x)
    assert y_torch.shape == y_lava.shape == (3, 40, read_netx(path).n_out)
    assert 0 < y_lava.sum() < y_lava.size, "case must exercise both spiking and silence"
    np.testing.assert_array_equal(y_torch, y_lava)


@needs_lava
def test_written_file_matches_lava_and_reset_is_fresh(tmp_path):
    """write_netx output loads in netx unchanged and runs identically; reusing one Lava build with
    u/v/a_buff set back to 0 between samples equals building a fresh network per sample."""
    rng = np.random.default_rng(7)
    spec = NetworkSpec((9,), [
        Dense("h", rng.integers(-50, 51, (11, 9)) * 2, Neuron(700, 250, 45), bias_mant=rng.integers(-4, 9, 11)),
        Dense("r", rng.integers(-40, 61, (6, 11)) * 2, Neuron(1200, 90, 70),
              weight_rec=rng.integers(-30, 31, (6, 6)) * 2),
        Dense("o", rng.integers(-4, 16, (4, 6)) * 4, Neuron(4096, 4096, 30), weight_exp=-1,
              bias_mant=np.array([64, -128, 0, 192]), bias_exp=0)])
    spec.validate()
    path = tmp_path / "w.net"
    write_netx(spec, path)
    x = spikes(rng, (2, 35, 9), 0.4)
    y_spec = simulate(spec, torch.as_tensor(x)).output.numpy().astype(np.uint8)
    y_lava = run_netx_lava(path, x)
    assert 0 < y_lava.sum() < y_lava.size
    np.testing.assert_array_equal(y_spec, y_lava)
    np.testing.assert_array_equal(run_netx_lava(path, x, fresh=True), y_lava)


# ------------------------------------------------------------------------------------------------
# read_netx: exact values of netx's quirks (no Lava needed)
# ------------------------------------------------------------------------------------------------
def eff(spec, i=0):
    """Effective integer weights W * 2**weight_exp of layer i (exact: netx exponents divide)."""
    layer = spec.layers[i]
    return layer.weight.astype(np.float64) * 2.0 ** layer.weight_exp


def test_read_units_and_quirks(tmp_path):
    path = write_raw(tmp_path / "q.net", [
        dict(type="dense", weight=np.array([[2.9, -3.9], [100, -254]]), bias=np.array([5.7, -70000.0]),
             neuron=cuba(1024, 128, 80)),
        dict(type="dense", weight=np.array([[1.0, 2.0]]))])  # no neuron: netx's default integrator
    spec = read_netx(path)
    l0, l1 = spec.layers
    assert (l0.neuron.i_decay, l0.neuron.v_decay, l0.neuron.vth_mant) == (1024, 128, 80)
    # .astype(int) truncation toward zero, then mixed-sign Lava Dense keeps the 9-bit mantissas
    np.testing.assert_array_equal(eff(spec), [[2, -3], [100, -254]])
    # bias: trunc 5.7 -> 5; -70000 -> int32 -70000 -> int16 wrap -> -4464; exponent 6
    np.testing.assert_array_equal(l0.bias_mant, [5, -70000 + 65536])
    assert l0.bias_exp == 6
    assert (l1.neuron.i_decay, l1.neuron.v_decay, l1.neuron.vth_mant) == (0, 4096, 1 << 17)
    assert spec.n_in == 2 and spec.n_out == 1 and spec.input_shape == (2,)


@pytest.mark.parametrize("weights, expected", [
    ([[-256, -4], [-10, -2]], [[-254, -4], [-10, -2]]),  # netx INHIBITORY, num_weight_bits 7
    ([[-256, -3], [-10, -1]], [[-255, -3], [-10, -1]]),  # netx INHIBITORY, 8 bits: Lava clips to -255
    ([[-256, 0], [-10, -2]], [[-255, 0], [-10, -2]]),  # netx MIXED (max 0), Lava INHIBITORY: -255
    ([[-255, 0], [-10, -1]], [[0, 0], [0, 0]]),  # netx MIXED 9 bits, Lava INHIBITORY shifts by -1: 0
    ([[255, 3], [7, 1]], [[255, 3], [7, 1]]),  # excitatory odd weights kept
    ([[254, -3], [5, -256]], [[254, -3], [5, -256]]),  # mixed odd survive (9-bit)
    ([[300, -3], [5, -1]], [[254, -3], [5, -1]]),  # netx clips mixed to [-256, 254]
])
def test_read_weight_reencoding_edge_cases(tmp_path, weights, expected):
    path = write_raw(tmp_path / "w.net", [dict(type="dense", weight=np.array(weights, float),
                                               neuron=cuba())])
    got = eff(read_netx(path))
    np.testing.assert_array_equal(got, np.array(expected, dtype=float))


def test_read_matches_netx_encoding_functions(tmp_path):
    """Cross-check against lava-dl's own optimize_weight_bits and Lava's weightutils on random
    matrices (no Lava runtime; imports lava-dl's pure functions)."""
    if not HAVE_LAVA_DL:
        pytest.skip("lava-dl is not installed")
    rng = np.random.default_rng(3)
    for k in range(60):
        lo, hi = [(-256, 255), (0, 256), (-256, 1), (-4, 4), (-130, 130)][k % 5]
        w = rng.integers(lo, hi, (5, 7)).astype(np.int64)
        if not w.any():
            continue
        path = write_raw(tmp_path / f"r{k}.net", [dict(type="dense", weight=w, neuron=cuba())])
        layer = read_netx(path).layers[0]
        lava_w, wexp = lava_netx_weights(w)
        np.testing.assert_array_equal(layer.weight, lava_w)
        assert layer.weight_exp == wexp


# ------------------------------------------------------------------------------------------------
# Round trip and writer errors
# ------------------------------------------------------------------------------------------------
def test_round_trip_random_specs(tmp_path):
    rng = np.random.default_rng(11)
    for k in range(25):
        n = [int(rng.integers(1, 12)) for _ in range(int(rng.integers(2, 5)))]
        layers = []
        for j in range(len(n) - 1):
            exp = int(rng.integers(-2, 1))
            w = rng.integers(-127, 128, (n[j + 1], n[j])) * 2
            w = (w >> -exp) << -exp  # divisible by 2**-exp so that w * 2**exp is an integer
            neuron = Neuron(int(rng.choice([0, 1, 700, 4095, 4096])), int(rng.choice([0, 5, 300, 4096])),
                            int(rng.choice([0, 1, 50, 131071])))
            bias = rng.integers(-4096, 4096, n[j + 1]) if rng.random() < 0.6 else None
            rec = rng.integers(-60, 61, (n[j + 1], n[j + 1])) * 2 if rng.random() < 0.3 else None
            layers.append(Dense(f"l{j}", w, neuron, weight_exp=exp, bias_mant=bias, weight_rec=rec))
        spec = NetworkSpec((n[0],), layers)
        if any(not l.weight.any() for l in layers):
            continue
        path = tmp_path / f"rt{k}.net"
        write_netx(spec, path)
        back = read_netx(path, strict=False)
        x = torch.as_tensor(spikes(rng, (4, 30, n[0]), 0.5))
        r1, r2 = simulate(spec, x, record=True), simulate(back, x, record=True)
        for t1, t2 in zip(r1.traces, r2.traces):
            assert torch.equal(t1.s, t2.s) and torch.equal(t1.u, t2.u) and torch.equal(t1.v, t2.v)


def test_write_is_netx_schema(tmp_path):
    spec = NetworkSpec((3,), [Dense("a", np.array([[2, -4, 6], [0, 8, -2]]), Neuron(100, 200, 30),
                                    bias_mant=np.array([1, -2]))])
    path = tmp_path / "s.net"
    write_netx(spec, path)
    with h5py.File(path, "r") as f:
        g = f["layer/0"]
        assert g["type"][0] == b"dense"
        assert list(g["shape"][()]) == [2]
        assert g["weight"].dtype == np.float32 and g["weight"].shape == (2, 3)
        assert "messageBits" not in g["neuron"] and not dict(g.attrs) and not dict(g["neuron"].attrs)
        assert int(g["neuron/iDecay"][()]) == 100 and int(g["neuron/vThMant"][()]) == 30
        np.testing.assert_array_equal(g["bias"][()], [1, -2])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


@pytest.mark.parametrize("layer, message", [
    (Dense("a", np.array([[3, -2]]), Neuron(), weight_exp=-1), "not an integer multiple of 2"),
    (Dense("a", np.array([[200, -2]]), Neuron(), weight_exp=1), "netx cannot store these weights"),
    (Dense("a", np.array([[2, -2]]), Neuron(), bias_mant=np.array([3]), bias_exp=2), "multiple of 64"),
    (Dense("a", np.array([[2, -2]]), Neuron(reset="subtract")), "reset v to 0"),
    (Dense("a", np.array([[2, -2]]), Neuron(i_decay=5000)), "i_decay = 5000 is outside the legal range"),
    (Dense("a", np.array([[2, -2]]), Neuron(), graded_input=True), "graded input"),
    (Dense("a", np.array([[0, 0]]), Neuron()), "all-zero weight matrix"),
])
def test_write_errors(tmp_path, layer, message):
    spec = NetworkSpec((2,), [layer])
    with pytest.raises(ValueError, match=message) as e:
        write_netx(spec, tmp_path / "e.net")
    assert "\n" not in str(e.value)
    assert not os.listdir(tmp_path)


def cnn_spec(rng):
    """Conv (asymmetric kernel/stride/padding) -> SumPool -> Flatten -> Dense, with biases."""
    return NetworkSpec((2, 6, 7), [
        Conv("c", rng.integers(-40, 60, (3, 2, 3, 2)) * 2, (2, 6, 7), Neuron(900, 300, 40), stride=(1, 2),
             padding=(1, 0), bias_mant=rng.integers(-3, 6, 3)),
        SumPool("p", (3, 6, 3), kernel=(2, 1), stride=(2, 1), weight=3, weight_exp=1, neuron=Neuron(4096, 4096, 5)),
        Flatten("f", (3, 3, 3)),
        Dense("d", rng.integers(-40, 61, (4, 27)) * 2, Neuron(1024, 128, 30), bias_mant=rng.integers(-2, 3, 4))])


def test_write_conv_pool_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    spec = cnn_spec(rng).validate()
    write_netx(spec, tmp_path / "cnn.net")
    back = read_netx(tmp_path / "cnn.net", strict=True)
    assert [l.kind for l in back.layers] == ["conv", "conv", "flatten", "dense"]  # the pool became a conv
    assert back.input_shape == (2, 6, 7)
    x = torch.as_tensor(spikes(rng, (3, 30, 84), 0.3))
    r1, r2 = simulate(spec, x, record=True), simulate(back, x, record=True)
    assert 0 < r1.output.sum() < r1.output.numel()
    for t1, t2 in zip(r1.traces, r2.traces):
        assert torch.equal(t1.s, t2.s) and torch.equal(t1.u, t2.u) and torch.equal(t1.v, t2.v)


@needs_lava
def test_written_cnn_matches_lava(tmp_path):
    rng = np.random.default_rng(9)
    spec = cnn_spec(rng)
    write_netx(spec, tmp_path / "cnn.net")
    x = spikes(rng, (2, 30, 84), 0.3)
    y_spec = simulate(spec, torch.as_tensor(x)).output.numpy().astype(np.uint8)
    y_lava = run_netx_lava(tmp_path / "cnn.net", x)
    assert 0 < y_lava.sum() < y_lava.size
    np.testing.assert_array_equal(y_spec, y_lava)


@pytest.mark.parametrize("make, message", [
    (lambda s: s.layers[0].weight.__setitem__((0, 0, 0, 0), 200) or s.layers[0].__setattr__("weight_exp", 1),
     r"conv weight 400 .* is outside -256\.\.255"),
    (lambda s: s.layers.pop(2), "needs a Flatten layer"),
    (lambda s: s.layers.insert(0, Dense("x", np.ones((84, 84)) * 2)), "after a dense or flatten"),
])
def test_write_conv_errors(tmp_path, make, message):
    spec = cnn_spec(np.random.default_rng(1))
    make(spec)
    with pytest.raises(ValueError, match=message) as e:
        write_netx(spec, tmp_path / "c.net")
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------
# Malformed and unsupported files: one-line errors naming the problem
# ------------------------------------------------------------------------------------------------
def _dense(**kw):
    d = dict(type="dense", weight=np.array([[2.0, -4.0]]), neuron=cuba())
    d.update(kw)
    return d


@pytest.mark.parametrize("layers, message", [
    ([_dense(type="conv")], r"a conv layer needs a \(C, H, W\) input"),
    ([_dense(type="pool")], "pool layers are not implemented by lava-dl netx"),
    ([_dense(type="mystery")], "unknown layer type 'mystery'"),
    ([dict(type="input", shape=[2], neuron=cuba()), _dense()], "input layer with a neuron"),
    ([_dense(), dict(type="flatten", shape=[1]), _dense(weight=np.array([[2.0]]))], "flatten after"),
    ([_dense(neuron=dict(cuba(), messageBits=3))], "messageBits"),
    ([_dense(neuron=dict(cuba(), type="SDNN"))], "type 'SDNN' is not supported"),
    ([_dense(neuron=dict(cuba(), iDecay=1024.0))], "iDecay must be an integer dataset"),
    ([_dense(neuron=dict(cuba(), vDecay=np.array([1, 2])))], "per-neuron vDecay"),
    ([_dense(neuron=dict(cuba(), iDecay=4097))], r"iDecay: i_decay = 4097 is outside the legal range 0\.\.4096"),
    ([_dense(neuron=dict(cuba(), vThMant=1 << 18))], r"vThMant = 262144 is outside the legal range"),
    ([_dense(weight=np.zeros((1, 2)))], "all-zero weight matrix"),
    ([_dense(weight=np.array([[300.0, 2.0]]))], "exceed the 8-bit range"),
    ([_dense(weight=np.array([[np.nan, 2.0]]))], "NaN"),
    ([_dense(extra={"delay": np.array([1])})], "delays"),
    ([_dense(shape=[3])], "does not match 3 output neurons"),
    ([_dense(bias=np.array([1.0, 2.0, 3.0]))], "bias of shape"),
    ([_dense(), _dense(weight=np.array([[2.0, 4.0, 6.0]]))], "expects 3 inputs but the previous layer has 1"),
    ([_dense(weight=None, shape=[1])], "missing dataset 'weight'"),
    ([dict(type="dense_rec", weight=np.array([[2.0, -4.0]]), weight_rec=np.ones((2, 2)), neuron=cuba())],
     "weight_rec of shape"),
])
def test_read_errors(tmp_path, layers, message):
    path = write_raw(tmp_path / "bad.net", layers)
    with pytest.raises(ValueError, match=message) as e:
        read_netx(path)
    assert "\n" not in str(e.value) and "bad.net" in str(e.value)


def _conv_net(**kw):
    conv = dict(type="conv", weight=np.ones((2, 1, 2, 2), np.float32) * 2, shape=[2, 2, 2], neuron=cuba(),
                extra=dict(stride=1, padding=0, dilation=1, groups=1))
    extra = dict(conv["extra"], **kw.pop("extra", {}))
    conv.update(kw)
    conv["extra"] = extra
    return [dict(type="input", shape=[1, 3, 3]), conv]


@pytest.mark.parametrize("layers, message", [
    (_conv_net(extra=dict(dilation=2)), "dilated convolutions are not supported"),
    (_conv_net(extra=dict(groups=2)), "grouped convolutions are not supported"),
    (_conv_net(bias=np.ones((2, 2, 2))), "conv bias must be channel-wise"),
    (_conv_net(shape=[2, 3, 3]), r"shape \[2, 3, 3\] does not match the convolution's output \[2, 2, 2\]"),
    (_conv_net(weight=np.ones((2, 3, 2, 2))), "weight expects 3 input channels, the input has 1"),
    (_conv_net(weight=np.ones((2, 1, 2, 2)) * 1e7), "Lava's Conv wraps at 24 bits"),
    (_conv_net(extra=dict(delay=np.ones(2))), "delays"),
    (_conv_net() + [_dense(weight=np.ones((1, 8)))], "needs a flatten layer"),
    (_conv_net() + [dict(type="flatten"), _dense(weight=np.ones((1, 9)))], "expects 9 inputs but the previous "
                                                                          "layer has 8"),
])
def test_read_conv_errors(tmp_path, layers, message):
    path = write_raw(tmp_path / "bad.net", layers)
    with pytest.raises(ValueError, match=message) as e:
        read_netx(path)
    assert "\n" not in str(e.value)


def test_read_conv_values(tmp_path):
    rng = np.random.default_rng(0)
    layers, _ = case_conv_flatten_dense(rng)
    layers[1]["weight"][0, 0, 0, 0, 0] = 3.9  # truncated to 3, used raw (no LSB clearing for conv)
    spec = read_netx(write_raw(tmp_path / "c.net", layers))
    conv, conv2, flat, dense = spec.layers
    assert spec.input_shape == (2, 5, 7) and spec.n_in == 70 and spec.n_out == 4
    assert conv.stride == (1, 2) and conv.padding == (1, 0) and conv.weight_exp == 0
    assert conv.weight[0, 0, 0, 0] == 3 and conv.weight.shape == (3, 2, 3, 2)
    np.testing.assert_array_equal(conv.bias_mant, layers[1]["bias"].astype(int))
    assert conv2.out_shape == (2, 4, 2) and flat.input_shape == (2, 4, 2) and dense.n_in == 16


def test_read_errors_files(tmp_path):
    with pytest.raises(MissingFileError) as e:
        read_netx(tmp_path / "missing.net")
    assert str(e.value) == f"{tmp_path / 'missing.net'}: no such file"
    (tmp_path / "text.net").write_text("not hdf5")
    with pytest.raises(NetxFormatError, match="not a readable HDF5 file"):
        read_netx(tmp_path / "text.net")
    good = write_raw(tmp_path / "good.net", [_dense(weight=np.ones((40, 300)) * 2)])
    data = open(good, "rb").read()
    (tmp_path / "trunc.net").write_bytes(data[: len(data) // 2])
    with pytest.raises(NetxFormatError) as e:
        read_netx(tmp_path / "trunc.net")
    assert "\n" not in str(e.value)
    with h5py.File(tmp_path / "nolayer.net", "w") as f:
        f.create_group("model")
    with pytest.raises(NetxFormatError, match="no 'layer' group"):
        read_netx(tmp_path / "nolayer.net")
    with h5py.File(tmp_path / "gap.net", "w") as f:
        f.create_group("layer/1")
    with pytest.raises(NetxFormatError, match="group 'layer/0' missing"):
        read_netx(tmp_path / "gap.net")


@pytest.mark.parametrize("delta, reason", [
    (0, "Unable to synchronously open object (bad object header version number)"),
    (88, "Insufficient precision in available types to represent (31, 23, 8, 0, 23)"),  # datatype message
])
def test_read_damaged_object_header(tmp_path, delta, reason):
    """Bytes of the weight dataset's object header overwritten: h5py's error, named, in one line."""
    path = write_raw(tmp_path / "d.net", [_dense(weight=np.ones((4, 3)) * 2, bias=np.ones(4))])
    with h5py.File(path, "r") as f:
        addr = h5py.h5o.get_info(f["layer/0/weight"].id).addr
    data = bytearray(path.read_bytes())
    data[addr + delta:addr + delta + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    with pytest.raises(NetxFormatError) as e:
        read_netx(path)
    assert str(e.value) == f"{path}: layer 0: cannot read 'weight' (corrupt file: {reason})"


def test_write_needs_an_existing_folder(tmp_path):
    spec = NetworkSpec((2,), [Dense("a", np.array([[2, -2]]), Neuron())])
    with pytest.raises(MissingFileError) as e:
        write_netx(spec, tmp_path / "no" / "m.net")
    assert str(e.value) == f"{tmp_path / 'no' / 'm.net'}: output folder {tmp_path / 'no'} does not exist"
    assert not (tmp_path / "no").exists()


@pytest.mark.skipif(not lava_available(), reason="lava-nc is not installed")
def test_run_netx_lava_without_lava_dl(tmp_path, monkeypatch):
    path = write_raw(tmp_path / "n.net", [_dense()])
    monkeypatch.setitem(sys.modules, "lava.lib.dl.netx", None)  # import of it raises ModuleNotFoundError
    with pytest.raises(MissingDependencyError) as e:
        run_netx_lava(path, np.zeros((1, 2, 2)))
    assert str(e.value) == ("lava-dl is not installed (no module 'lava.lib.dl.netx'): running a netx file on "
                            "Lava needs lava-dl 0.6 (pip install 'snnhw[lava]' on Python 3.10)")


def test_strict_read_applies_chip_ranges(tmp_path):
    path = write_raw(tmp_path / "big.net", [_dense(bias=np.array([5000.0]))])
    assert read_netx(path).layers[0].bias_mant.tolist() == [5000]  # Lava's int16 holds it
    with pytest.raises(loihi.RangeError, match=r"bias_mant = 5000 is outside the legal range -4096\.\.4095"):
        read_netx(path, strict=True)


def test_reader_does_not_import_lava(tmp_path):
    path = write_raw(tmp_path / "n.net", [_dense(bias=np.array([1.0]))])
    code = ("import sys; from snnhw.io.netx import read_netx; read_netx(sys.argv[1]); "
            "bad = [m for m in sys.modules if m == 'lava' or m.startswith('lava.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)


# ------------------------------------------------------------------------------------------------
# Many random files (slow): every parameter at and between its edges
# ------------------------------------------------------------------------------------------------
def random_file_layers(rng):
    """1-4 layers, widths 1-24, decays/thresholds/biases drawn from their edges and interiors, weight
    matrices of every sign kind (odd, fractional, -256, all-negative, all-positive, small)."""
    sizes = [int(rng.integers(1, 25)) for _ in range(int(rng.integers(2, 6)))]
    layers = []
    for j in range(len(sizes) - 1):
        shape = (sizes[j + 1], sizes[j])
        kind = rng.choice(["mixed_even", "mixed_odd", "exc", "inh", "small", "float"])
        if kind == "mixed_even":
            w = rng.integers(-128, 128, shape) * 2.0
        elif kind == "mixed_odd":
            w = rng.integers(-256, 255, shape).astype(float)
        elif kind == "exc":
            w = rng.integers(0, 256, shape).astype(float)
        elif kind == "inh":
            w = -rng.integers(0, 257, shape).astype(float)
        elif kind == "small":
            w = rng.integers(-3, 4, shape).astype(float)
        else:
            w = rng.uniform(-200, 250, shape)
        if not np.trunc(w).any():
            w.flat[0] = 2.0
        neuron = cuba(int(rng.choice([0, 1, 2, 100, 1024, 2048, 4095, 4096])),
                      int(rng.choice([0, 1, 2, 100, 1024, 4095, 4096])),
                      int(rng.choice([0, 1, 5, 40, 100, 1000, 131071])))
        bias = None
        if rng.random() < 0.6:
            bias = rng.integers(-int(rng.choice([2, 50, 4096, 40000])), int(rng.choice([3, 60, 4096, 40000])),
                                shape[0]).astype(float)
        ltype = "dense_rec" if rng.random() < 0.2 else "dense"
        layer = dict(type=ltype, weight=w, bias=bias, neuron=neuron)
        if ltype == "dense_rec":
            layer["weight_rec"] = rng.integers(-60, 61, (shape[0], shape[0])) * 2.0
        layers.append(layer)
    return layers


@needs_lava
@pytest.mark.slow
def test_many_random_files_match_lava(tmp_path):
    rng = np.random.default_rng(20261126)
    n_files = n_spikes = n_values = 0
    for k in range(40):
        layers = random_file_layers(rng)
        path = write_raw(tmp_path / f"r{k}.net", layers)
        try:
            spec = read_netx(path)
        except loihi.RangeError:  # netx cannot encode it (e.g. an all-zero matrix): also rejected
            continue
        T = int(rng.integers(1, 50))
        x = spikes(rng, (2, T, spec.n_in), float(rng.choice([0.05, 0.3, 0.9])))
        y_lava = run_netx_lava(path, x)
        np.testing.assert_array_equal(torch_out(path, x), y_lava, err_msg=f"file {k}")
        n_files += 1
        n_spikes += int(y_lava.sum())
        n_values += y_lava.size
    print(f"\n{n_files} random netx files: torch == Lava on {n_values} output values ({n_spikes} spikes)")
    assert n_files >= 35 and 0 < n_spikes < n_values
