"""Differential tests: the fused numba kernel (:mod:`snnhw.core.fused_cpu`) equals the reference loop
(:func:`snnhw.core.neuron.cuba_loop` of :func:`~snnhw.core.neuron.exact_step`) — every spike, every
pre-reset v, every u and post-reset v, at every step.

A *case* is one population (1..16 neurons) with its own decays (0..4096, edges 0/1/4095/4096 often),
threshold mantissa (0..131071, edges often), per-neuron biases (netx edges, up to and beyond 2**29) and
an input regime: spikes times weights, small, near the bounded limit 2**18, beyond it (up to the int32
extremes, so u wraps and v saturates). Many cases sit side by side in one *pack* (one kernel call):
their neurons are concatenated along N, and the reference runs the pack with per-neuron parameter
tensors. A recurrent pack holds each case's recurrent matrix on the block diagonal (one ``rec_exp`` per
pack). The reference runs both its ``bounded`` fast path (where :func:`snnhw.core.neuron.exact_params`
would take it) and its general path.

The backward (:func:`snnhw.core.fused_cpu.backward`) is checked against the reference BPTT loop for every
surrogate, hard and subtractive reset, with and without recurrence: bit-identical where the kernel does
the reference's float32 operations in its order, else within a stated float32 bound (:func:`_bound`).
Per-replica thresholds, the exact synapse's float32 route and the thread count are checked too.

Sizes: the default run checks ``SNNHW_FUSED_CI_CASES`` cases (default 300); the ``slow`` run
``SNNHW_FUSED_CASES`` (default 10 000) and prints the count and the wall time::

    SNNHW_FUSED_CASES=10000 .venv/bin/pytest -m slow -s tests/test_fused.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.core import fused_cpu, neuron, synapse
from snnhw.core.neuron import CubaParams, ExactCuba, cuba_lif, cuba_loop
from snnhw.core.surrogate import Surrogate
from snnhw.errors import InputError

pytestmark = pytest.mark.skipif(not fused_cpu.available(), reason="numba is not installed")

CI_CASES = int(os.environ.get("SNNHW_FUSED_CI_CASES", "300"))
SLOW_CASES = int(os.environ.get("SNNHW_FUSED_CASES", "10000"))
DECAY_EDGES = (0, 1, 2, 4094, 4095, 4096)
VTH_EDGES = (0, 1, 2, 131070, 131071)
BIAS_EDGES = (-4096, -4095, -1, 0, 1, 4094, 4095)
INPUT_REGIMES = ("spikes", "small", "near_bound", "beyond", "int32")


def _pick(rng, edges, lo, hi) -> int:
    return int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(lo, hi + 1))


def _bias(rng, n: int, small: bool) -> np.ndarray:
    """Effective biases (state units): netx mantissas << exp, or (unless ``small``) large values up to
    and beyond 2**29."""
    style = rng.choice(["netx", "zero", "large"], p=[0.7, 0.3, 0.0] if small else [0.6, 0.2, 0.2])
    if style == "netx":
        mant = rng.choice(BIAS_EDGES, n) if rng.random() < 0.5 else rng.integers(-4096, 4096, n)
        return mant.astype(np.int64) << int(rng.integers(0, 8))
    if style == "zero":
        return np.zeros(n, np.int64)
    return rng.integers(-(1 << 31), 1 << 31, n).astype(np.int64)


def _input(rng, B: int, T: int, n: int, regime: str) -> np.ndarray:
    """Synaptic input a [B, T, n] in weight units (int32-valued, as Lava's channels carry it)."""
    mask = rng.random((B, T, n)) < float(rng.choice([0.02, 0.1, 0.3, 0.7, 1.0]))
    if regime == "spikes":
        vals = rng.integers(-256 * 16, 256 * 16, (B, T, n))
    elif regime == "small":
        vals = rng.integers(-300, 301, (B, T, n))
    elif regime == "near_bound":
        vals = rng.integers(-(1 << 18) + 1, 1 << 18, (B, T, n))
    elif regime == "beyond":
        vals = rng.integers(-(1 << 22), 1 << 22, (B, T, n))
    else:
        vals = rng.choice([-(1 << 31), (1 << 31) - 1, 1 << 18, -(1 << 18), (1 << 25) + 3], (B, T, n))
    return (vals * mask).astype(np.int64)


def draw_pack(rng, n_cases: int, recurrent: bool):
    """One pack: a [B, T, N], per-neuron i_factor, v_factor, vth, bias [N], block-diagonal w_rec or
    None, rec_exp, and the input regime of each case."""
    B, T = int(rng.integers(1, 4)), int(rng.integers(1, 65))
    small = rng.random() < 0.4  # a pack the reference's bounded fast path may run
    regimes_of_pack = INPUT_REGIMES[:3] if small else INPUT_REGIMES
    a, fi, fv, th, bias, blocks, regimes = [], [], [], [], [], [], []
    for _ in range(n_cases):
        n = int(rng.integers(1, 17))
        regime = str(rng.choice(regimes_of_pack))
        a.append(_input(rng, B, T, n, regime))
        fi.append(np.full(n, loihi.decay_factor(_pick(rng, DECAY_EDGES, 0, 4096))))
        fv.append(np.full(n, loihi.decay_factor(_pick(rng, DECAY_EDGES, 0, 4096))))
        th.append(np.full(n, loihi.effective_threshold(_pick(rng, VTH_EDGES, 0, 2000))))
        bias.append(_bias(rng, n, small))
        blocks.append(rng.integers(-256, 256, (n, n)) * (rng.random((n, n)) < 0.5))
        regimes.append(regime)
    N = sum(x.shape[-1] for x in a)
    w_rec = None
    if recurrent:
        w_rec, o = np.zeros((N, N), np.int64), 0
        for blk in blocks:
            w_rec[o:o + len(blk), o:o + len(blk)] = blk
            o += len(blk)
    t = lambda x: torch.from_numpy(np.concatenate(x).astype(np.int64))  # noqa: E731
    return (torch.from_numpy(np.concatenate(a, axis=-1)), t(fi), t(fv), t(th), t(bias),
            None if w_rec is None else torch.from_numpy(w_rec), int(rng.integers(-8, 8)), regimes)


def _bounded(a, bias, w_rec, rec_exp) -> bool:
    """The reference's fast-path condition, as :func:`snnhw.core.neuron.exact_params` computes it."""
    amax = int(a.abs().max()) if a.numel() else 0
    if w_rec is not None:
        amax += int(loihi.shift_floor(w_rec.abs().sum(1).max(), max(rec_exp, 0)))
    return amax < loihi.BOUNDED_INPUT and int(bias.abs().max()) < loihi.BOUNDED_BIAS


def check_pack(a, fi, fv, th, bias, w_rec, rec_exp, stats, forward=None) -> None:
    """A kernel's ``forward`` (default: the fused numba one) vs the reference loop (general path, and fast
    path where allowed) on one pack; every output equal. Counts coverage into ``stats``."""
    forward = forward or fused_cpu.forward
    s, vpre, u, v = forward(a, fi, fv, th, bias, w_rec, rec_exp, True, True, torch.bool)
    rec = None if w_rec is None else synapse.recurrent_exact(w_rec, rec_exp)
    modes = [False] + ([True] if _bounded(a, bias, w_rec, rec_exp) else [])
    for bounded in modes:
        ref = cuba_loop(a, ExactCuba(fi, fv, th, bias, bounded), recurrent=rec, keep_vpre=True, record=True)
        for name, x, y in (("s", s, ref.s), ("v_pre", vpre, ref.v_pre), ("u", u, ref.u), ("v", v, ref.v)):
            assert x.dtype == y.dtype and torch.equal(x, y), \
                f"{name} differs (bounded={bounded}, rec_exp={rec_exp}, first at {(x != y).nonzero()[0].tolist()})"
    stats["bounded"] += len(modes) == 2
    stats["unbounded"] += len(modes) == 1
    stats["recurrent"] += w_rec is not None
    stats["saturated"] += int((vpre.abs() == loihi.V_LIMIT).sum())
    stats["large_u"] += int((u.abs() > (1 << 22)).sum())
    stats["spikes"] += int(s.sum())
    stats["silent"] += int((~s.any(-2)).sum())


STAT_KEYS = ("cases", "bounded", "unbounded", "recurrent", "saturated", "large_u", "spikes", "silent")


def run_cases(n_cases: int, seed: int, per_pack: int = 100, forward=None) -> dict:
    """Draw and check ``n_cases`` cases in packs of ``per_pack`` (every 5th pack recurrent, smaller)
    with :func:`check_pack` on ``forward`` (default: the fused numba kernel)."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    stats = dict.fromkeys(STAT_KEYS, 0)
    regimes = set()
    k = 0
    while stats["cases"] < n_cases:
        recurrent = k % 5 == 4
        n = min(n_cases - stats["cases"], per_pack // 4 if recurrent else per_pack)
        a, fi, fv, th, bias, w_rec, rec_exp, reg = draw_pack(rng, n, recurrent)
        check_pack(a, fi, fv, th, bias, w_rec, rec_exp, stats, forward)
        stats["cases"] += n
        regimes.update(reg)
        k += 1
    stats["regimes"] = len(regimes)
    return stats


def _assert_coverage(stats, keys=("bounded", "unbounded", "saturated", "large_u", "spikes", "silent")) -> None:
    """Every input regime was drawn and every counter in ``keys`` is positive."""
    assert stats["regimes"] == len(INPUT_REGIMES), stats
    for key in keys:
        assert stats[key] > 0, f"no case exercised '{key}': {stats}"


def test_fused_equals_reference_random_cases():
    stats = run_cases(CI_CASES, seed=11)
    assert stats["cases"] >= CI_CASES
    _assert_coverage(stats)


@pytest.mark.slow
def test_fused_equals_reference_many_cases():
    t0 = time.time()
    stats = run_cases(SLOW_CASES, seed=2024, per_pack=100)
    print(f"\nfused vs reference: {stats['cases']} cases, 0 mismatches, {time.time() - t0:.1f} s; {stats}")
    assert stats["cases"] >= SLOW_CASES
    _assert_coverage(stats)


def lif_grads(monkeypatch, kernel: str, a, bias, w_rec, surrogate=Surrogate()):
    """(spikes, a.grad, bias.grad, w_rec.grad or None) of cuba_lif through autograd on ``kernel``."""
    monkeypatch.setenv("SNNHW_KERNEL", kernel)
    a, bias = (x.clone().requires_grad_(True) for x in (a, bias))
    w_rec = None if w_rec is None else w_rec.clone().requires_grad_(True)
    s = cuba_lif(a, CubaParams(600, 300, 40), bias, w_rec=w_rec, rec_exp=-1, surrogate=surrogate)
    (s * torch.linspace(-1, 1, s.shape[-1])).sum().backward()
    return s.detach(), a.grad, bias.grad, None if w_rec is None else w_rec.grad


@pytest.mark.parametrize("name", ["arctan", "fast_sigmoid", "triangle"])
def test_cuba_lif_same_spikes_and_gradients_on_both_kernels(monkeypatch, name):
    """cuba_lif (exact, no recurrence) through autograd: spikes and the grads of a and the bias are
    bit-identical on the fused and the reference kernel (lavadl and recurrence: see the bptt tests)."""
    g = torch.Generator().manual_seed(3)
    a = torch.randint(-40, 120, (3, 25, 70), generator=g).float()
    bias = torch.randint(-200, 400, (70,), generator=g).float()
    fused = lif_grads(monkeypatch, "fused", a, bias, None, Surrogate(name))
    ref = lif_grads(monkeypatch, "reference", a, bias, None, Surrogate(name))
    assert 0 < float(fused[0].mean()) < 1
    for x, y in zip(fused[:3], ref[:3]):
        assert x.dtype == y.dtype and torch.equal(x, y)


def recurrent_lif_case():
    """(a [3, 25, 12], bias [12], w_rec [12, 12]) float, seeded: a small recurrent population that spikes."""
    g = torch.Generator().manual_seed(3)
    a = torch.randint(-40, 120, (3, 25, 12), generator=g).float()
    bias = torch.randint(-200, 400, (12,), generator=g).float()
    w_rec = (2 * torch.randint(-60, 60, (12, 12), generator=g)).float()
    return a, bias, w_rec


def test_cuba_lif_recurrent_gradients_within_bound(monkeypatch):
    """Recurrent cuba_lif through autograd: same spikes; grads within the float32 bound of the bptt
    tests (:func:`_bound`), checked here on ``a`` (the other grads are sums of it)."""
    a, bias, w_rec = recurrent_lif_case()
    fused = lif_grads(monkeypatch, "fused", a, bias, w_rec)
    ref = lif_grads(monkeypatch, "reference", a, bias, w_rec)
    assert torch.equal(fused[0], ref[0]) and 0 < float(fused[0].mean()) < 1
    grad_s = torch.linspace(-1, 1, 12).expand(3, 25, 12)
    vpre = neuron.exact_run(a, CubaParams(600, 300, 40), bias, w_rec.to(torch.int64), -1, keep_vpre=True).v_pre
    m = _abs_grads(grad_s, fused[0], vpre, w_rec, -1, CubaParams(600, 300, 40), Surrogate())
    for x, y, mx in zip(fused[1:], ref[1:], m):
        assert ((x - y).abs() <= _bound(3, 25, 12, True) * mx + 1e-30).all()


def test_fused_run_leaves_the_start_method_to_lava():
    """numba's first parallel launch reads multiprocessing's start method, which fixes it; Lava's import
    then fails on its own ``set_start_method('fork')``. A kernel call in a fresh process leaves it unset."""
    code = ("import multiprocessing, torch; from snnhw.core import fused_cpu; "
            "fused_cpu.forward(torch.ones(2, 3, 4, dtype=torch.int64), 4000, 4000, 64, 0, None, 0, "
            "False, False, torch.bool); print(multiprocessing.get_start_method(allow_none=True))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "None"


def test_kernel_choice_and_fallback(monkeypatch):
    a = torch.randint(-100, 300, (2, 9, 5))
    monkeypatch.setenv("SNNHW_KERNEL", "reference")
    assert neuron.exact_path(a) == "reference"
    ref = neuron.cuba_lif_trace(a, CubaParams(100, 200, 3))
    monkeypatch.setenv("SNNHW_KERNEL", "fused")
    assert neuron.exact_path(a) == "fused"
    fused = neuron.cuba_lif_trace(a, CubaParams(100, 200, 3))
    assert all(torch.equal(x, y) for x, y in zip(ref, fused)) and bool(fused.s.any())
    # a threshold that does not broadcast to the state [2, 5] is left to the reference loop
    assert fused_cpu.forward(a, 4000, 4000, torch.tensor([64, 128, 3]), 0, None, 0, False, False,
                             torch.bool) is None
    monkeypatch.setenv("SNNHW_KERNEL", "fast")
    with pytest.raises(InputError, match="SNNHW_KERNEL"):
        neuron.exact_path(a)


def test_per_replica_thresholds_equal_reference():
    """Thresholds (and biases) per replica, broadcast over the state as the propagation study passes
    them (``vth`` [R, 1, 1] for ``a`` [R, B, T, n]): every output equals the reference loop."""
    rng = np.random.default_rng(5)
    for k in range(20):
        R, B, T, n = (int(x) for x in rng.integers(1, 6, 4) + np.array([0, 0, 20, 0]))
        a = torch.from_numpy(_input(rng, R * B, T, n, str(rng.choice(INPUT_REGIMES)))).reshape(R, B, T, n)
        vth = torch.from_numpy(rng.integers(0, 2000, (R, 1, 1))) << loihi.VTH_SHIFT
        bias = torch.from_numpy(_bias(rng, n, small=False)) if k % 2 else \
            torch.from_numpy(rng.integers(-5000, 5000, (R, B, n)))
        fi, fv = (loihi.decay_factor(_pick(rng, DECAY_EDGES, 0, 4096)) for _ in range(2))
        fused = fused_cpu.forward(a, fi, fv, vth, bias, None, 0, True, True, torch.bool)
        ref = cuba_loop(a, ExactCuba(fi, fv, vth, bias), keep_vpre=True, record=True)
        assert fused is not None
        for x, y in zip(fused, ref):
            assert x.dtype == y.dtype and torch.equal(x, y), k


# ------------------------------------------------------------------------------------------------
# the fused backward (fused_cpu.backward) against the reference BPTT loop
# ------------------------------------------------------------------------------------------------
U32 = 2.0 ** -24  # float32 unit roundoff


def _bound(B: int, T: int, N: int, recurrent: bool) -> float:
    """2 * gamma_k (gamma_k = k u / (1 - k u), u = 2**-24): Higham's forward error bound of sums of
    products evaluated in float32, with k the longest chain of roundings behind one output, for either
    implementation against the exact value; their difference is at most twice that, relative to the same
    computation on absolute values (:func:`_abs_grads`). Per step: the surrogate (<= 10 roundings,
    lavadl's exp counted as 2: torch's is within 1 ulp, the kernel's within 0.5 ulp), the product with
    grad_s and the two recurrences (4), the recurrent dot product (N + 1); over T steps, plus B + T for
    the bias sums and B * T for the w_rec einsum."""
    k = T * (16 + (N + 1 if recurrent else 0)) + B + T + B * T
    return 2 * k * U32 / (1 - k * U32)


def _abs_grads(grad_s, s, vpre, w_rec, rec_exp, p: CubaParams, sur: Surrogate):
    """The BPTT in float64 on absolute values (|grad_s|, |dS/dv|, |w_rec|): the magnitudes (ga [B, T, N],
    gbias [N], g_wrec [N, N] or None) that bound the float32 errors of the grads."""
    f = neuron.float_params(p)
    theta = max(f.theta, 1.0)
    vp = vpre.to(torch.float64)
    sg = (sur((vp - theta) / theta) / theta).abs()
    keep = torch.ones_like(vp) if p.reset == "subtract" else 1.0 - s.to(torch.float64)
    wr = None if w_rec is None else w_rec.abs().to(torch.float64) * 2.0 ** rec_exp
    ga = torch.zeros_like(vp)
    gbias = torch.zeros(vp.shape[-1], dtype=torch.float64)
    gv = gu = torch.zeros_like(vp[:, 0])
    for t in range(vp.shape[1] - 1, -1, -1):
        gs = grad_s[:, t].abs().to(torch.float64)
        if wr is not None and t < vp.shape[1] - 1:
            gs = gs + ga[:, t + 1] @ wr
        gv = gs * sg[:, t] + abs(f.beta) * keep[:, t] * gv
        gu = gv + abs(f.alpha) * gu
        ga[:, t] = f.gain * gu
        gbias += gv.sum(0)
    gw = None if wr is None else 2.0 ** rec_exp * torch.einsum("bto,bti->oi", ga[:, 1:], s[:, :-1].double())
    return ga, gbias, gw


def _bptt_case(rng, reset: str, recurrent: bool):
    """Random spikes, pre-reset voltages around the threshold (integers, as the exact forward gives),
    loss per spike (some zero), decays, thresholds (0 included: theta clamps to 1), recurrent weights.
    Recurrent cases keep thresholds >= 20 and rec_exp <= -2, so the gradient stays finite in float32
    (the backward's gain per step is ~ 64 |W| 2**rec_exp N / theta)."""
    B, T, N = int(rng.integers(1, 6)), int(rng.integers(1, 41)), int(rng.integers(1, 140))
    p = CubaParams(_pick(rng, DECAY_EDGES, 0, 4096), _pick(rng, DECAY_EDGES, 0, 4096),
                   int(rng.integers(20, 300)) if recurrent else _pick(rng, (0, 1, 2), 0, 300), reset)
    theta = max(p.vth_mant * 64, 1)
    vpre = torch.from_numpy(rng.integers(-3 * theta - 5, 3 * theta + 5, (B, T, N))).float()
    s = (vpre > theta).float()
    grad_s = torch.from_numpy(rng.standard_normal((B, T, N)) * (rng.random((B, T, N)) < 0.8)).float()
    w_rec = torch.from_numpy(2 * rng.integers(-127, 128, (N, N)) * (rng.random((N, N)) < 0.5)).float() \
        if recurrent else None
    return grad_s, s, vpre, p, w_rec, int(rng.integers(-8, -1))


def _surrogate(rng, name: str) -> Surrogate:
    return Surrogate(name, alpha=float(rng.choice([2.0, rng.uniform(0.3, 6)])),
                     slope=float(rng.choice([25.0, rng.uniform(1, 50)])),
                     tau_grad=float(rng.choice([1.0, rng.uniform(0.01, 3)])),
                     scale_grad=float(rng.choice([1.0, rng.uniform(0.1, 5)])),
                     width=float(rng.choice([0.5, rng.uniform(0.05, 3)])))


@pytest.mark.parametrize("recurrent", [False, True], ids=["feedforward", "recurrent"])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("name", fused_cpu.SURROGATE_KINDS)
def test_fused_backward_equals_reference(name, reset, recurrent):
    """fused_cpu.backward vs the reference loop on 25 random cases each. Feed-forward with arctan,
    fast_sigmoid and triangle: the kernel does the reference's float32 operations in its order, so the
    grads of a, the bias and w_rec are bit-identical. lavadl (the exp: torch's vectorized exp is within
    1 ulp, not correctly rounded) and recurrent layers (the ``ga_{t+1} @ wr`` sums in another order
    than torch's matmul): within :func:`_bound` times the absolute-value recursion."""
    rng = np.random.default_rng(sorted(fused_cpu.SURROGATE_KINDS).index(name) * 4 + 2 * recurrent + len(reset))
    exact = not recurrent and name != "lavadl"
    for k in range(25):
        grad_s, s, vpre, p, w_rec, rec_exp = _bptt_case(rng, reset, recurrent)
        sur = _surrogate(rng, name)
        ref = neuron.bptt(grad_s, s, vpre, w_rec, p, rec_exp, sur, path="reference")
        fused = neuron.bptt(grad_s, s, vpre, w_rec, p, rec_exp, sur, path="fused")
        assert (fused[2] is None) == (ref[2] is None) == (not recurrent)
        for x, y in zip(fused, ref):
            if x is not None:
                assert x.dtype == y.dtype == torch.float32 and x.shape == y.shape
                assert bool(torch.isfinite(y).all()), "the case overflows float32"
        if exact:
            assert all(torch.equal(x, y) for x, y in zip(fused[:2], ref[:2])), (name, reset, k)
            continue
        bound = _bound(*s.shape, recurrent)
        for x, y, m in zip(fused, ref, _abs_grads(grad_s, s, vpre, w_rec, rec_exp, p, sur)):
            if x is not None:
                assert ((x - y).abs() <= bound * m + 1e-30).all(), (name, reset, k)


# ------------------------------------------------------------------------------------------------
# the exact synapse's float32 route (simulate and training) against its int64 route
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "graded", "conv"])
def test_exact_input_float_equals_exact_input(kind):
    """synapse.exact_input_float gives exact_input's integers (in float32) wherever it answers, and
    answers None where the float32 bound (2**24) does not hold."""
    rng = np.random.default_rng(7)
    answered = declined = 0
    for k in range(40):
        B, T = int(rng.integers(1, 4)), int(rng.integers(1, 12))
        exp = int(rng.integers(-8, 4))
        if kind == "conv":
            conv = synapse.ConvShape((2, 5, 5), (1, 1), (1, 1))
            w = torch.from_numpy(rng.integers(-255, 256, (3, 2, 3, 3))).float()
            s = torch.from_numpy((rng.random((B, T, 50)) < 0.3).astype(np.float32))
        else:
            conv = None
            n_in = int(rng.choice([3, 40, 300, 5000, 70000]))
            w = torch.from_numpy(rng.integers(-255, 256, (7, n_in)))
            hi = 2 if kind == "dense" else int(rng.choice([2, 100, 1 << 12]))
            s = torch.from_numpy(rng.integers(0, hi, (B, T, n_in)) * (rng.random((B, T, n_in)) < 0.3))
            s = s.float() if kind == "dense" else s
        fast = synapse.exact_input_float(s, w, exp, conv, graded=kind == "graded")
        ref = synapse.exact_input(s.to(torch.int64), w if conv is not None else w.to(torch.int64), exp, conv,
                                  graded=kind == "graded")
        if fast is None:
            declined += 1
            continue
        answered += 1
        assert fast.dtype == torch.float32 and torch.equal(fast.to(torch.int64), ref), (kind, k)
    assert answered > 0 and (declined > 0 or kind == "conv")


def test_trainable_input_float32_route_same_values_and_grads():
    """trainable_input's float32 floor gives the exact integers (= exact_input; its int64 route, taken
    for float64 inputs, too) and exactly the gradient of the unrounded float sum (straight-through)."""
    rng = np.random.default_rng(8)
    for exp in (-3, 0, 2):
        s = torch.from_numpy((rng.random((3, 9, 30)) < 0.4).astype(np.float32))
        w = torch.from_numpy(rng.integers(-127, 128, (11, 30)) * 2.0).float()
        g = torch.from_numpy(rng.standard_normal((3, 9, 11))).float()
        grads = []
        for route in ("float32", "plain sum"):
            wv = w.clone().requires_grad_(True)
            a = synapse.trainable_input(s, wv, exp) if route == "float32" else \
                loihi.delay_one_step(synapse.synaptic_sum(s, wv) * 2.0 ** exp, dim=1)
            a.backward(g)
            grads.append(wv.grad)
            if route == "float32":
                value = a.detach()
        ref = synapse.exact_input(s.to(torch.int64), w.to(torch.int64), exp)
        assert value.dtype == torch.float32 and torch.equal(value.to(torch.int64), ref)
        old = synapse.trainable_input(s.double(), w.double(), exp)  # the int64 route
        assert torch.equal(old.to(torch.int64), ref)
        assert torch.equal(grads[0], grads[1])


def test_fused_run_keeps_torch_thread_count():
    """numba's OpenMP threading layer shares the OpenMP runtime with torch; a kernel call must leave
    torch's thread count as the caller set it (benchmarks and users pin it)."""
    old = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            fused_cpu.forward(torch.ones(2, 3, 4), 4000, 4000, 64, 0, None, 0, False, False, torch.bool)
            assert torch.get_num_threads() == n
    finally:
        torch.set_num_threads(old)


def test_snnhw_train_same_report_on_fused_and_reference_paths(tmp_path, monkeypatch):
    """``snnhw train`` on the tiny recipe: the fused CPU path gives the reference path's report (apart
    from times: accuracies, agreement with Lava where it runs, firing rates, history) and the same
    trained weights, bit for bit."""
    from tiny_recipe import assert_same_runs, train_on_kernels

    runs = train_on_kernels(tmp_path, monkeypatch, ("fused", "reference"), epochs=2)
    assert_same_runs(runs, "fused", "reference")
    assert runs["fused"][0]["accuracy"]["quantized"] > 0.2  # above chance (0.1): a net that learned
