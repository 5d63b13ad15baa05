"""A :class:`~snnhw.spec.NetworkSpec` as Lava stages holding ``K`` independent copies side by side.

Lava's start-up costs ~60 ms per process, so running one network per sample is slow. ``K`` copies of the
network are built in ONE set of processes: the source holds the K samples stacked along the neuron axis,
every Dense gets the block-diagonal matrix ``kron(I_K, W)``, every LIF gets its parameters tiled K times.
Copies share no synapse, so each copy computes exactly what a single-sample run computes. Two Lava rules
make this exact, not approximate: (1) Dense derives its sign mode from the whole matrix (min >= 0
excitatory, max <= 0 inhibitory, else mixed), and the zeros of the off-diagonal blocks change neither
test, so the block matrix gets the sign mode of ``W``; (2) clipping and LSB truncation are elementwise.
With K > 1 the block-diagonal matrices travel in Lava's ``Sparse`` process, whose fixed-point model is
Dense's line for line (same clip, truncation, sign-mode rule, exponent on the sum and one-step delay) but
costs ~nonzeros instead of K**2 per step; with K = 1 Lava's ``Dense`` is used, as netx does. By default K
is the largest value that keeps every synapse under :data:`MAX_BLOCK_ENTRIES` stored weights and every
Lava Conv at most :data:`MAX_CONV_GROUPS` groups (at most :data:`MAX_BATCH`).
``tests/test_lava_differential.py`` checks packed against unpacked Lava runs.

Convolution and pooling
-----------------------
Lava's ``lava.proc.conv`` fixed-point model is not the same synapse as Dense: it **ignores**
``weight_exp``, does **not** clip or truncate the weights, computes a true convolution (flipped kernel,
(W, H, C) layout) and wraps its accumulator to signed 24 bits. With ``weight_exp == 0`` and a
binary-input sum bound (:func:`snnhw.loihi.conv_sum_bound`) below :data:`snnhw.loihi.CONV_SUM_LIMIT`
(2**23) it equals the core's conv synapse, and Conv/SumPool layers map to it (SumPool as a depthwise Conv
with a constant kernel; K samples stacked along channels as K groups). Other Conv/SumPool layers raise a
one-line :class:`~snnhw.errors.InputError`.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from snnhw import loihi
from snnhw.backends.lava_stages import LavaStage, LavaSynapse
from snnhw.errors import InputError
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec

#: Upper bound on the stored weights (K copies) of one synapse when choosing the default batch.
MAX_BLOCK_ENTRIES = 24_000_000
#: Upper bound on the samples per Lava run when choosing the default batch.
MAX_BATCH = 256
#: Most convolution groups one Lava Conv may have. Lava 0.10's ``PyConvModel`` stores ``groups`` as an
#: int8 (``LavaPyType(np.ndarray, np.int8, precision=8)``): 128 groups wrap to -128 and the model
#: silently outputs nothing or crashes its process (then ``stop()`` never returns). K copies of a Conv
#: use K groups and of a SumPool K * C groups, so the batch is capped to keep every layer <= 127.
MAX_CONV_GROUPS = 127


# ------------------------------------------------------------------------------------------------
# Batch size
# ------------------------------------------------------------------------------------------------
def conv_batch_cap(spec: NetworkSpec) -> Optional[int]:
    """Largest K with every Lava Conv at <= MAX_CONV_GROUPS groups (None without conv layers): K copies
    of a Conv take K groups, of a SumPool (depthwise) K * C groups."""
    per_copy = [1 if isinstance(layer, Conv) else int(layer.input_shape[0])
                for layer in spec.neuron_layers() if not isinstance(layer, Dense)]
    return max(1, MAX_CONV_GROUPS // max(per_copy)) if per_copy else None


def default_batch(spec: NetworkSpec, n_samples: int) -> int:
    """K for ``n_samples`` samples: as many as fit :data:`MAX_BLOCK_ENTRIES`, :data:`MAX_BATCH` and
    :func:`conv_batch_cap`."""
    biggest = 1
    for layer in spec.neuron_layers():
        if isinstance(layer, Dense):
            biggest = max(biggest, layer.n_out * layer.n_in)
            if layer.weight_rec is not None:
                biggest = max(biggest, layer.n_out * layer.n_out)
    k = MAX_BLOCK_ENTRIES // biggest  # K copies hold K * biggest nonzeros (Sparse process)
    cap = conv_batch_cap(spec)
    return max(1, min(n_samples, MAX_BATCH, k, cap if cap is not None else k))


# ------------------------------------------------------------------------------------------------
# Layouts: core [K, T, prod(shape)] <-> Lava (W, H, K*C) or (K*N,), plus (T,)
# ------------------------------------------------------------------------------------------------
def to_lava_layout(x: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Core samples [K, T, prod(shape)] -> Lava source data (lava shape of K copies) + (T,)."""
    K, T = x.shape[:2]
    if len(shape) == 1:
        return x.transpose(0, 2, 1).reshape(K * shape[0], T)
    c, h, w = shape
    y = x.reshape(K, T, c, h, w).transpose(4, 3, 0, 2, 1)  # (W, H, K, C, T)
    return y.reshape(w, h, K * c, T)


