"""The Lava backend (snnhw.backends.lava): run_lava against the core, batching, recorders, conv/pool,
hardware detection and its one-line errors."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from snnhw import loihi
from snnhw.backends import lava as lb
from snnhw.backends import lava_pack, lava_runtime
from snnhw.errors import InputError, MissingDependencyError
from snnhw.core.network import simulate
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool

needs_lava = pytest.mark.skipif(not lb.lava_available(), reason="lava-nc is not installed")


def _w(rng, out, inp, lo=-256, hi=256):
    return loihi.dense_effective_weights(rng.integers(lo, hi, (out, inp)))[0]


def mlp(seed=0, n_in=12, hidden=16, n_out=5, rec=False, graded=False):
    rng = np.random.default_rng(seed)
    l1 = Dense("h", _w(rng, hidden, n_in), Neuron(1024, 128, 60), weight_exp=0 if not graded else -6,
               bias_mant=rng.integers(-40, 40, hidden), graded_input=graded)
    if rec:
        l1.weight_rec, l1.rec_exp = _w(rng, hidden, hidden), -1
    l2 = Dense("o", _w(rng, n_out, hidden), Neuron(512, 256, 30), weight_exp=1)
    return NetworkSpec((n_in,), [l1, l2]).validate()


def _assert_same(res, sim):
    for i, (ls, tr) in enumerate(zip(res.layer_spikes, sim.traces)):
        assert np.array_equal(ls, tr.s.numpy().astype(np.int64)), f"layer {i} spikes"
        if res.traces is not None:
            u, v = res.traces[i]
            assert np.array_equal(u, tr.u.numpy()), f"layer {i} u"
            assert np.array_equal(v, tr.v.numpy()), f"layer {i} v"


# ---- detection ----------------------------------------------------------------------------------
def test_lava_available_matches_import():
    import importlib.util

    present = importlib.util.find_spec("lava") is not None and importlib.util.find_spec("lava.proc.lif") is not None
    assert lb.lava_available() == present


@needs_lava
def test_hardware_detection_follows_lava_loihi(monkeypatch):
    from lava.utils import loihi as lava_loihi

    assert lb.loihi2_hardware_available() == lava_loihi.is_installed()
    monkeypatch.setattr(lava_loihi, "is_installed", lambda *a, **k: True)
    assert lb.loihi2_hardware_available() is True
    monkeypatch.setattr(lava_loihi, "is_installed", lambda *a, **k: False)
    assert lb.loihi2_hardware_available() is False


def test_no_hardware_without_lava(monkeypatch):
    monkeypatch.setattr(lava_runtime, "lava_available", lambda: False)
    assert lb.loihi2_hardware_available() is False
    for call in (lambda: lb.run_lava(mlp(), np.zeros((1, 3, 12))),
                 lambda: lb.run_stages([lb.LavaStage(weights=np.ones((1, 1)), shape=(1,))], np.ones((1, 2)))):
        with pytest.raises(MissingDependencyError) as e:
            call()
        assert str(e.value) == ("lava-nc is not installed: the Lava backend needs lava-nc 0.10 "
                                "(pip install 'snnhw[lava]' on Python 3.10)")


@pytest.mark.skipif(not lb.loihi2_hardware_available(),
                    reason="lava-loihi is not installed: no Loihi 2 hardware path on this machine")
def test_hardware_run_matches_core():
    spec = mlp(1)
    x = (np.random.default_rng(1).random((2, 20, 12)) < 0.3).astype(np.int64)
    res = lb.run_lava(spec, x, hardware=True)
    assert res.backend == lb.BACKEND_HW
    assert np.array_equal(res.output, simulate(spec, x).output.numpy().astype(np.int64))


@needs_lava
def test_cpu_backend_reported_and_hardware_refused_here():
    if lb.loihi2_hardware_available():
        pytest.skip("lava-loihi is installed here")
    res = lb.run_lava(mlp(), np.ones((1, 2, 12), np.int64))
    assert res.backend == lb.BACKEND_SIM == "lava-cpu-sim"
    with pytest.raises(MissingDependencyError, match="Loihi 2 hardware requested but lava-loihi is not installed"):
        lb.run_lava(mlp(), np.ones((1, 2, 12), np.int64), hardware=True)


def test_backend_module_imports_without_lava():
    code = ("import sys; import snnhw.backends.lava, snnhw.backends.netx_lava, snnhw.core.network, snnhw.spec; "
            "bad = [m for m in sys.modules if m == 'lava' or m.startswith('lava.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- run_lava vs the core ------------------------------------------------------------------------
@needs_lava
def test_run_lava_matches_core_with_traces_and_layout():
    spec = mlp(2)
    x = (np.random.default_rng(2).random((7, 25, 12)) < 0.3).astype(np.int64)
    res = lb.run_lava(spec, x, record=True, batch=3)  # chunks of 3, 3, 1
    assert res.output.shape == (7, 25, 5) and res.output.dtype == np.int64
    assert len(res.layer_spikes) == 2 and res.layer_spikes[0].shape == (7, 25, 16)
    assert res.traces[0][0].shape == (7, 25, 16)
    sim = simulate(spec, x, record=True)
    _assert_same(res, sim)
    assert res.output.sum() > 0 and res.layer_spikes[0].sum() > 0


@needs_lava
def test_batch_sizes_agree():
    spec = mlp(3, rec=True)
    x = (np.random.default_rng(3).random((5, 15, 12)) < 0.4).astype(np.int64)
    outs = [lb.run_lava(spec, x, batch=b).layer_spikes for b in (1, 2, 5)]
    for o in outs[1:]:
        for a, b in zip(outs[0], o):
            assert np.array_equal(a, b)
    assert lb.run_lava(spec, x).output.shape == (5, 15, 5)  # default batch


@needs_lava
def test_recurrent_and_graded_specs_match_core():
    rng = np.random.default_rng(4)
    for spec, x in [(mlp(4, rec=True), (rng.random((3, 30, 12)) < 0.3).astype(np.int64)),
                    (mlp(5, graded=True), rng.integers(-2000, 2000, (3, 30, 12)))]:
        _assert_same(lb.run_lava(spec, x, record=True), simulate(spec, x, record=True))


@needs_lava
def test_recorders_equal_lavas_own_sink_and_monitor():
    rng = np.random.default_rng(6)
    st = lb.LavaStage(weights=rng.integers(-100, 100, (6, 4)), shape=(6,), du=200, dv=100, vth=20,
                      bias_mant=rng.integers(-20, 20, 6), bias_exp=6, weights_rec=rng.integers(-50, 50, (6, 6)))
    data = (rng.random((4, 17)) < 0.5).astype(np.int64)
    fast = lb.run_stages([st], data, record=True)[0]
    slow = lb.run_stages([st], data, record=True, probes="lava")[0]
    for a, b in ((fast.s, slow.s), (fast.u, slow.u), (fast.v, slow.v)):
        assert np.array_equal(a, b)
    assert fast.s.sum() > 0


@needs_lava
@pytest.mark.parametrize("seed", [0, 1])
def test_conv_pool_flatten_dense_match_core(seed):
    rng = np.random.default_rng(seed)
    conv = Conv("c", rng.integers(-256, 256, (3, 2, 3, 2)), (2, 8, 7), Neuron(1024, 256, 60),
                stride=(1 + seed, 2 - seed), padding=(1, seed), bias_mant=rng.integers(-30, 30, 3))
    pool = SumPool("p", conv.out_shape, kernel=(2, 2), stride=(2, 1), weight=100, neuron=Neuron(2048, 512, 50))
    n_flat = int(np.prod(pool.out_shape))
    spec = NetworkSpec((2, 8, 7), [conv, pool, Flatten("f", pool.out_shape),
                                   Dense("d", _w(rng, 5, n_flat), Neuron(512, 128, 40))]).validate()
    x = (rng.random((3, 15, 2 * 8 * 7)) < 0.3).astype(np.int64)
    res = lb.run_lava(spec, x, record=True)
    _assert_same(res, simulate(spec, x, record=True))
    assert all(s.sum() > 0 for s in res.layer_spikes)


@needs_lava
def test_conv_batches_stay_under_lavas_int8_groups():
    """Lava's Conv keeps ``groups`` in an int8. A small digits CNN (conv 8@8x8 -> pool 2x2 -> dense
    10) packed 16 copies gives the pool 128 groups, which wrapped to -128 and silenced it (39,000 wrong
    spikes on 32 samples); the default batch now stays at <= 127 groups and every sample equals the core."""
    rng = np.random.default_rng(7)
    conv = Conv("c", 2 * rng.integers(-40, 40, (8, 1, 3, 3)), (1, 8, 8), Neuron(1024, 256, 60), padding=(1, 1))
    pool = SumPool("p", conv.out_shape, kernel=(2, 2), weight=64, neuron=Neuron(4096, 4096, 60))
    spec = NetworkSpec((1, 8, 8), [conv, pool, Flatten("f", pool.out_shape),
                                   Dense("d", _w(rng, 10, 128), Neuron(1024, 256, 40))]).validate()
    assert lava_pack.default_batch(spec, 1000) == lava_pack.MAX_CONV_GROUPS // 8 == 127 // 8
    x = (rng.random((40, 16, 64)) < 0.3).astype(np.int64)
    res = lb.run_lava(spec, x)
    sim = simulate(spec, x)
    for a, b in zip(res.layer_spikes, sim.layer_spikes):
        assert np.array_equal(a, b.numpy())
    assert all(s.sum() > 0 for s in res.layer_spikes)
    with pytest.raises(InputError) as e:
        lb.run_lava(spec, x, batch=16)
    assert str(e.value) == ("batch 16 gives a Lava Conv more than 127 groups (Lava stores groups as int8); "
                            "use batch <= 15")


# ---- errors ---------------------------------------------------------------------------------------
@needs_lava
def test_conv_with_weight_exp_is_refused_in_one_line():
    conv = Conv("c", np.ones((1, 1, 2, 2), np.int64), (1, 4, 4), weight_exp=2)
    spec = NetworkSpec((1, 4, 4), [conv])
    with pytest.raises(InputError) as e:
        lb.run_lava(spec, np.zeros((1, 2, 16)))
    assert str(e.value) == ("layer c: Lava's Conv ignores weight_exp (got 2); the Lava backend runs "
                            "conv/pool layers only with weight_exp 0")


@needs_lava
def test_conv_whose_sums_reach_2_23_is_refused_in_one_line():
    """Lava's Conv wraps its sum at 24 bits, the core does not: loihi.conv_sum_bound decides."""
    k = 182  # 182 * 182 inputs at the largest 8-bit weight: a sum of 8446620 >= 2**23
    w = np.full((1, 1, k, k), loihi.WEIGHT_MANT_MAX, np.int64)
    spec = NetworkSpec((1, k, k), [Conv("c", w, (1, k, k))])
    assert loihi.conv_sum_bound(w) >= loihi.CONV_SUM_LIMIT > loihi.conv_sum_bound(w[:, :, 2:])
    with pytest.raises(InputError) as e:
        lb.run_lava(spec, np.zeros((1, 2, k * k)))
    assert str(e.value) == ("layer c: conv sums can reach 8446620 >= 2**23, where Lava's Conv wraps to 24 "
                            "bits and the core does not")


