"""Differential tests: the torch core vs Lava's fixed-point CPU simulator, every spike and every u, v.

Random networks of 1-4 layers, widths 1-64, 1-64 steps; decays at 0, 1, 4095, 4096 (netx units) and
in between; weights at the 8-bit extremes, out of range (Lava clips), sparse, constant; every
weight_exp in -8..7 and num_weight_bits 1..8; excitatory, inhibitory and mixed sign modes; thresholds
0..131071 and biases -4096..4095 with bias_exp 0..7; dense and sparse 0/1 inputs; graded first layers
with payloads up to int32; recurrent layers. Many cases run in one Lava run (see ``tests/lava_cases.py``
for the packing); the core runs each case on its own. ``hypothesis`` draws the per-pack Lava parameters
and a seed for the per-case arrays; shrinking is off (a failing pack is reported with its seed and
re-runs with it).

Sizes: the default run checks a few hundred cases (``SNNHW_DIFF_CI_CASES``, default 300). The
``slow`` run checks ``SNNHW_DIFF_CASES`` cases (default 10 000) and prints the count, the mismatches
and the wall time::

    SNNHW_DIFF_CASES=10000 .venv/bin/pytest -m slow -s tests/test_lava_differential.py
"""
from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from snnhw import loihi
from snnhw.backends.lava_runtime import lava_available
from snnhw.backends.lava_stages import LavaStage, run_stages

from lava_cases import (Case, LayerParams, PackParams, compare, core_case, draw_cases, lava_pack,
                        pack_sign_mode, run_pack)

pytestmark = pytest.mark.skipif(not lava_available(), reason="lava-nc is not installed")

SIGNS = ("exc", "inh", "mixed")
NWB = st.sampled_from([8, 8, 8, 8, 7, 6, 5, 4, 3, 2, 1])
CASES_PER_PACK = 150
CI_CASES = int(os.environ.get("SNNHW_DIFF_CI_CASES", "300"))
SLOW_CASES = int(os.environ.get("SNNHW_DIFF_CASES", "10000"))


def _settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate], print_blob=True,
                    suppress_health_check=list(HealthCheck))


def layer_params(recurrent):
    return st.builds(LayerParams, weight_exp=st.integers(-8, 7), num_weight_bits=NWB,
                     sign=st.sampled_from(SIGNS), recurrent=recurrent, rec_exp=st.integers(-8, 7),
                     rec_num_weight_bits=NWB, rec_sign=st.sampled_from(SIGNS))


@st.composite
def packs(draw, n_cases, recurrent=st.sampled_from([False, False, False, False, True])):
    """A PackParams: depth 1-4, 1-6 parameter groups, graded or binary input, Sparse or Dense."""
    depth = draw(st.integers(1, 4))
    synapse = draw(st.sampled_from(["sparse", "sparse", "sparse", "dense"]))
    n_groups = draw(st.integers(1, 6 if synapse == "sparse" else 2))
    groups = [[draw(layer_params(recurrent)) for _ in range(depth)] for _ in range(n_groups)]
    return PackParams(seed=draw(st.integers(0, 2 ** 32 - 1)), n_cases=n_cases, groups=groups,
                      graded=draw(st.booleans()), synapse=synapse)


def _check_packs(n_cases_total, per_pack, strategy_kw=None, label="diff"):
    """Run ceil(n_cases_total / per_pack) hypothesis-drawn packs; return (cases, mismatch lines)."""
    torch.set_num_threads(1)
    stats = {"cases": 0, "packs": 0, "bad": [], "coverage": {}}
    n_packs = max(1, math.ceil(n_cases_total / per_pack))
    t0 = time.time()

    @_settings(n_packs)
    @given(pack=packs(per_pack, **(strategy_kw or {})))
    def one(pack):
        n, bad = run_pack(pack, stats["coverage"])
        stats["cases"] += n
        stats["packs"] += 1
        stats["bad"].extend(bad)
        print(f"[{label}] pack {stats['packs']}/{n_packs}: depth {pack.depth}, {len(pack.groups)} groups, "
              f"{pack.synapse}, graded={pack.graded}: {n} cases, {len(bad)} mismatches "
              f"(total {stats['cases']} cases, {len(stats['bad'])} mismatches, {time.time() - t0:.0f} s)",
              flush=True)

    one()
    print(f"[{label}] SUMMARY: {stats['cases']} cases in {stats['packs']} Lava runs, "
          f"{len(stats['bad'])} mismatches, {time.time() - t0:.1f} s; cases reaching: {stats['coverage']}",
          flush=True)
    return stats


