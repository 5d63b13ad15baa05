"""Random differential cases, packed many to one Lava run.

A *pack* is one Lava network holding many independent random *cases* side by side: one LIF process per
layer holds every case's neurons, with per-neuron ``du``/``dv``/``vth``/``bias_mant``/``bias_exp``
arrays (Lava's fixed-point LIF arithmetic is elementwise). Lava's Dense/Sparse parameters
(``weight_exp``, ``num_weight_bits``, the derived sign mode) are per process, so the cases of a pack
are split into G *groups*: each group has, per layer, its own synapse process (Lava ``Sparse``, or
``Dense`` for small packs) whose matrix holds the group's cases' raw weight matrices on the block
diagonal and zeros elsewhere; all G synapses of a layer feed the layer's one LIF ``a_in`` (Lava sums
the ports in int32; the other groups contribute exact zeros). Everything else (widths, time steps,
decays, thresholds, biases, weights, inputs) is drawn per case. The sign mode Lava derives from a
group's matrix is ``determine_sign_mode`` of the group's weights (zeros can change neither
``min >= 0`` nor ``max <= 0``); each case's spec gets the effective weights under that mode
(``snnhw.loihi.dense_effective_weights``), so Lava is handed raw weights and does its own clipping and
truncation while the core sees the mantissas Lava ends up multiplying with.

Cases have their own number of steps (1..64); the pack runs for the longest and each case is compared
on its own first ``T`` steps (a causal network cannot see later inputs).

Our side runs each case on its own, unpacked, through ``snnhw.core.network.simulate(record=True)``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.backends.lava_stages import LavaStage, LavaSynapse, run_stages
from snnhw.core.network import simulate
from snnhw.spec import Dense, NetworkSpec, Neuron

DECAY_EDGES = (0, 1, 2, 4094, 4095, 4096)
VTH_EDGES = (0, 1, 2, 131070, 131071)
BIAS_EDGES = (-4096, -4095, -1, 0, 1, 4094, 4095)


@dataclass
class LayerParams:
    """Per-pack parameters of one stage (shared by every case: they are per Lava process)."""

    weight_exp: int
    num_weight_bits: int
    sign: str  # "exc" | "inh" | "mixed": which raw weights the cases draw
    recurrent: bool = False
    rec_exp: int = 0
    rec_num_weight_bits: int = 8
    rec_sign: str = "mixed"


@dataclass
class PackParams:
    """One pack: per group, per stage Lava parameters (``groups[g][i]``); graded first layer; Dense or
    Sparse processes. Case j belongs to group ``j % len(groups)``."""

    seed: int
    n_cases: int
    groups: List[List[LayerParams]]
    graded: bool = False
    synapse: str = "sparse"  # "dense": Lava Dense (block matrix stored densely); "sparse": Lava Sparse
    max_width: int = 64
    max_steps: int = 64

    @property
    def depth(self) -> int:
        return len(self.groups[0])

    def layer(self, case: int, i: int) -> LayerParams:
        return self.groups[case % len(self.groups)][i]


@dataclass
class Case:
    """One random network and its input, in raw (pre-Lava) values."""

    widths: List[int]
    steps: int
    x: np.ndarray  # [T, n0]
    w: List[np.ndarray]  # raw weights [n_{l+1}, n_l]
    w_rec: List[Optional[np.ndarray]]
    i_decay: List[int]
    v_decay: List[int]
    vth: List[int]
    bias_mant: List[np.ndarray]
    bias_exp: List[int]


# ------------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------------
def _edge_or_uniform(rng, edges, lo, hi, p_edge=0.5) -> int:
    if rng.random() < p_edge:
        return int(rng.choice(edges))
    return int(rng.integers(lo, hi + 1))


def _weights(rng, shape, sign: str) -> np.ndarray:
    """Raw integer weights in one of several regimes: uniform, 8-bit extremes, sparse, constant,
    all zero, slightly out of range (Lava clips), small."""
    style = rng.choice(["uniform", "extreme", "sparse", "const", "zero", "over", "small"],
                       p=[0.3, 0.25, 0.15, 0.08, 0.04, 0.08, 0.1])
    if sign == "exc":
        lo, hi, ext = 0, 255, np.array([0, 1, 254, 255])
    elif sign == "inh":
        lo, hi, ext = -255, 0, np.array([0, -1, -254, -255, -256])
    else:
        lo, hi, ext = -256, 255, np.array([-256, -255, -1, 0, 1, 254, 255])
    if style == "uniform":
        w = rng.integers(lo, hi + 1, shape)
    elif style == "extreme":
        w = rng.choice(ext, shape)
    elif style == "sparse":
        w = rng.integers(lo, hi + 1, shape) * (rng.random(shape) < 0.1)
    elif style == "const":
        w = np.full(shape, rng.choice(ext))
    elif style == "zero":
        w = np.zeros(shape, np.int64)
    elif style == "over":  # beyond 8 bits: Lava clips to the sign mode's range
        w = rng.integers(-400 * (sign != "exc"), 400 * (sign != "inh") + 1, shape)
    else:
        w = rng.integers(max(lo, -4), min(hi, 4) + 1, shape)
    return np.asarray(w, dtype=np.int64)


def _input(rng, steps: int, n: int, graded: bool) -> np.ndarray:
    density = float(rng.choice([0.0, 0.02, 0.1, 0.3, 0.6, 1.0], p=[0.05, 0.2, 0.25, 0.25, 0.15, 0.1]))
    mask = rng.random((steps, n)) < density
    if not graded:
        return mask.astype(np.int64)
    regime = rng.choice(["byte", "int24", "int32", "signed_small"], p=[0.35, 0.3, 0.15, 0.2])
    if regime == "byte":
        vals = rng.integers(0, 256, (steps, n))
    elif regime == "int24":
        vals = rng.integers(-(1 << 23), 1 << 23, (steps, n))
    elif regime == "int32":
        vals = rng.choice([-(1 << 31), (1 << 31) - 1, -(1 << 25), 1 << 25, 12345678], (steps, n))
    else:
        vals = rng.integers(-8, 9, (steps, n))
    return (vals * mask).astype(np.int64)


def draw_case(rng: np.random.Generator, pack: PackParams, j: int) -> Case:
    depth = pack.depth
    wide = rng.random() < 0.3
    widths = [int(rng.integers(1, pack.max_width + 1)) if wide else int(rng.integers(1, 17))
              for _ in range(depth + 1)]
    steps = int(rng.integers(1, pack.max_steps + 1)) if rng.random() < 0.7 else pack.max_steps
    c = Case(widths, steps, _input(rng, steps, widths[0], pack.graded), [], [], [], [], [], [], [])
    for i in range(depth):
        lp = pack.layer(j, i)
        n_in, n_out = widths[i], widths[i + 1]
        c.w.append(_weights(rng, (n_out, n_in), lp.sign))
        c.w_rec.append(_weights(rng, (n_out, n_out), lp.rec_sign) if lp.recurrent else None)
        c.i_decay.append(_edge_or_uniform(rng, DECAY_EDGES, 0, 4096))
        c.v_decay.append(_edge_or_uniform(rng, DECAY_EDGES, 0, 4096))
        c.vth.append(_edge_or_uniform(rng, VTH_EDGES, 0, int(rng.choice([64, 1024, 131071])), 0.4))
        bstyle = rng.choice(["zero", "edge", "uniform", "const"])
        if bstyle == "zero":
            b = np.zeros(n_out, np.int64)
        elif bstyle == "edge":
            b = rng.choice(BIAS_EDGES, n_out)
        elif bstyle == "uniform":
            b = rng.integers(-4096, 4096, n_out)
        else:
            b = np.full(n_out, rng.choice(BIAS_EDGES))
        c.bias_mant.append(np.asarray(b, np.int64))
        c.bias_exp.append(int(rng.integers(0, 8)))
    return c


def draw_cases(pack: PackParams) -> List[Case]:
    rng = np.random.default_rng(pack.seed)
    return [draw_case(rng, pack, j) for j in range(pack.n_cases)]


# ------------------------------------------------------------------------------------------------
# Lava side: one packed run
# ------------------------------------------------------------------------------------------------
def pack_sign_mode(mats: List[np.ndarray]) -> loihi.SignMode:
    """Lava's derived sign mode of the block-diagonal matrix of ``mats`` (zeros change nothing)."""
    allw = np.concatenate([np.asarray(m).ravel() for m in mats])
    return loihi.determine_sign_mode(allw)