def from_lava_layout(d: np.ndarray, shape: Tuple[int, ...], k: int) -> np.ndarray:
    """Lava array (lava shape of k copies) + (T,) -> core layout [k, T, prod(shape)]."""
    T = d.shape[-1]
    if len(shape) == 1:
        return d.reshape(k, shape[0], T).transpose(0, 2, 1)
    c, h, w = shape
    y = d.reshape(w, h, k, c, T).transpose(2, 4, 3, 1, 0)  # (K, T, C, H, W)
    return y.reshape(k, T, c * h * w)


def _flatten_columns(shape: Tuple[int, int, int], k: int) -> np.ndarray:
    """For a Dense fed by ``s_out.flatten()`` of a (W, H, k*C) LIF: cols[j, i] is the Lava flat index of
    copy j's core flat index i (core order (C, H, W), C-order)."""
    c, h, w = shape
    ci, yi, xi = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    ci, yi, xi = ci.ravel(), yi.ravel(), xi.ravel()
    return np.stack([(xi * h + yi) * (k * c) + j * c + ci for j in range(k)])


# ------------------------------------------------------------------------------------------------
# K copies of a weight matrix / kernel
# ------------------------------------------------------------------------------------------------
def _block_diag(w: np.ndarray, k: int, sparse: bool = False):
    """``kron(I_k, w)``: k independent copies of ``w`` on the diagonal (int64 array, or scipy CSR)."""
    w = np.asarray(w).astype(np.int64)
    if sparse:
        from scipy import sparse as sp

        return sp.block_diag([sp.csr_matrix(w)] * k, format="csr")
    if k == 1:
        return w
    out = np.zeros((k * w.shape[0], k * w.shape[1]), dtype=np.int64)
    for i in range(k):
        out[i * w.shape[0]:(i + 1) * w.shape[0], i * w.shape[1]:(i + 1) * w.shape[1]] = w
    return out


def _scatter_columns(w: np.ndarray, cols: np.ndarray, sparse: bool):
    """Rows of copy j get ``w`` at columns ``cols[j]`` (a Dense fed by a flattened (W, H, k*C) map)."""
    k, n_cols = cols.shape[0], int(cols.max()) + 1 if cols.size else 0
    n_out = w.shape[0]
    if sparse:
        from scipy import sparse as sp

        rows = np.repeat(np.arange(k * n_out), w.shape[1])
        cc = np.concatenate([np.tile(cols[j], n_out) for j in range(k)])
        vals = np.tile(w.ravel(), k)
        return sp.csr_matrix((vals, (rows, cc)), shape=(k * n_out, n_cols))
    big = np.zeros((k * n_out, n_cols), dtype=np.int64)
    for j in range(k):
        big[j * n_out:(j + 1) * n_out, cols[j]] = w
    return big


def _conv_lava_kernel(w: np.ndarray) -> np.ndarray:
    """Core conv weight [out, in, kH, kW] (cross-correlation, CHW) -> Lava Conv [out, kW, kH, in]
    (true convolution in (W, H, C) layout): flip both spatial axes, then reorder."""
    return np.ascontiguousarray(np.asarray(w)[:, :, ::-1, ::-1].transpose(0, 3, 2, 1)).astype(np.int64)


def _check_conv_exact(layer) -> None:
    """Lava's Conv equals the core's conv synapse only with weight_exp 0 and sums below 2**23."""
    if int(layer.weight_exp) != 0:
        raise InputError(f"layer {layer.name}: Lava's Conv ignores weight_exp (got {layer.weight_exp}); "
                         f"the Lava backend runs conv/pool layers only with weight_exp 0")
    if isinstance(layer, Conv):
        bound = loihi.conv_sum_bound(layer.weight)
    else:  # a SumPool: one constant kernel per channel
        bound = loihi.conv_sum_bound(np.full((1, 1, *layer.kernel), int(layer.weight)))
    if bound >= loihi.CONV_SUM_LIMIT:
        raise InputError(f"layer {layer.name}: conv sums can reach {bound} >= 2**23, where Lava's Conv "
                         f"wraps to 24 bits and the core does not")


# ------------------------------------------------------------------------------------------------
# Stages
# ------------------------------------------------------------------------------------------------
def _neuron_params(layer) -> dict:
    n = layer.neuron
    return dict(du=loihi.lava_du(n.i_decay), dv=loihi.lava_dv(n.v_decay), vth=int(n.vth_mant),
                bias_exp=int(layer.bias_exp))