def test_core_matches_lava_on_random_networks():
    stats = _check_packs(CI_CASES, 50)
    assert stats["cases"] >= CI_CASES
    cov = stats["coverage"]  # the random cases do reach the regimes they are meant to test
    assert all(cov.get(k, 0) > 0 for k in ("spiking", "silent", "v_at_-(2**23-1)", "|u|>2**23")), cov
    assert not stats["bad"], "\n".join(stats["bad"][:10])


def test_recurrent_networks_match_lava():
    stats = _check_packs(120, 40, dict(recurrent=st.just(True)), label="recurrent")
    assert not stats["bad"], "\n".join(stats["bad"][:10])


@pytest.mark.parametrize("graded", [False, True])
def test_every_weight_exponent_bit_width_and_sign_mode(graded):
    """One pack, 16 groups: layer 0 uses weight_exp g-8, layer 1 uses 7-g (every exponent in -8..7 on
    both), num_weight_bits cycles 1..8, all three sign regimes, recurrent weights in every other group."""
    groups = [[LayerParams(weight_exp=g - 8, num_weight_bits=1 + g % 8, sign=SIGNS[g % 3],
                           recurrent=g % 2 == 1, rec_exp=(g * 5) % 16 - 8, rec_num_weight_bits=8 - g % 8,
                           rec_sign=SIGNS[(g + 1) % 3]),
               LayerParams(weight_exp=7 - g, num_weight_bits=8 - (g * 3) % 8, sign=SIGNS[(g + 2) % 3])]
              for g in range(16)]
    n, bad = run_pack(PackParams(seed=20261126 + graded, n_cases=96, groups=groups, graded=graded))
    assert n == 96
    assert not bad, "\n".join(bad[:10])


def _saturating_cases():
    """Hand-made cases that drive each state into its limit; returns (pack, cases)."""
    T = 40
    big_in = np.ones((T, 64), np.int64)

    def case(x, w, vth, bias, i_decay=0, v_decay=0):
        n_out = w.shape[0]
        return Case([x.shape[1], n_out], x.shape[0], x, [w], [None], [i_decay], [v_decay], [vth],
                    [np.full(n_out, bias, np.int64)], [7])

    exc = [case(big_in, np.full((4, 64), 255), 131071, 4095),  # u wraps (24 bits), v saturates high
           case(big_in, np.full((2, 64), 255), 0, 0, i_decay=4096, v_decay=4096)]
    inh = [case(big_in, np.full((3, 64), -255), 131071, -4096),  # u wraps negative, v saturates low
           case(big_in[:, :5], np.full((2, 5), -1), 0, -4096, i_decay=4095, v_decay=1)]
    graded_x = np.zeros((T, 3), np.int64)
    graded_x[::3] = [(1 << 31) - 1, -(1 << 31), 1 << 26]  # a << 6 overflows int32, the graded sum too
    graded_w = np.array([[2, 0, 0], [0, -2, 0], [0, 0, 254], [255, 255, 255], [-256, 0, 3]])
    grd = [case(graded_x, graded_w, 1000, 0, i_decay=100, v_decay=100)]
    return [(PackParams(seed=0, n_cases=len(exc), groups=[[LayerParams(7, 8, "exc")]]), exc),
            (PackParams(seed=0, n_cases=len(inh), groups=[[LayerParams(7, 8, "inh")]]), inh),
            (PackParams(seed=0, n_cases=1, groups=[[LayerParams(0, 8, "mixed")]], graded=True), grd),
            (PackParams(seed=0, n_cases=1, groups=[[LayerParams(-3, 8, "mixed")]], graded=True), grd)]