def _blocks(mats: List[np.ndarray], sparse: bool):
    from scipy import sparse as sp

    if sparse:
        return sp.block_diag([sp.csr_matrix(m) for m in mats], format="csr")
    rows = sum(m.shape[0] for m in mats)
    cols = sum(m.shape[1] for m in mats)
    out = np.zeros((rows, cols), np.int64)
    r = c = 0
    for m in mats:
        out[r:r + m.shape[0], c:c + m.shape[1]] = m
        r, c = r + m.shape[0], c + m.shape[1]
    return out


def _group_blocks(mats: List[np.ndarray], members: List[bool], sparse: bool):
    """Block-diagonal matrix of ``mats`` with the blocks of non-members zeroed."""
    return _blocks([m if keep else np.zeros_like(m) for m, keep in zip(mats, members)], sparse)


def lava_pack(pack: PackParams, cases: List[Case], synapse: Optional[str] = None,
              probes: str = "recorder") -> List[List[Tuple]]:
    """Run ``cases`` as one packed Lava network. Returns per case, per layer, (s, u, v) each [T, n]."""
    synapse = synapse or pack.synapse
    sparse = synapse == "sparse"
    G = len(pack.groups)
    T = max(c.steps for c in cases)
    data = np.zeros((sum(c.widths[0] for c in cases), T), np.int64)
    off = 0
    for c in cases:
        data[off:off + c.widths[0], :c.steps] = c.x.T
        off += c.widths[0]
    stages = []
    for i in range(pack.depth):
        def tile(vals):
            return np.concatenate([np.full(c.widths[i + 1], v, np.int64) for c, v in zip(cases, vals)])

        syns, recs = [], []
        for g in range(G):
            members = [j % G == g for j in range(len(cases))]
            if not any(members):
                continue
            lp = pack.groups[g][i]
            syns.append(LavaSynapse(_group_blocks([c.w[i] for c in cases], members, sparse), lp.weight_exp,
                                    lp.num_weight_bits, None, i == 0 and pack.graded, sparse))
            if lp.recurrent:
                recs.append(LavaSynapse(_group_blocks([c.w_rec[i] if c.w_rec[i] is not None
                                                       else np.zeros((c.widths[i + 1],) * 2, np.int64)
                                                       for c in cases], members, sparse),
                                        lp.rec_exp, lp.rec_num_weight_bits, None, False, sparse))
        first = syns[0]
        st = LavaStage(
            weights=first.weights, shape=(sum(c.widths[i + 1] for c in cases),),
            du=tile([loihi.lava_du(c.i_decay[i]) for c in cases]),
            dv=tile([loihi.lava_dv(c.v_decay[i]) for c in cases]),
            vth=tile([c.vth[i] for c in cases]),
            bias_mant=np.concatenate([c.bias_mant[i] for c in cases]),
            bias_exp=tile([c.bias_exp[i] for c in cases]),
            weight_exp=first.weight_exp, num_weight_bits=first.num_weight_bits,
            graded=first.graded, sparse=sparse, extra=syns[1:], extra_rec=recs)
        stages.append(st)
    outs = run_stages(stages, data, record=True, probes=probes)
    result = []
    offs = [0] * pack.depth
    for c in cases:
        per_layer = []
        for i, o in enumerate(outs):
            n = c.widths[i + 1]
            sl = slice(offs[i], offs[i] + n)
            offs[i] += n
            per_layer.append(tuple(a[sl, :c.steps].T for a in (o.s, o.u, o.v)))
        result.append(per_layer)
    return result


