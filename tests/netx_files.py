"""Helpers for tests: write raw netx HDF5 files with h5py (the way slayer's export does)."""
from __future__ import annotations

import importlib.util

import h5py
import numpy as np

HAVE_LAVA_DL = importlib.util.find_spec("lava") is not None and \
    importlib.util.find_spec("lava.lib.dl") is not None


def cuba(i_decay=1024, v_decay=128, vth=80):
    return dict(type="CUBA", iDecay=i_decay, vDecay=v_decay, vThMant=vth, refDelay=1, gradedSpike=False)


def write_raw(path, layers):
    """``layers``: dicts with ``type`` and any of weight, weight_rec, bias, shape, neuron (dict or None),
    extra (dict of further datasets). Weights are stored as float32, like slayer does."""
    with h5py.File(path, "w") as f:
        lg = f.create_group("layer")
        for i, layer in enumerate(layers):
            g = lg.create_group(str(i))
            g.create_dataset("type", (1,), "S10", [layer["type"].encode("ascii")])
            w = layer.get("weight")
            if "shape" in layer:
                g.create_dataset("shape", data=np.asarray(layer["shape"], dtype=np.int64))
            elif w is not None:
                g.create_dataset("shape", data=np.array([np.asarray(w).shape[0]], dtype=np.int64))
            for key in ("weight", "weight_rec", "bias"):
                if layer.get(key) is not None:
                    g.create_dataset(key, data=np.asarray(layer[key], dtype=layer.get("dtype", np.float32)))
            if layer.get("neuron") is not None:
                for k, v in layer["neuron"].items():
                    g.create_dataset(f"neuron/{k}", data=v)
            for k, v in layer.get("extra", {}).items():
                g.create_dataset(k, data=v)
    return path


def lava_netx_weights(w):
    """(effective weights, weight_exp) that lava-dl's own ``optimize_weight_bits`` and Lava's Dense
    (``determine_sign_mode``, ``clip_weights``, ``truncate_weights``) make of file weights ``w``."""
    from snnhw.backends.quiet import quiet
    with quiet():
        from lava.lib.dl.netx.utils import optimize_weight_bits
        from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
        enc, nbits, wexp, _ = optimize_weight_bits(np.array(w).copy())
    mode = determine_sign_mode(enc)
    return truncate_weights(clip_weights(enc.copy(), mode, num_bits=8), mode, nbits), wexp
