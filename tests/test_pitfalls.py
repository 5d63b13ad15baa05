"""One named test per numeric rule of the reference's Pitfalls list (§8) that issue 2 names.

Each rule is checked three ways where feasible: the core (:mod:`snnhw.loihi`, :mod:`snnhw.core`)
against hand-computed integers, against Lava's own fixed-point process models stepped directly
(tests/lava_models.py), and, for the timing rules, against a real Lava run of a netx file.
"""
import numpy as np
import pytest
import torch

from netx_files import HAVE_LAVA_DL, cuba, lava_netx_weights, write_raw
from snnhw import loihi
from snnhw.core.network import simulate
from snnhw.core.neuron import CubaParams, cuba_lif_trace
from snnhw.backends.netx_lava import run_netx_lava
from snnhw.io.netx import read_netx
from snnhw.spec import Dense, NetworkSpec, Neuron

pytestmark = pytest.mark.skipif(not HAVE_LAVA_DL, reason="lava-nc/lava-dl are not installed")

if HAVE_LAVA_DL:
    from lava_models import lava_dense, lava_lif, run_chain, step_lif


def core_trace(a, i_decay, v_decay, vth, bias=None):
    """Core LIF traces for one neuron population fed ``a`` [T, N] (int); returns numpy s, u, v [T, N]."""
    a = torch.as_tensor(np.asarray(a, dtype=np.int64))[None]
    b = None if bias is None else torch.as_tensor(np.asarray(bias, dtype=np.int64))
    tr = cuba_lif_trace(a, CubaParams(i_decay, v_decay, vth), b)
    return tr.s[0].numpy(), tr.u[0].numpy(), tr.v[0].numpy()


def lava_trace(a, du, dv, vth, bias_mant=0, bias_exp=0):
    a = np.asarray(a, dtype=np.int64)
    m = lava_lif(a.shape[1], du, dv, vth, bias_mant, bias_exp)
    out = [step_lif(m, a[t]) for t in range(a.shape[0])]
    return tuple(np.stack([o[k] for o in out]) for k in range(3))


def assert_same(core, lava):
    for c, l, name in zip(core, lava, ("s", "u", "v")):
        np.testing.assert_array_equal(np.asarray(c).astype(np.int64), np.asarray(l).astype(np.int64),
                                      err_msg=name)


# ------------------------------------------------------------------------------------------------
def test_pitfall_du_plus_one_for_current_only():
    """Lava's current decays by (4096 - (du + 1)), the voltage by (4096 - dv): netx's iDecay maps to
    du = iDecay - 1, vDecay to dv = vDecay unchanged."""
    a = np.array([[1000], [0], [0], [-7], [0]])
    # hand: iDecay = 1 -> du = 0 -> factor 4095: 64000 -> trunc(64000 * 4095 / 4096) = 63984
    s, u, v = core_trace(a, i_decay=1, v_decay=0, vth=131071)
    assert u[:2, 0].tolist() == [64000, 63984]
    assert v[:2, 0].tolist() == [64000, 64000 + 63984]  # v_decay 0: no voltage decay at all
    assert_same((s, u, v), lava_trace(a, du=0, dv=0, vth=131071))
    # du = 0 in Lava is not "no decay"; iDecay 0 (du = -1) is
    _, u0, _ = core_trace(a, i_decay=0, v_decay=0, vth=131071)
    assert u0[:3, 0].tolist() == [64000, 64000, 64000]
    assert loihi.lava_du(0) == -1 and loihi.lava_dv(1) == 1
    # the voltage takes no offset: v_decay = d and dv = d give the same factor (4096 - d)
    for i_decay in (0, 1, 2, 1024, 4095, 4096):
        for v_decay in (0, 1, 2, 1024, 4095, 4096):
            assert_same(core_trace(a, i_decay, v_decay, 131071),
                        lava_trace(a, du=loihi.lava_du(i_decay), dv=loihi.lava_dv(v_decay), vth=131071))
    # and using du = iDecay (no -1) would differ
    _, u_wrong, _ = lava_trace(a, du=1, dv=0, vth=131071)
    assert u_wrong[1, 0] == 63968 != u[1, 0]


