"""The Triton kernels (:mod:`snnhw.core.fused_triton`) equal the reference, run on CPU tensors in Triton's
interpreter (what ``TRITON_INTERPRET=1`` selects; the module builds the interpreted kernels itself for CPU
tensors, so no environment variable is set here and nothing leaks into other tests).

* forward: every spike, pre-reset v, u and post-reset v of the random packs of tests/test_fused.py
  (feed-forward and recurrent, every input regime) equal :func:`snnhw.core.neuron.cuba_loop`'s;
* backward: for every surrogate, both resets, with and without a recurrent matrix, ``ga`` equals
  :func:`snnhw.core.neuron._bptt_reference`'s exactly, except ``lavadl`` (its ``exp`` differs from
  torch's in the last bit: ``|d ga| <= 1e-5 max|ga|``); the bias gradient is summed in another order:
  ``|d gbias_n| <= (B + T + 2) 2**-22 sum_{b,t} |ga[b, t, n]| / gain`` (a float32 bound on re-ordering a
  sum of ``B T`` terms whose magnitudes sum to at most ``2 sum |ga| / gain``);
* one training step of a small net, ``simulate`` (function and CLI) and, in the slow run, ``snnhw train``
  on the tiny recipe (same report apart from times, same weights) through the Triton path equal the
  reference;
* every kernel variant compiles for sm_90 (triton 3; no GPU needed), the backward without fused
  multiply-adds and with IEEE division.

Sizes: ``SNNHW_TRITON_CI_CASES`` cases (default 300) by default; the ``slow`` run
``SNNHW_TRITON_CASES`` (default 10 000), in packs of 40 cases (100 in the slow run; every fifth pack
recurrent, a quarter the size).
"""
from __future__ import annotations

import copy
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton", reason="triton is not installed")
if int(pytest.importorskip("triton").__version__.split(".")[0]) < 3:
    # triton 2.3's interpreter (the 3.10 lane) leaves a module whose __file__ is a function, which
    # breaks inspect.getmodule in Lava's process-model discovery later in the same pytest process
    pytest.skip("the Triton interpreter tests run on triton >= 3 (the 3.13 lane)", allow_module_level=True)

from snnhw.core import fused_triton, neuron, synapse  # noqa: E402
from snnhw.core.neuron import ExactCuba, cuba_loop  # noqa: E402
from snnhw.core.surrogate import SURROGATES, Surrogate  # noqa: E402
from snnhw.errors import MissingDependencyError  # noqa: E402
from test_fused import _assert_coverage as assert_coverage  # noqa: E402
from test_fused import lif_grads, recurrent_lif_case  # noqa: E402
from test_fused import run_cases as fused_run_cases  # noqa: E402

pytestmark = pytest.mark.skipif(not fused_triton.available(),
                                reason=f"triton older than {fused_triton.MIN_VERSION} (untested there)")

CI_CASES = int(os.environ.get("SNNHW_TRITON_CI_CASES", "300"))
SLOW_CASES = int(os.environ.get("SNNHW_TRITON_CASES", "10000"))


def run_cases(n_cases: int, seed: int, per_pack: int = 40) -> dict:
    """test_fused's case loop and coverage check with the Triton forward in place of the numba one."""
    stats = fused_run_cases(n_cases, seed, per_pack, forward=fused_triton.forward)
    assert_coverage(stats, keys=("bounded", "recurrent", "saturated", "large_u", "spikes"))
    return stats


def test_triton_forward_equals_reference_random_cases():
    assert run_cases(CI_CASES, seed=111)["cases"] >= CI_CASES


@pytest.mark.slow
def test_triton_forward_equals_reference_many_cases():
    stats = run_cases(SLOW_CASES, seed=4049, per_pack=100)
    print(f"\ntriton vs reference: {stats['cases']} cases, 0 mismatches; {stats}")