def test_saturation_wrap_and_overflow_match_lava():
    """States reach their limits (checked on Lava's own traces) and the core follows bit for bit.

    (v saturated high always spikes, since the largest threshold 131071 << 6 is below 2**23 - 1, so the
    post-reset trace shows only the low limit; the high one is covered by the spikes.)"""
    seen = {"v_min": False, "u_wrap": False, "a_overflow": False}
    for pack, cases in _saturating_cases():
        lava = lava_pack(pack, cases)
        for j, c in enumerate(cases):
            assert compare(core_case(pack, cases, j), lava[j]) is None
            s, u, v = lava[j][0]
            seen["v_min"] |= bool((v == -loihi.V_LIMIT).any())
            du = np.diff(u, axis=0)
            seen["u_wrap"] |= bool(((du < 0) & (u[1:] < 0) & (u[:-1] > 0)).any() or ((du > 0) & (u[:-1] < 0) & (u[1:] > 0)).any())
            if pack.graded:  # the synaptic input itself: |a| >= 2**25 makes a << 6 overflow int32
                w_eff, _ = loihi.dense_effective_weights(c.w[0], 8, pack_sign_mode(c.w))
                a = loihi.dense_accumulate(torch.as_tensor(c.x), torch.as_tensor(w_eff),
                                           pack.groups[0][0].weight_exp, graded=True)
                seen["a_overflow"] |= bool((a.abs() >= 1 << 25).any())
    assert all(seen.values()), seen


def _solo_stages(pack: PackParams, cases, j):
    """Case j alone, as a plain Lava chain of Dense processes, with the sign modes its group's packed
    matrices had (packing changes what the sign mode is derived from, so it is given explicitly)."""
    G = len(pack.groups)
    group = [c for jj, c in enumerate(cases) if jj % G == j % G]
    c = cases[j]
    stages = []
    for i in range(pack.depth):
        lp = pack.layer(j, i)
        st_ = LavaStage(weights=c.w[i], shape=(c.widths[i + 1],), du=loihi.lava_du(c.i_decay[i]),
                        dv=loihi.lava_dv(c.v_decay[i]), vth=c.vth[i], bias_mant=c.bias_mant[i],
                        bias_exp=c.bias_exp[i], weight_exp=lp.weight_exp, num_weight_bits=lp.num_weight_bits,
                        sign_mode=int(pack_sign_mode([g.w[i] for g in group])), graded=i == 0 and pack.graded)
        if lp.recurrent:
            st_.weights_rec = c.w_rec[i]
            st_.rec_exp, st_.rec_num_weight_bits = lp.rec_exp, lp.rec_num_weight_bits
            st_.rec_sign_mode = int(pack_sign_mode([g.w_rec[i] for g in group]))
        stages.append(st_)
    return stages


@pytest.mark.parametrize("graded", [False, True])
def test_packing_does_not_change_lavas_results(graded):
    """Packed (Sparse and Dense block matrices, several groups, our file recorders) and unpacked (one
    Lava Dense chain per case, Lava's own RingBuffer sink and Monitors) Lava runs agree exactly."""
    groups = [[LayerParams(-2, 8, "mixed", recurrent=True, rec_exp=1, rec_sign="mixed"), LayerParams(3, 6, "exc")],
              [LayerParams(5, 7, "inh"), LayerParams(-8, 8, "mixed", recurrent=True, rec_exp=-3, rec_sign="inh")]]
    pack = PackParams(seed=7 + graded, n_cases=6, groups=groups, graded=graded, max_width=24, max_steps=30)
    cases = draw_cases(pack)
    sparse = lava_pack(pack, cases, synapse="sparse")
    dense = lava_pack(pack, cases, synapse="dense")
    spikes = 0
    for j, c in enumerate(cases):
        outs = run_stages(_solo_stages(pack, cases, j), c.x.T, record=True, probes="lava")
        solo = [(o.s.T, o.u.T, o.v.T) for o in outs]
        assert compare(solo, sparse[j]) is None, f"case {j}: packed Sparse vs unpacked Dense"
        assert compare(solo, dense[j]) is None, f"case {j}: packed Dense vs unpacked Dense"
        assert compare(core_case(pack, cases, j), solo) is None, f"case {j}: core vs unpacked Lava"
        spikes += sum(int(o.s.sum()) for o in outs)
    assert spikes > 0  # not a trivially silent comparison


@pytest.mark.slow
def test_core_matches_lava_on_10000_random_networks():
    stats = _check_packs(SLOW_CASES, CASES_PER_PACK, label="slow")
    assert stats["cases"] >= SLOW_CASES
    assert not stats["bad"], "\n".join(stats["bad"][:10])