def test_pitfall_decays_round_toward_zero_exponents_floor():
    """u and v decays round toward zero (sign-magnitude); weight_exp and a negative bias_exp floor."""
    a = np.array([[-1000], [0]])
    s, u, v = core_trace(a, i_decay=1, v_decay=1, vth=131071)
    # -64000 * 4095 / 4096 = -63984.375 -> -63984 (floor would give -63985)
    assert u[:, 0].tolist() == [-64000, -63984]
    assert v[:, 0].tolist() == [-64000, -63984 + -63984]  # v: trunc(-64000*4095/4096) + u
    assert_same((s, u, v), lava_trace(a, du=0, dv=1, vth=131071))
    # weight_exp = -1 floors the sum: -1 -> -1, -3 -> -2, 1 -> 0, 3 -> 1
    w = np.array([[-1, 0, 0], [-3, 0, 0], [1, 0, 0], [3, 0, 0]])
    x = np.array([[1, 0, 0], [0, 0, 0]])
    core = loihi.dense_accumulate(torch.as_tensor(x), torch.as_tensor(w), -1)[0].tolist()
    assert core == [-1, -2, 0, 1]
    lava = []
    for mant in (-1, -3, 1, 3):
        dd = lava_dense(np.array([[mant]]), weight_exp=-1)
        dd.s_in.value = np.array([1])
        dd.run_spk()
        dd.run_spk()
        lava.append(int(dd.a_out.sent[0]))
    assert lava == core
    # bias: mant >> -exp floors (-3 >> 1 = -2, 3 >> 1 = 1), as Lava's scale_bias
    b = loihi.effective_bias(torch.tensor([-3, 3, -1, 5]), -1).tolist()
    m = lava_lif(4, 0, 0, 10, np.array([-3, 3, -1, 5]), -1)
    m.scale_bias()
    assert b == [-2, 1, -1, 2] == m.effective_bias.tolist()


def test_pitfall_weight_exp_applies_to_the_sum():
    """The exponent scales the accumulated sum, not each weight: (1 + 1 + 1) >> 1 = 1, not 0."""
    w = np.array([[1, 1, 1], [3, 5, 0]])
    x = np.array([[1, 1, 1], [0, 0, 0]])
    got = loihi.dense_accumulate(torch.as_tensor(x), torch.as_tensor(w), -1)[0].tolist()
    assert got == [1, 4]  # per weight: 0 + 0 + 0 = 0 and 1 + 2 = 3
    d = lava_dense(w, weight_exp=-1)
    d.s_in.value = x[0]
    d.run_spk()
    d.s_in.value = x[1]
    d.run_spk()
    assert d.a_out.sent.tolist() == got
    up = loihi.dense_accumulate(torch.as_tensor(x), torch.as_tensor(w), 2)[0].tolist()
    assert up == [12, 32]


def test_pitfall_u_wraps_one_shot_asymmetric_v_saturates():
    """u: one-shot 24-bit wrap into (-2**23, 2**23]; v: clipped to +-(2**23 - 1)."""
    M = 1 << 23
    cases = [  # (u before, a) -> u after (no current decay: du = -1)
        (0, 1 << 17, M),  # 2**23 is kept
        (0, (1 << 17) + 1, -8388544),  # 2**23 + 64 -> -2**23 + 64
        (0, -(1 << 17), M),  # -2**23 becomes +2**23
        (0, 500000, 15222784),  # 32,000,000 - 2**24: still out of range ...
        (15222784, 0, 15222784 - (1 << 24)),  # ... wrapped again on the next step
        (M - 64, 2, -M + 64),
    ]
    for u0, a, expect in cases:
        m = lava_lif(1, -1, 0, 131071)
        m.u[:] = u0
        m.scale_bias()
        m.subthr_dynamics(np.array([a], np.int32))
        u, v = loihi.lif_integrate(torch.tensor([a]), torch.tensor([u0]), torch.tensor([0]), 4096, 4096,
                                   torch.tensor([0]))
        assert int(m.u[0]) == int(u[0]) == expect, (u0, a)
        assert int(m.v[0]) == int(v[0]) == max(-(M - 1), min(M - 1, expect))
    # v saturates: u = a << 6 = 2**20 each step (i_decay 4096), v accumulates without decay
    a = np.array([[1 << 14]] * 10)
    pos = core_trace(a, i_decay=4096, v_decay=0, vth=131071)
    assert_same(pos, lava_trace(a, du=4095, dv=0, vth=131071))
    # 7 * 2**20 < 131071 << 6 = 8388544; 8 * 2**20 = 2**23 saturates to 2**23 - 1, which always spikes
    assert pos[0][:, 0].tolist() == [0] * 7 + [1, 0, 0]
    neg = core_trace(-a, i_decay=4096, v_decay=0, vth=131071)
    assert_same(neg, lava_trace(-a, du=4095, dv=0, vth=131071))
    assert neg[2][:, 0].tolist() == [-(k << 20) for k in range(1, 8)] + [-(M - 1)] * 3
    # wrap over a trace: no current decay, u runs past 2**23 and flips sign while v saturates
    a = np.array([[1 << 16]] * 6)
    wrap = core_trace(a, i_decay=0, v_decay=0, vth=131071)
    assert_same(wrap, lava_trace(a, du=-1, dv=0, vth=131071))
    assert wrap[1][:, 0].tolist() == [1 << 22, 1 << 23, -(1 << 22), 0, 1 << 22, 1 << 23]