def test_triton_forward_shapes_dtypes_and_fallback():
    g = torch.Generator().manual_seed(5)
    a = torch.randint(-200, 900, (2, 3, 11, 7), generator=g)  # [..., T, N]: two leading axes
    ref = cuba_loop(a, ExactCuba(3000, 3900, 64 * 9, 0), keep_vpre=False, record=False)
    s, vpre, u, v = fused_triton.forward(a.float(), 3000, 3900, 64 * 9, 0, None, 0, False, False, torch.float32)
    assert vpre is None and u is None and v is None and s.shape == a.shape and s.dtype == torch.float32
    assert torch.equal(s, ref.s.float()) and bool(s.any())
    # a threshold per replica (not per neuron) is left to the reference loop
    assert fused_triton.forward(a, 4000, 4000, torch.tensor([[64], [128]]), 0, None, 0, False, False,
                                torch.bool) is None
    assert fused_triton.forward(a[:, :, :0], 4000, 4000, 64, 0, None, 0, False, False, torch.bool) is None


def _backward_case(seed: int, recurrent: bool, subtract: bool, surrogate: Surrogate):
    g = torch.Generator().manual_seed(seed)
    B, T, N = 3, 23, 13
    a = torch.randint(-60, 200, (B, T, N), generator=g)
    run = cuba_loop(a, ExactCuba(3500, 3800, 64 * 40, 0), keep_vpre=True)
    grad_s = torch.randn(B, T, N, generator=g)
    wr = torch.randint(-256, 255, (N, N), generator=g).float() * 2.0 ** -3 if recurrent else None
    return (grad_s, run.s.float(), run.v_pre, 1 - 596 / 4096, 1 - 296 / 4096, 64.0, 64.0 * 40, surrogate,
            subtract, wr)


@pytest.mark.parametrize("name", sorted(SURROGATES))
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("subtract", [False, True])
def test_triton_backward_equals_reference(name, recurrent, subtract):
    args = _backward_case(7, recurrent, subtract, Surrogate(name))
    ga, gb = fused_triton.backward(*args)
    g_s, s_, vpre, alpha, beta, gain, theta, surrogate, subtract, wr = args
    ra, rb = neuron._bptt_reference(g_s, s_, vpre, wr, alpha, beta, gain, theta, surrogate,
                                    "subtract" if subtract else "zero")
    assert ga.dtype == ra.dtype == torch.float32 and ga.shape == ra.shape and float(ra.abs().max()) > 0
    if name == "lavadl":
        assert float((ga - ra).abs().max()) <= 1e-5 * float(ra.abs().max())
    else:
        assert torch.equal(ga, ra)
    B, T = ra.shape[:2]
    bound = (B + T + 2) * 2.0 ** -22 * ra.abs().sum((0, 1)) / args[5] + 1e-5 * float(rb.abs().max()) * (
        name == "lavadl")
    assert bool(((gb - rb).abs() <= bound).all()), float((gb - rb).abs().max())
    ga2, gb2 = fused_triton.backward(*args, need_bias=False)
    assert torch.equal(ga2, ga) and not bool(gb2.any())


def test_cuba_lif_triton_path_same_spikes_and_gradients(monkeypatch):
    a, bias, w_rec = recurrent_lif_case()
    tri = lif_grads(monkeypatch, "triton", a, bias, w_rec)
    ref = lif_grads(monkeypatch, "reference", a, bias, w_rec)
    assert 0 < float(tri[0].mean()) < 1
    for x, y in zip(tri[:2] + tri[3:], ref[:2] + ref[3:]):  # spikes, a.grad, w_rec.grad: exact
        assert x.dtype == y.dtype and torch.equal(x, y)
    torch.testing.assert_close(tri[2], ref[2], rtol=1e-5, atol=1e-6 * float(ref[2].abs().max()))