# ------------------------------------------------------------------------------------------------
# our side: each case alone, through the core
# ------------------------------------------------------------------------------------------------
def case_spec(pack: PackParams, cases: List[Case], j: int) -> NetworkSpec:
    """The NetworkSpec of case ``j`` with the effective weights Lava ends up using in this pack."""
    c = cases[j]
    G = len(pack.groups)
    group = [cc for jj, cc in enumerate(cases) if jj % G == j % G]
    layers = []
    for i in range(pack.depth):
        lp = pack.layer(j, i)
        mode = pack_sign_mode([cc.w[i] for cc in group])
        w_eff, _ = loihi.dense_effective_weights(c.w[i], lp.num_weight_bits, sign_mode=mode)
        w_rec = None
        if lp.recurrent:
            rmode = pack_sign_mode([cc.w_rec[i] for cc in group])
            w_rec, _ = loihi.dense_effective_weights(c.w_rec[i], lp.rec_num_weight_bits, sign_mode=rmode)
        layers.append(Dense(name=f"l{i}", weight=w_eff,
                            neuron=Neuron(i_decay=c.i_decay[i], v_decay=c.v_decay[i], vth_mant=c.vth[i]),
                            weight_exp=lp.weight_exp, bias_mant=c.bias_mant[i], bias_exp=c.bias_exp[i],
                            weight_rec=w_rec, rec_exp=lp.rec_exp, graded_input=(i == 0 and pack.graded)))
    return NetworkSpec(input_shape=(c.widths[0],), layers=layers)