def test_pitfall_strict_threshold():
    """v == vth << 6 does not spike; v == (vth << 6) + 1 does, and only v is reset (u keeps going)."""
    a = np.array([[10, 11, 10]] * 3)  # i_decay 4096: u = a << 6; v_decay 4096: v = u
    s, u, v = core_trace(a, i_decay=4096, v_decay=4096, vth=10)
    assert s[:, 0].tolist() == [0, 0, 0] and s[:, 1].tolist() == [1, 1, 1]
    assert u[0].tolist() == [640, 704, 640] and v[0].tolist() == [640, 0, 640]
    assert_same((s, u, v), lava_trace(a, du=4095, dv=4096, vth=10))
    assert loihi.lif_fire(torch.tensor([640, 641]), loihi.effective_threshold(10))[0].tolist() == [False, True]


def test_pitfall_bias_on_the_first_step(tmp_path):
    """Every LIF adds its bias on step 1, before any input can have arrived through its Dense."""
    path = write_raw(tmp_path / "b.net", [dict(type="dense", weight=np.array([[2.0], [2.0], [2.0]]),
                                               bias=np.array([100, 20, 0]), neuron=cuba(0, 0, 50))])
    x = np.zeros((1, 8, 1), np.int64)
    # hand: B = bias << 6; n0: 6400 > 3200 every step; n1: 1280, 2560, 3840 -> spikes at steps 3, 6
    expect = np.zeros((8, 3), np.uint8)
    expect[:, 0] = 1
    expect[[2, 5], 1] = 1
    y_core = simulate(read_netx(path), x).output[0].numpy().astype(np.uint8)
    np.testing.assert_array_equal(y_core, expect)
    np.testing.assert_array_equal(run_netx_lava(path, x)[0], expect)
    # Lava's models stepped directly agree, with u/v
    (rec,) = run_chain([(lava_dense(np.array([[2], [2], [2]])),
                         lava_lif(3, -1, 0, 50, np.array([100, 20, 0]), 6))], x[0])
    np.testing.assert_array_equal(rec["s"], expect)
    assert rec["v"][:3, 1].tolist() == [1280, 2560, 0]


def test_pitfall_mixed_sign_lsb_clearing():
    """A mixed-sign Dense with 8 weight bits floors every weight to even; excitatory and inhibitory
    matrices keep odd magnitudes; the sign mode is derived per Dense from the int-cast weights."""
    cases = [
        ([[3, -3, 5, 7, -1, -256, 255]], [[2, -4, 4, 6, -2, -256, 254]], loihi.SignMode.MIXED),
        ([[3, 255, 7, 1, 300]], [[3, 255, 7, 1, 255]], loihi.SignMode.EXCITATORY),
        ([[-3, -255, -7, -256, 0]], [[-3, -255, -7, -255, 0]], loihi.SignMode.INHIBITORY),
        ([[2.9, -0.5, 7.7]], [[2, 0, 7]], loihi.SignMode.EXCITATORY),  # trunc0 first: [2, 0, 7]
    ]
    for w, expect, mode in cases:
        w = np.array(w, dtype=float)
        eff, got_mode = loihi.dense_effective_weights(w)
        assert got_mode == mode
        np.testing.assert_array_equal(eff, expect)
        d = lava_dense(w)
        d.s_in.value = np.zeros(w.shape[1])
        d.run_spk()  # Lava truncates the weights in place on its first step
        np.testing.assert_array_equal(d.weights, eff)


def test_pitfall_one_step_dense_delay(tmp_path):
    """Each Dense adds one step: an input spike in column 0 reaches layer k's spikes in column k."""
    path = write_raw(tmp_path / "d.net", [
        dict(type="dense", weight=np.array([[254.0]]), neuron=cuba(4096, 4096, 1)),
        dict(type="dense", weight=np.array([[254.0]]), neuron=cuba(4096, 4096, 1))])
    x = np.zeros((1, 6, 1), np.int64)
    x[0, 0, 0] = 1
    res = simulate(read_netx(path), x, record=True)
    assert res.layer_spikes[0][0, :, 0].tolist() == [0, 1, 0, 0, 0, 0]
    assert res.output[0, :, 0].tolist() == [0, 0, 1, 0, 0, 0]
    assert res.traces[0].u[0, :, 0].tolist() == [0, 254 * 64, 0, 0, 0, 0]
    np.testing.assert_array_equal(run_netx_lava(path, x), res.output.numpy().astype(np.uint8))
    assert loihi.delay_one_step(torch.tensor([[5, 6, 7]]), dim=1).tolist() == [[0, 5, 6]]
    recs = run_chain([(lava_dense(np.array([[254]])), lava_lif(1, 4095, 4096, 1)),
                      (lava_dense(np.array([[254]])), lava_lif(1, 4095, 4096, 1))], x[0])
    for k in range(2):
        np.testing.assert_array_equal(recs[k]["s"][:, 0], res.layer_spikes[k][0, :, 0].numpy())
        np.testing.assert_array_equal(recs[k]["u"][:, 0], res.traces[k].u[0, :, 0].numpy())