def _tiny_net(seed: int):
    from snnhw.core.layers import SpikingDense, SpikingNet
    from snnhw.spec import Neuron

    torch.manual_seed(seed)
    n = Neuron(i_decay=1024, v_decay=128, vth_mant=100)
    sizes = (10, 16, 4)
    layers = [SpikingDense("fc0", sizes[0], sizes[1], n, recurrent=True, rec_exp=-1, bias=True),
              SpikingDense("fc1", sizes[1], sizes[2], n, bias=True)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.normal_(0, 40)
            layer.bias.uniform_(-20, 60)
        layers[0].weight_rec.normal_(0, 30)
    return SpikingNet((sizes[0],), layers)


def _train_step(monkeypatch, kernel: str, model, x, y):
    monkeypatch.setenv("SNNHW_KERNEL", kernel)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out = model(x)
    loss = F.cross_entropy(out.sum(1) * 0.5, y)
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    model.clamp_parameters_()
    return out.detach(), float(loss), grads


def test_training_step_through_triton_path(monkeypatch):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(4, 12, 10, generator=g) < 0.3).float()
    y = torch.randint(0, 4, (4,), generator=g)
    base = _tiny_net(1)
    tri_model, ref_model = copy.deepcopy(base), copy.deepcopy(base)
    tri = _train_step(monkeypatch, "triton", tri_model, x, y)
    ref = _train_step(monkeypatch, "reference", ref_model, x, y)
    assert torch.equal(tri[0], ref[0]) and bool(tri[0].any()) and tri[1] == ref[1]
    for gt, gr in zip(tri[2], ref[2]):  # weight grads exact; bias grads to float rounding of the sum
        torch.testing.assert_close(gt, gr, rtol=1e-5, atol=1e-6 * max(float(gr.abs().max()), 1e-30))
    assert any(float(g_.abs().max()) > 0 for g_ in tri[2])


def test_simulate_through_triton_path(monkeypatch):
    from snnhw.core.network import simulate

    spec = _tiny_net(2).to_spec()
    x = (torch.rand(3, 15, 10, generator=torch.Generator().manual_seed(4)) < 0.4).to(torch.int64)
    monkeypatch.setenv("SNNHW_KERNEL", "triton")
    tri = simulate(spec, x, record=True)
    monkeypatch.setenv("SNNHW_KERNEL", "reference")
    ref = simulate(spec, x, record=True)
    assert len(tri.traces) == 2 and bool(tri.output.any())
    for t, r in zip(tri.traces, ref.traces):
        assert all(p.dtype == q.dtype and torch.equal(p, q) for p, q in zip(t, r))


def test_exact_path_picks_triton(monkeypatch):
    a = torch.zeros(1, 2, 3)
    monkeypatch.setenv("SNNHW_KERNEL", "triton")
    assert neuron.exact_path(a) == "triton"
    assert neuron.exact_path(torch.zeros(1, 2, 3, device="meta")) == "reference"  # neither CPU nor CUDA
    monkeypatch.setattr(fused_triton, "available", lambda: False)
    with pytest.raises(MissingDependencyError, match="triton"):
        neuron.exact_path(a)
    monkeypatch.setenv("SNNHW_KERNEL", "fused")
    assert neuron.exact_path(a) in ("fused", "reference")  # CPU tensors never take Triton by default


