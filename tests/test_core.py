"""Core checks: NetworkSpec validation and serialization, the float twin against the exact core on
small states, exact_matmul's dtype paths and the integer primitives."""
import json

import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.core.network import simulate
from snnhw.core.neuron import CubaParams, cuba_lif_trace
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool


def conv_spec(rng):
    return NetworkSpec((2, 6, 6), [
        Conv("c1", rng.integers(-20, 21, (3, 2, 3, 3)) * 2, (2, 6, 6), Neuron(900, 300, 40),
             stride=(1, 1), padding=(1, 1), bias_mant=rng.integers(-3, 4, 3)),
        SumPool("p1", (3, 6, 6), weight=80, neuron=Neuron(4096, 4096, 60)),
        Flatten("f", (3, 3, 3)),
        Dense("d1", rng.integers(-40, 41, (5, 27)) * 2, Neuron(1024, 128, 30), weight_exp=1,
              bias_mant=rng.integers(-2, 3, 5), weight_rec=rng.integers(-10, 11, (5, 5)) * 2, rec_exp=-1)],
        metadata={"dt": 1e-3, "recipe": "test"})


def test_spec_json_round_trip_simulates_identically():
    rng = np.random.default_rng(0)
    spec = conv_spec(rng).validate()
    text = spec.to_json()
    json.loads(text)  # plain JSON
    back = NetworkSpec.from_json(text).validate()
    assert back.input_shape == spec.input_shape and back.metadata == spec.metadata
    for a, b in zip(spec.layers, back.layers):
        assert type(a) is type(b) and a.name == b.name
        if hasattr(a, "neuron"):
            assert a.neuron == b.neuron
        if isinstance(getattr(a, "weight", None), np.ndarray):
            assert a.weight.dtype == b.weight.dtype
            np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(back.layers[3].weight_rec, spec.layers[3].weight_rec)
    assert back.layers[0].stride == (1, 1) and back.layers[1].kernel == (2, 2)
    x = torch.as_tensor((rng.random((3, 20, 72)) < 0.3).astype(np.int64))
    r1, r2 = simulate(spec, x, record=True), simulate(back, x, record=True)
    assert r1.output.sum() > 0
    for t1, t2 in zip(r1.traces, r2.traces):
        assert torch.equal(t1.s, t2.s) and torch.equal(t1.u, t2.u) and torch.equal(t1.v, t2.v)
    copy = spec.copy()
    copy.layers[3].weight[0, 0] += 2
    assert spec.layers[3].weight[0, 0] != copy.layers[3].weight[0, 0]


@pytest.mark.parametrize("make, message", [
    (lambda: NetworkSpec((3,), []), "network has no layers"),
    (lambda: NetworkSpec((3,), [Dense("a", np.zeros((2, 3))), Dense("a", np.zeros((2, 2)))]),
     "duplicate layer name 'a'"),
    (lambda: NetworkSpec((3,), [Dense("a", np.zeros((2, 4)))]), "layer a: expects 4 inputs, previous layer gives 3"),
    (lambda: NetworkSpec((3,), [Dense("a", np.zeros((2, 3, 1)))]), "layer a: dense weight must be 2-D"),
    (lambda: NetworkSpec((2,), [Dense("a", np.zeros((2, 2)), weight_rec=np.zeros((3, 3)))]),
     "layer a: weight_rec must be [2, 2]"),
    (lambda: NetworkSpec((1, 4, 4), [Conv("c", np.zeros((2, 1, 3, 3)), (1, 5, 5))]),
     "layer c: input_shape (1, 5, 5) does not match previous output (1, 4, 4)"),
    (lambda: NetworkSpec((2,), [Dense("a", np.zeros((2, 2)), Neuron(reset="subtract"))]),
     "layer a: Loihi resets v to 0; reset='subtract' needs a float target"),
    (lambda: NetworkSpec((2,), [Dense("a", np.zeros((2, 2)), Neuron(reset="bounce"))]),
     "layer a: reset must be 'zero' or 'subtract', not 'bounce'"),
])
def test_spec_validation_errors(make, message):
    with pytest.raises(ValueError) as e:
        make().validate()
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_from_dict_rejects_unknown_kind():
    d = NetworkSpec((2,), [Dense("a", np.zeros((2, 2)))]).to_dict()
    d["layers"][0]["kind"] = "lstm"
    with pytest.raises(ValueError, match="unknown layer kind 'lstm'"):
        NetworkSpec.from_dict(d)