@pytest.mark.parametrize("weights, expect", [
    ([[-256, -4], [-10, -2]], [[-254, -4], [-10, -2]]),  # netx INHIBITORY, 7 bits: -256 -> -254
    ([[-256, 0], [-10, -2]], [[-255, 0], [-10, -2]]),  # netx MIXED, Lava INHIBITORY: -256 -> -255
    ([[-255, 0], [-9, -1]], [[0, 0], [0, 0]]),  # netx 9 bits, Lava INHIBITORY shifts by -1
    ([[254, -3], [5, -256]], [[254, -3], [5, -256]]),  # mixed odd weights survive (9 bits)
    ([[300, -4], [6, -2]], [[254, -4], [6, -2]]),  # netx clips a mixed matrix to 254
    ([[2, -2], [6, 0]], [[2, -2], [6, 0]]),  # normal slayer export: exact
    ([[1, 3], [5, 7]], [[1, 3], [5, 7]]),  # small excitatory: large exponent, still exact
])
def test_pitfall_netx_reencoding_edge_cases(tmp_path, weights, expect):
    """netx's optimize_weight_bits + Lava's Dense (which re-derives the sign mode) change some file
    weights; read_netx gives exactly what lava-dl's functions give."""
    w = np.array(weights)
    layer = read_netx(write_raw(tmp_path / "e.net", [dict(type="dense", weight=w, neuron=cuba())])).layers[0]
    got = layer.weight * 2.0 ** layer.weight_exp
    np.testing.assert_array_equal(got, np.array(expect, float))
    lava_w, wexp = lava_netx_weights(w)
    np.testing.assert_array_equal(layer.weight, lava_w)
    assert layer.weight_exp == wexp


def test_pitfall_netx_all_zero_weights_fail(tmp_path):
    from snnhw.backends.quiet import quiet as quiet_fds
    with quiet_fds():
        from lava.lib.dl.netx.utils import optimize_weight_bits
    with pytest.raises(OverflowError), quiet_fds():
        optimize_weight_bits(np.zeros((2, 2), int))
    path = write_raw(tmp_path / "z.net", [dict(type="dense", weight=np.zeros((2, 2)), neuron=cuba())])
    with pytest.raises(loihi.RangeError, match="all-zero weight matrix"):
        read_netx(path)


def test_lava_models_match_core_states_on_random_chains():
    """Lava's models stepped directly equal the core's u, v and spikes at every step (random 1-3 layer
    chains with biases, negative exponents, extreme decays) -- the harness the tests above rely on."""
    rng = np.random.default_rng(2)
    for trial in range(12):
        sizes = [int(rng.integers(1, 9)) for _ in range(int(rng.integers(2, 5)))]
        layers, stages = [], []
        for j in range(len(sizes) - 1):
            w = rng.integers(-128, 128, (sizes[j + 1], sizes[j])) * 2
            exp = int(rng.integers(-3, 3))
            i_decay, v_decay = int(rng.choice([0, 1, 2048, 4095, 4096])), int(rng.choice([0, 1, 900, 4096]))
            vth = int(rng.choice([0, 1, 37, 500, 131071]))
            bias = rng.integers(-4096, 4096, sizes[j + 1])
            bexp = int(rng.integers(0, 8))
            layers.append(Dense(f"l{j}", w, Neuron(i_decay, v_decay, vth), weight_exp=exp, bias_mant=bias,
                                bias_exp=bexp))
            stages.append((lava_dense(w, weight_exp=exp),
                           lava_lif(sizes[j + 1], loihi.lava_du(i_decay), loihi.lava_dv(v_decay), vth, bias, bexp)))
        spec = NetworkSpec((sizes[0],), layers).validate()
        x = (rng.random((25, sizes[0])) < 0.5).astype(np.int64)
        res = simulate(spec, x[None], record=True)
        recs = run_chain(stages, x)
        for rec, tr in zip(recs, res.traces):
            np.testing.assert_array_equal(rec["s"], tr.s[0].numpy().astype(np.int32))
            np.testing.assert_array_equal(rec["u"], tr.u[0].numpy())
            np.testing.assert_array_equal(rec["v"], tr.v[0].numpy())
