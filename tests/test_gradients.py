"""Gradients flow through the Loihi-exact CUBA LIF: a 2-layer fixed-point network learns a toy task,
every surrogate gives finite non-zero gradients, and cuba_lif's hand-written BPTT equals autograd of
an unrolled float implementation (reset treated as a constant, no gradient path through s)."""
import numpy as np
import pytest
import torch

from snnhw import loihi
from snnhw.core.neuron import CubaParams, cuba_lif
from snnhw.core.surrogate import SURROGATES, Surrogate


class _EvenMantissa(torch.autograd.Function):
    """Round to the nearest even integer in [-256, 254] (legal mixed-sign Dense mantissas);
    straight-through gradient."""

    @staticmethod
    def forward(ctx, w):
        return (torch.round(w / 2) * 2).clamp(-256, 254)

    @staticmethod
    def backward(ctx, g):
        return g


def dense_exact(s, w_float, weight_exp=0):
    """Lava's Dense on spikes s [B, T, in] with STE-quantized weights: integer sum (exact in float32
    here), floor shift by weight_exp (straight-through), one-step delay (snnhw.loihi)."""
    w = _EvenMantissa.apply(w_float)
    acc = torch.matmul(s, w.t())
    scaled = acc * 2.0 ** weight_exp
    scaled = scaled + (loihi.shift_floor(acc.detach().round().long(), weight_exp).float() - scaled).detach()
    return loihi.delay_one_step(scaled, dim=1)


def toy_data(rng, n, T=24, n_in=12):
    """Two classes: inputs 0-5 fire at 40% and 6-11 at 5% (class 0), or the reverse (class 1)."""
    y = rng.integers(0, 2, n)
    rates = np.where(y[:, None] == 0, np.r_[np.full(6, 0.4), np.full(6, 0.05)],
                     np.r_[np.full(6, 0.05), np.full(6, 0.4)])
    x = (rng.random((n, T, n_in)) < rates[:, None, :]).astype(np.float32)
    return torch.as_tensor(x), torch.as_tensor(y)


def test_two_layer_fixed_point_network_learns():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = toy_data(rng, 32)
    w1 = torch.nn.Parameter(torch.randn(16, 12) * 30)
    w2 = torch.nn.Parameter(torch.randn(2, 16) * 30)
    p1, p2 = CubaParams(1024, 512, 60), CubaParams(1024, 512, 60)
    opt = torch.optim.Adam([w1, w2], lr=3.0)

    def forward(x):
        s1 = cuba_lif(dense_exact(x, w1), p1, exact=True)
        s2 = cuba_lif(dense_exact(s1, w2), p2, exact=True)
        return s2.sum(1)  # spike counts [B, 2]

    losses, accs = [], []
    for _ in range(20):
        counts = forward(x)
        loss = torch.nn.functional.cross_entropy(counts * 0.5, y)
        opt.zero_grad()
        loss.backward()
        assert torch.isfinite(w1.grad).all() and w1.grad.abs().sum() > 0
        opt.step()
        losses.append(float(loss))
        accs.append(float((counts.argmax(1) == y).float().mean()))
    first, last = np.mean(losses[:3]), np.mean(losses[-3:])
    assert last < 0.3 * first, (first, last)
    assert np.mean(accs[-3:]) > 0.9
    # the trained weights are legal Loihi mantissas, and the exact forward is what Lava would run
    wq = _EvenMantissa.apply(w1.detach())
    assert loihi.dense_effective_weights(wq.numpy())[0].tolist() == wq.long().tolist()


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("exact", [True, False])
def test_every_surrogate_gives_finite_nonzero_gradients(name, exact):
    torch.manual_seed(1)
    a = (torch.randn(4, 30, 8) * 40).round().requires_grad_(True)
    bias = torch.full((8,), 64.0 * 5, requires_grad=True)
    w_rec = (torch.randn(8, 8) * 20).round().requires_grad_(True)
    s = cuba_lif(a, CubaParams(800, 300, 50), bias, w_rec=w_rec, exact=exact, surrogate=Surrogate(name))
    assert 0 < s.sum() < s.numel()
    (s * torch.linspace(-1, 1, 8)).sum().backward()
    for g in (a.grad, bias.grad, w_rec.grad):
        assert torch.isfinite(g).all() and g.abs().sum() > 0
    # the surrogate is a function of the normalized distance, peaked at the threshold
    sg = Surrogate(name)
    vals = sg(torch.tensor([-1.0, -0.1, 0.0, 0.1, 1.0]))
    assert torch.isfinite(vals).all() and (vals >= 0).all() and vals[2] == vals.max() > 0


class _SpikeRef(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, vth, theta, surrogate):
        ctx.save_for_backward(v)
        ctx.theta, ctx.surrogate = theta, surrogate
        return (v > vth).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g * ctx.surrogate((v - ctx.theta) / ctx.theta) / ctx.theta, None, None, None


def unrolled_float(a, p: CubaParams, bias, w_rec, rec_exp, surrogate):
    """The float CUBA LIF written out step by step for autograd; the reset multiplies by a detached
    spike (no gradient path through s into v)."""
    B, T, N = a.shape
    alpha, beta = 1 - p.i_decay / 4096, 1 - p.v_decay / 4096
    theta = max(p.vth_mant * 64.0, 1.0)
    vth = p.vth_mant * 64.0
    u = torch.zeros(B, N)
    v = torch.zeros(B, N)
    s = None
    out = []
    for t in range(T):
        at = a[:, t]
        if w_rec is not None and s is not None:
            at = at + s @ (w_rec * 2.0 ** rec_exp).t()
        u = alpha * u + 64.0 * at
        v = beta * v + u + bias
        s = _SpikeRef.apply(v, vth, theta, surrogate)  # theta = vth unless vth = 0
        out.append(s)
        v = v - vth * s.detach() if p.reset == "subtract" else v * (1 - s.detach())
    return torch.stack(out, 1)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("name", ["arctan", "fast_sigmoid", "triangle", "lavadl"])
@pytest.mark.parametrize("recurrent", [False, True])
def test_backward_recurrence_equals_autograd_of_unrolled(reset, name, recurrent):
    torch.manual_seed(3)
    p = CubaParams(700.0, 250.0, 40.0, reset)
    sur = Surrogate(name)
    a = (torch.randn(3, 25, 6) * 30).round()
    bias = torch.randn(6) * 100
    w_rec = (torch.randn(6, 6) * 10).round() if recurrent else None
    up = torch.randn(3, 25, 6)

    a1, b1 = a.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    r1 = None if w_rec is None else w_rec.clone().requires_grad_(True)
    s1 = cuba_lif(a1, p, b1, w_rec=r1, rec_exp=-1, exact=False, surrogate=sur)
    (s1 * up).sum().backward()

    a2, b2 = a.clone().requires_grad_(True), bias.clone().requires_grad_(True)
    r2 = None if w_rec is None else w_rec.clone().requires_grad_(True)
    s2 = unrolled_float(a2, p, b2, r2, -1, sur)
    (s2 * up).sum().backward()

    assert torch.equal(s1, s2) and 0 < s1.sum() < s1.numel()
    torch.testing.assert_close(a1.grad, a2.grad, rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(b1.grad, b2.grad, rtol=1e-4, atol=1e-9)
    if recurrent:
        torch.testing.assert_close(r1.grad, r2.grad, rtol=1e-4, atol=1e-9)