def test_simulate_input_shape_error():
    spec = NetworkSpec((3,), [Dense("a", np.zeros((2, 3), dtype=np.int64))])
    with pytest.raises(ValueError, match=r"inputs must be shaped \[samples, steps, 3\], got \(4, 3\)"):
        simulate(spec, np.zeros((4, 3)))


# ------------------------------------------------------------------------------------------------
# float twin vs exact core
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i_decay, v_decay", [(4096, 0), (4096, 4096), (0, 4096), (0, 0)])
def test_float_twin_equals_exact_without_rounding(i_decay, v_decay):
    """With decay factors 0 or 1 nothing rounds, and small states neither wrap nor saturate: the float
    twin reproduces the exact core's u, v and spikes bit for bit."""
    rng = np.random.default_rng(i_decay + v_decay)
    a = torch.as_tensor(rng.integers(-40, 60, (3, 30, 7)))
    bias = torch.as_tensor(rng.integers(-300, 300, 7))
    p = CubaParams(i_decay, v_decay, 40)
    ex = cuba_lif_trace(a, p, bias, exact=True)
    fl = cuba_lif_trace(a.float(), p, bias.float(), exact=False)
    assert 0 < ex.s.sum() < ex.s.numel()
    assert torch.equal(ex.s.float(), fl.s)
    assert torch.equal(ex.u.float(), fl.u) and torch.equal(ex.v.float(), fl.v)


@pytest.mark.parametrize("i_decay, v_decay", [(1, 1), (300, 900), (2048, 100), (4000, 3000)])
def test_float_twin_close_to_exact_on_small_states(i_decay, v_decay):
    """With rounding decays the exact core differs from the float twin only by the accumulated
    rounding toward zero: |u_exact - u_float| <= 1/(1 - alpha) state units (no spikes: vth high)."""
    rng = np.random.default_rng(i_decay)
    a = torch.as_tensor(rng.integers(-50, 50, (2, 60, 5)))
    p = CubaParams(i_decay, v_decay, 131071)
    ex = cuba_lif_trace(a, p, exact=True)
    fl = cuba_lif_trace(a.double().float(), p, exact=False)
    assert ex.s.sum() == 0
    alpha, beta = 1 - i_decay / 4096, 1 - v_decay / 4096
    du = (ex.u.double() - fl.u.double()).abs().max()
    bound_u = 1 / (1 - alpha)
    assert du <= bound_u + 1e-3 * fl.u.abs().max()
    dv = (ex.v.double() - fl.v.double()).abs().max()
    assert dv <= (1 + bound_u) / (1 - beta) + 1e-3 * fl.v.abs().max()
    # and they are not identical (the rounding is real)
    assert not torch.equal(ex.u.float(), fl.u)


def test_float_spec_runs_float_twin():
    rng = np.random.default_rng(4)
    spec = NetworkSpec((6,), [Dense("a", rng.normal(0, 40, (5, 6)), Neuron(1000.5, 200.25, 30.5)),
                              Dense("b", rng.normal(0, 40, (3, 5)), Neuron(500, 100, 20, reset="subtract"))],
                       quantized=False).validate()
    x = (rng.random((2, 25, 6)) < 0.5).astype(np.float32)
    out = simulate(spec, x).output
    assert out.dtype == torch.float32 and 0 < out.sum() < out.numel()


# ------------------------------------------------------------------------------------------------
# exact_matmul dtype paths and integer primitives
# ------------------------------------------------------------------------------------------------
def _spy_dtypes(monkeypatch):
    seen = []
    real = torch.matmul

    def spy(a, b):
        seen.append(a.dtype)
        return real(a, b)

    monkeypatch.setattr(torch, "matmul", spy)
    return seen