def _bias(layer, n: int) -> np.ndarray:
    return (np.zeros(n, np.int64) if layer.bias_mant is None else np.asarray(layer.bias_mant)).astype(np.int64)


def _dense_stage(layer: Dense, prev_shape: Tuple[int, ...], k: int, sparse: bool) -> LavaStage:
    flat_src = len(prev_shape) == 3
    w = np.asarray(layer.weight).astype(np.int64)
    if flat_src:
        big = _scatter_columns(w, _flatten_columns(prev_shape, k), sparse)
    else:
        big = _block_diag(w, k, sparse)
    st = LavaStage(weights=big, shape=(k * layer.n_out,), weight_exp=int(layer.weight_exp),
                   graded=bool(layer.graded_input), bias_mant=np.tile(_bias(layer, layer.n_out), k),
                   flatten_input=flat_src, sparse=sparse, **_neuron_params(layer))
    if layer.weight_rec is not None:
        st.weights_rec = _block_diag(layer.weight_rec, k, sparse)
        st.rec_exp = int(layer.rec_exp)
    if layer.weight_fine is not None:  # split weights: a second Dense from the same source into a_in
        wf = np.asarray(layer.weight_fine).astype(np.int64)
        big_f = _scatter_columns(wf, _flatten_columns(prev_shape, k), sparse) if flat_src else \
            _block_diag(wf, k, sparse)
        st.extra.append(LavaSynapse(big_f, int(layer.fine_exp), graded=bool(layer.graded_input), sparse=sparse))
    if layer.weight_rec_fine is not None:
        st.extra_rec.append(LavaSynapse(_block_diag(layer.weight_rec_fine, k, sparse), int(layer.rec_fine_exp),
                                        sparse=sparse))
    return st


def _conv_stage(layer, k: int) -> LavaStage:
    """A Conv, or a SumPool as a depthwise Conv with a constant kernel; K copies as K (K * C) groups."""
    _check_conv_exact(layer)
    c_in, h, wd = layer.input_shape
    c_out, ho, wo = layer.out_shape
    if isinstance(layer, Conv):
        kern = np.tile(_conv_lava_kernel(layer.weight), (k, 1, 1, 1))
        stride, padding, groups = layer.stride, layer.padding, k
    else:
        kh, kw = layer.kernel
        kern = np.full((k * c_in, kw, kh, 1), int(layer.weight), dtype=np.int64)
        stride, padding, groups = layer.stride, (0, 0), k * c_in
    bias_l = np.broadcast_to(np.tile(_bias(layer, c_out), k), (wo, ho, k * c_out)).copy()
    return LavaStage(weights=kern, shape=(wo, ho, k * c_out), bias_mant=bias_l,
                     conv=dict(input_shape=(wd, h, k * c_in), stride=(stride[1], stride[0]),
                               padding=(padding[1], padding[0]), groups=groups), **_neuron_params(layer))


def spec_stages(spec: NetworkSpec, k: int, sparse: Optional[bool] = None
                ) -> Tuple[List[LavaStage], List[Tuple[int, ...]]]:
    """The Lava stages of ``k`` side-by-side copies of ``spec`` and each stage's core output shape.

    ``sparse`` (default: ``k > 1``) carries dense layers in Lava's ``Sparse`` process."""
    sparse = k > 1 if sparse is None else bool(sparse)
    stages, shapes = [], []
    prev_shape = tuple(spec.input_shape)  # Flatten is a no-op: a Dense after a (C, H, W) map flattens it
    for layer in spec.layers:
        if isinstance(layer, Flatten):
            continue
        if isinstance(layer, Dense):
            stages.append(_dense_stage(layer, prev_shape, k, sparse))
            out_shape = (layer.n_out,)
        else:
            stages.append(_conv_stage(layer, k))
            out_shape = tuple(layer.out_shape)
        shapes.append(out_shape)
        prev_shape = out_shape
    return stages, shapes


def add_self_reset(stages: List[LavaStage], resets: List[Tuple[int, int, int, int]]) -> None:
    """Give stage i a diagonal one-step self-connection ``resets[i]`` = (coarse mantissa, exponent, fine
    mantissa, fine exponent), one scalar for every neuron: coarse and fine ``Sparse`` identities from the
    LIF onto itself (a 3-D LIF through its flattened ``s_out``, :func:`lava_stages._build_stage`)."""
    from scipy import sparse as sp

    if len(resets) != len(stages):
        raise InputError(f"{len(resets)} self resets for {len(stages)} stages")
    for st, (hi, e, lo, f) in zip(stages, resets):
        n = int(np.prod(st.shape))
        for mant, exp in ((hi, e), (lo, f)):
            if mant:
                st.extra_rec.append(LavaSynapse(sp.identity(n, dtype=np.int64, format="csr") * int(mant),
                                                int(exp), sparse=True))