@needs_lava
@pytest.mark.parametrize("kwargs,x,match", [
    ({}, np.zeros((1, 3, 11)), r"inputs must be shaped \[samples, steps, 12\]"),
    ({}, np.zeros((3, 12)), "inputs must be shaped"),
    ({}, np.full((1, 2, 12), 0.5), "inputs must be integers"),
    ({"batch": 0}, np.zeros((1, 2, 12)), "batch must be >= 1"),
    ({}, np.zeros((1, 0, 12)), "at least one time step"),
])
def test_bad_inputs_raise_one_line_errors(kwargs, x, match):
    with pytest.raises(ValueError, match=match) as e:
        lb.run_lava(mlp(), x, **kwargs)
    assert "\n" not in str(e.value)


@needs_lava
def test_bad_specs_raise_one_line_errors():
    spec = mlp()
    spec.layers[0].neuron.vth_mant = 1 << 17
    with pytest.raises(loihi.RangeError, match="vth_mant = 131072 is outside the legal range 0..131071"):
        lb.run_lava(spec, np.zeros((1, 2, 12)))
    spec = mlp()
    spec.quantized = False
    with pytest.raises(ValueError, match="quantized"):
        lb.run_lava(spec, np.zeros((1, 2, 12)))
    spec = mlp(graded=True)
    with pytest.raises(ValueError, match="int32"):
        lb.run_lava(spec, np.full((1, 2, 12), 1 << 31))
    with pytest.raises(ValueError, match="record=True"):
        lb.run_stages([lb.LavaStage(weights=np.ones((1, 1)), shape=(1,))], np.ones((1, 2)), record=True,
                      hardware=True)


@needs_lava
def test_empty_sample_set_returns_empty_arrays():
    res = lb.run_lava(mlp(), np.zeros((0, 4, 12)))
    assert res.output.shape == (0, 4, 5) and len(res.layer_spikes) == 2


@needs_lava
def test_explicit_sign_mode_reaches_lava():
    """weights [3, 5]: derived excitatory keeps them (a = 8); explicit MIXED clears the LSB (2 + 4 = 6)."""
    data = np.ones((2, 2), np.int64)
    u = {}
    for mode in (None, int(loihi.SignMode.MIXED)):
        st = lb.LavaStage(weights=np.array([[3, 5]]), shape=(1,), du=4095, dv=0, vth=131071, sign_mode=mode)
        u[mode] = lb.run_stages([st], data, record=True)[0].u[0, 1]
    assert u[None] == 8 << 6 and u[int(loihi.SignMode.MIXED)] == 6 << 6