@pytest.mark.parametrize("smax, wmax, n, dtype", [
    (1, 255, 64, torch.float32),  # 0/1 spikes: bound 16320 < 2**24
    (1, 256, 65536, torch.float64),  # bound 2**24 exactly: no longer float32
    (1 << 20, 255, 100, torch.float64),  # graded payloads: ~2.7e10 < 2**53
    (1 << 40, 256, 1 << 14, torch.int64),  # 2**62 > 2**53: integer matmul
])
def test_exact_matmul_dtype_paths(monkeypatch, smax, wmax, n, dtype):
    g = torch.Generator().manual_seed(n)
    s = torch.randint(0, 2, (2, 3, n), generator=g) * smax
    s[0, 0, 0] = smax
    w = torch.randint(-wmax, wmax + 1, (4, n), generator=g)
    w[0, 0] = wmax
    if dtype == torch.int64:  # keep the exact answer inside int64
        s = s // n
        s[0, 0, 0] = smax
        w[0, 0] = wmax
    seen = _spy_dtypes(monkeypatch)
    got = loihi.exact_matmul(s, w)
    monkeypatch.undo()
    assert seen == [dtype]
    ref = (s.to(torch.int64).unsqueeze(-2) * w.to(torch.int64)).sum(-1)
    assert got.dtype == torch.int64 and torch.equal(got, ref)


def test_exact_matmul_float64_path_is_exact_where_float32_is_not():
    s = torch.tensor([[1 << 24, 1]])
    w = torch.tensor([[1], [1]]).t()  # [1, 2]: sum 2**24 + 1, not representable in float32
    assert loihi.exact_matmul(s, w).tolist() == [[(1 << 24) + 1]]
    assert torch.matmul(s.float(), w.float().t()).item() != (1 << 24) + 1
    assert loihi.exact_matmul(torch.zeros(2, 0, dtype=torch.int64), torch.zeros(3, 0, dtype=torch.int64)).shape == (2, 3)


def test_dense_accumulate_wraps_to_int32_like_lavas_channel():
    s = torch.tensor([[[1 << 20, 1 << 20]]])
    w = torch.tensor([[255, 255]])
    acc = loihi.dense_accumulate(s, w, 3)  # 255 * 2**21 * 8 = 4278190080 > 2**31 wraps
    exact = (255 * (1 << 21)) << 3
    assert acc.item() == exact - (1 << 32) == -16777216


def test_integer_primitives():
    x = torch.tensor([-12289, -4097, -4096, -1, 0, 1, 4095, 4097, 12289])
    for f in (1, 100, 4095, 4096):
        got = loihi.decay(x, f)
        assert torch.equal(got, torch.div(x * f, 4096, rounding_mode="trunc"))
    assert loihi.shift_floor(torch.tensor([-3, -1, 1, 3]), -1).tolist() == [-2, -1, 0, 1]
    assert loihi.shift_floor(torch.tensor([-3, 3]), 2).tolist() == [-12, 12]
    assert loihi.shift_floor(torch.tensor([-3, 3]), torch.tensor([-1, 2])).tolist() == [-2, 12]
    assert loihi.wrap24(torch.tensor([1 << 23, (1 << 23) + 1, -(1 << 23), 32000000])).tolist() == \
        [1 << 23, -(1 << 23) + 1, 1 << 23, 32000000 - (1 << 24)]
    assert loihi.saturate_v(torch.tensor([1 << 24, -(1 << 24), 5])).tolist() == [(1 << 23) - 1, -(1 << 23) + 1, 5]
    assert loihi.i32(torch.tensor([1 << 31, -(1 << 31) - 1])).tolist() == [-(1 << 31), (1 << 31) - 1]
    assert loihi.effective_threshold(131071) == 8388544 < loihi.V_LIMIT
    assert loihi.decay_factor(0) == 4096 and loihi.decay_factor(4096) == 0