def core_case(pack: PackParams, cases: List[Case], j: int) -> List[Tuple]:
    """Per layer (s, u, v) each [T, n] int64 from the torch core."""
    c = cases[j]
    res = simulate(case_spec(pack, cases, j), c.x[None], record=True)
    return [(tr.s[0].numpy().astype(np.int64), tr.u[0].numpy().astype(np.int64),
             tr.v[0].numpy().astype(np.int64)) for tr in res.traces]


def compare(a: List[Tuple], b: List[Tuple]) -> Optional[str]:
    """None if every spike, u and v agree at every step; else a one-line description of the first
    difference."""
    for i, (la, lb) in enumerate(zip(a, b)):
        for name, x, y in zip("suv", la, lb):
            if x.shape != y.shape:
                return f"layer {i} {name}: shape {x.shape} vs {y.shape}"
            bad = np.argwhere(x != y)
            if bad.size:
                t, n = bad[0]
                return (f"layer {i} {name}[t={t}, n={n}]: {int(x[t, n])} vs {int(y[t, n])} "
                        f"({len(bad)} values differ)")
    return None


def coverage_of(case_out: List[Tuple], coverage: dict) -> None:
    """Count which regimes a case's (Lava) traces reached: spikes, silence, v at its negative limit,
    |u| beyond 2**23 (one-shot wrap left it out of range) or at least 2**22."""
    s_any = any(s.any() for s, _, _ in case_out)
    for key, hit in (("spiking", s_any), ("silent", not s_any),
                     ("v_at_-(2**23-1)", any((v == -loihi.V_LIMIT).any() for _, _, v in case_out)),
                     ("|u|>=2**22", any((np.abs(u) >= 1 << 22).any() for _, u, _ in case_out)),
                     ("|u|>2**23", any((np.abs(u) > 1 << 23).any() for _, u, _ in case_out))):
        coverage[key] = coverage.get(key, 0) + int(hit)


def run_pack(pack: PackParams, coverage: Optional[dict] = None) -> Tuple[int, List[str]]:
    """Draw, run on Lava (packed) and on the core (each case alone), compare. Returns (cases, mismatch
    descriptions); ``coverage`` (if given) accumulates :func:`coverage_of` counts. The core cases run in
    a worker thread while the main thread waits for Lava's worker processes (the two computations are
    independent; only the comparison needs both)."""
    cases = draw_cases(pack)
    with ThreadPoolExecutor(1) as pool:
        core = pool.submit(lambda: [core_case(pack, cases, j) for j in range(len(cases))])
        lava = lava_pack(pack, cases)
        core = core.result()
    bad = []
    for j in range(len(cases)):
        if coverage is not None:
            coverage_of(lava[j], coverage)
        msg = compare(core[j], lava[j])
        if msg:
            bad.append(f"case {j} (pack seed {pack.seed}): core vs Lava {msg}")
    return len(cases), bad