def test_cpu_path_does_not_import_triton():
    code = ("import sys, torch; from snnhw.core import network, layers, neuron; from snnhw.train import loop; "
            "neuron.cuba_lif_trace(torch.ones(1, 3, 2), neuron.CubaParams(0, 0, 1)); "
            "print('triton' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "SNNHW_KERNEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"


def test_simulate_cli_triton_path_and_device_flag(tmp_path, monkeypatch, capsys):
    from netx_files import cuba, write_raw
    from snnhw.cli import main

    rng = np.random.default_rng(8)
    path = str(write_raw(tmp_path / "m.net", [
        dict(type="dense", weight=rng.integers(-60, 61, (14, 10)) * 2, bias=rng.integers(-5, 10, 14),
             neuron=cuba(0, 4096, 70)),
        dict(type="dense", weight=rng.integers(-50, 81, (4, 14)) * 2, neuron=cuba(1000, 300, 40))]))
    np.save(tmp_path / "x.npy", (rng.random((3, 20, 10)) < 0.35).astype(np.uint8))
    outs = {}
    for k in ("triton", "reference"):
        monkeypatch.setenv("SNNHW_KERNEL", k)
        assert main(["simulate", path, "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / f"{k}.npy")]) == 0
        outs[k] = np.load(tmp_path / f"{k}.npy")
    assert np.array_equal(outs["triton"], outs["reference"]) and outs["triton"].any()
    capsys.readouterr()
    if not torch.cuda.is_available():
        assert main(["simulate", path, "--inputs", str(tmp_path / "x.npy"), "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "--device cuda: no CUDA device" in err and err.count("\n") == 1


def _compile_for_h100(fn, types: dict, constexprs: dict):
    """``fn`` compiled for sm_90 (no GPU needed: triton bundles ptxas); returns its PTX."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig = dict(types, **{k: "constexpr" for k in constexprs})
    k = triton.compile(ASTSource(fn, sig, constexprs), target=GPUTarget("cuda", 90, 32),
                       options={"num_warps": 4, "enable_fp_fusion": False})
    return k.asm["ptx"]


def test_kernels_compile_for_a_gpu(tmp_path, monkeypatch):
    """The interpreter does not type-check like the compiler: compile every kernel variant training and
    simulate launch to PTX/cubin for an H100-class GPU, and check the backward's float arithmetic is
    IEEE division without fused multiply-adds (as torch's separate elementwise kernels compute it)."""
    import triton

    if fused_triton._version() < (3, 0):
        pytest.skip("the ahead-of-time compile API used here is triton 3's")
    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    if not os.path.exists(ptxas):
        pytest.skip("this triton wheel bundles no ptxas")
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    from snnhw import loihi

    fwd, bwd = fused_triton._kernels(False)
    ints = {k: "i32" for k in ("BN", "N", "stride_b", "t0", "nsteps")}
    for keep_vpre, record, s_type in ((True, False, "*fp32"), (False, True, "*i8")):
        types = {k: "*i64" for k in ("a_ptr", "ifac_ptr", "vfac_ptr", "vth_ptr", "bias_ptr", "u_ptr", "v_ptr",
                                     "urec_ptr", "vrec_ptr")}
        types.update(ints, s_ptr=s_type, vpre_ptr="*fp32")
        ptx = _compile_for_h100(fwd, types, {"KEEP_VPRE": keep_vpre, "RECORD": record, "BLOCK": 128,
                                             "MAX_UV": loihi.MAX_UV, "V_LIMIT": loihi.V_LIMIT,
                                             "ACT_SHIFT": loihi.ACT_SHIFT, "DECAY_SHIFT": loihi.DECAY_SHIFT})
        assert ".entry _forward_kernel" in ptx
    for code, subtract in [(c, False) for c in fused_triton.SURROGATE_CODES.values()] + [(0, True)]:
        types = {k: "*fp32" for k in ("gs_ptr", "s_ptr", "vpre_ptr", "ga_ptr", "gv_ptr", "gu_ptr", "gsum_ptr")}
        types.update(ints, **{k: "fp32" for k in ("alpha", "beta", "gain", "theta", "c1", "c2")})
        ptx = _compile_for_h100(bwd, types, {"SURR": code, "SUBTRACT": subtract, "DIV_RN": True, "BLOCK": 128})
        assert "div.rn.f32" in ptx and "div.full" not in ptx and "fma." not in ptx


@pytest.mark.slow
def test_snnhw_train_same_report_through_triton_path(tmp_path, monkeypatch):
    """``snnhw train`` on the tiny recipe: the Triton path (interpreter) gives the reference path's report
    (apart from times) and the same trained weights."""
    from tiny_recipe import assert_same_runs, train_on_kernels

    assert_same_runs(train_on_kernels(tmp_path, monkeypatch, ("triton", "reference")), "triton", "reference")