# ------------------------------------------------------------------------------------------------
# the one CUBA loop: per-replica parameters, reset conventions, the one synapse
# ------------------------------------------------------------------------------------------------
def test_cuba_loop_per_replica_thresholds_equal_separate_runs():
    """One run with a threshold per replica [R, 1, 1] equals R runs of cuba_lif_trace, exact and float."""
    from snnhw.core.neuron import cuba_loop, exact_params, float_params

    g = torch.Generator().manual_seed(3)
    a = torch.randint(-20, 60, (3, 2, 15, 7), generator=g)
    vths = torch.tensor([20, 45, 90])
    run = cuba_loop(a, exact_params(CubaParams(1024, 512, vths.reshape(3, 1, 1)), a), keep_vpre=True, record=True)
    fl = cuba_loop(a.float(), float_params(CubaParams(1024, 512, 1.0))._replace(
        theta=(vths.float() * 64).reshape(3, 1, 1)), keep_vpre=True)
    for r, vt in enumerate(vths.tolist()):
        tr = cuba_lif_trace(a[r], CubaParams(1024, 512, vt))
        assert torch.equal(run.s[r], tr.s) and torch.equal(run.u[r], tr.u) and torch.equal(run.v[r], tr.v)
        assert torch.equal(run.v_pre[r] > vt * 64, tr.s)  # the pre-reset voltage is what was tested
        ft = cuba_lif_trace(a[r], CubaParams(1024, 512, vt), exact=False)
        assert torch.equal(fl.s[r], ft.s)


def test_reset_conventions():
    """zero: v <- 0 at the spike; subtract: v <- v - theta, decayed at the next step; subtract-undecayed
    (snnTorch): theta comes off the next update after the decay."""
    from snnhw.core.neuron import FloatCuba, cuba_loop

    a = torch.tensor([[[1.5], [0.0], [0.0]]])  # one spike at step 0 (theta = 1), then free decay
    out = {}
    for reset in ("zero", "subtract", "subtract-undecayed"):
        run = cuba_loop(a, FloatCuba(0.0, 0.5, 1.0, gain=1.0, reset=reset), keep_vpre=True, record=True)
        out[reset] = (run.s.flatten().tolist(), run.v_pre.flatten().tolist(), run.v.flatten().tolist())
    assert out["zero"] == ([1, 0, 0], [1.5, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert out["subtract"] == ([1, 0, 0], [1.5, 0.25, 0.125], [0.5, 0.25, 0.125])
    assert out["subtract-undecayed"] == ([1, 0, 0], [1.5, -0.25, -0.125], [1.5, -0.25, -0.125])


def test_one_synapse_exact_and_trainable_agree():
    """synapse.trainable_input on a quantized layer is exact_input's value (dense, conv, pool), also where
    the float32 forward sum is not provably exact (the exact sum is recomputed)."""
    from snnhw.core import synapse as syn

    g = torch.Generator().manual_seed(5)
    s = (torch.rand(2, 6, 2 * 5 * 5, generator=g) < 0.5).float()
    cases = [(torch.randint(-127, 128, (4, 50), generator=g) * 2, None, -2),
             (torch.randint(-60, 61, (3, 2, 3, 3), generator=g) * 2, syn.ConvShape((2, 5, 5), padding=(1, 1)), 0),
             (syn.pool_kernel(2, (2, 2), 64), syn.ConvShape((2, 5, 5), (2, 2), groups=2), -1)]
    for w, conv, exp in cases:
        exact = syn.exact_input(s.to(torch.int64), w if conv else w.to(torch.int64), exp, conv)
        w = w.float().requires_grad_()
        got = syn.trainable_input(s, w, exp, conv)
        assert torch.equal(got.to(torch.int64), exact) and got.dtype == torch.float32
        got.sum().backward()
        assert torch.isfinite(w.grad).all()
    big = torch.full((1, 70000), 254.0)  # 70000 * 254 > 2**24: the float32 sum is not trusted
    x = torch.ones(1, 2, 70000)
    assert syn.trainable_input(x, big, -3).to(torch.int64)[0, 1, 0].item() == (70000 * 254) >> 3
