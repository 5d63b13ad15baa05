"""NetworkSpecs used by the NIR tests: MLP, CNN and recurrent, quantized (legal Loihi integers) and float."""
from __future__ import annotations

import numpy as np

from snnhw import loihi
from snnhw.spec import Conv, Dense, Flatten, NetworkSpec, Neuron, SumPool


def _even(a):
    return np.clip(2 * np.round(np.asarray(a) / 2), loihi.WEIGHT_MANT_MIN, loihi.MIXED_MANT_MAX).astype(np.int64)


def mlp(seed: int = 0, quantized: bool = True) -> NetworkSpec:
    """20 -> 30 (bias; CubaLIF, v_decay > 0) -> 12 (no current decay: LIF) -> 5 (no voltage leak, no bias)."""
    rng = np.random.default_rng(seed)
    if quantized:
        layers = [
            Dense("fc1", _even(rng.normal(0, 50, (30, 20))), Neuron(1024, 256, 180), weight_exp=1,
                  bias_mant=rng.integers(-20, 40, 30).astype(np.int64)),
            Dense("fc2", _even(rng.normal(10, 60, (12, 30))), Neuron(4096, 512, 300), weight_exp=0,
                  bias_mant=rng.integers(-5, 30, 12).astype(np.int64)),
            Dense("fc3", _even(rng.normal(5, 50, (5, 12))), Neuron(2048, 0, 150), weight_exp=0),
        ]
    else:
        layers = [
            Dense("fc1", rng.normal(0, 1.5, (30, 20)), Neuron(1000.5, 250.25, 3.1), weight_exp=0,
                  bias_mant=rng.normal(0.1, 0.3, 30)),
            Dense("fc2", rng.normal(0.3, 1.2, (12, 30)), Neuron(4096.0, 333.3, 4.2), weight_exp=0,
                  bias_mant=rng.normal(0.2, 0.2, 12)),
            Dense("fc3", rng.normal(0.2, 1.0, (5, 12)), Neuron(2048.0, 0.0, 2.7), weight_exp=0),
        ]
    return NetworkSpec(input_shape=(20,), layers=layers, quantized=quantized).validate()


def cnn(seed: int = 1, quantized: bool = True) -> NetworkSpec:
    """(2, 8, 8) -> Conv 4x3x3 pad 1 -> SumPool 2x2 -> Flatten -> Dense 64 -> 6."""
    rng = np.random.default_rng(seed)
    conv_w = rng.normal(4, 40, (4, 2, 3, 3))
    dense_w = rng.normal(3, 40, (6, 64))
    if quantized:
        conv = Conv("conv1", np.round(conv_w).astype(np.int64).clip(loihi.WEIGHT_MANT_MIN, loihi.WEIGHT_MANT_MAX), (2, 8, 8), Neuron(1024, 512, 120),
                    padding=(1, 1), bias_mant=np.array([3, -2, 0, 5], dtype=np.int64))
        pool = SumPool("pool1", (4, 8, 8), weight=90, neuron=Neuron(4096, 1024, 100))
        dense = Dense("fc", _even(dense_w), Neuron(2048, 256, 150))
    else:
        conv = Conv("conv1", conv_w / 30, (2, 8, 8), Neuron(1024.0, 512.0, 1.2), padding=(1, 1),
                    bias_mant=np.array([0.05, -0.02, 0.0, 0.1]))
        pool = SumPool("pool1", (4, 8, 8), weight=0.9, neuron=Neuron(4096.0, 1024.0, 1.0))
        dense = Dense("fc", dense_w / 30, Neuron(2048.0, 256.0, 1.5))
    return NetworkSpec(input_shape=(2, 8, 8), layers=[conv, pool, Flatten("flat", (4, 4, 4)), dense],
                       quantized=quantized).validate()


def recurrent(seed: int = 2, quantized: bool = True) -> NetworkSpec:
    """12 -> recurrent 24 -> 7, like the Braille network."""
    rng = np.random.default_rng(seed)
    if quantized:
        l1 = Dense("rec1", _even(rng.normal(10, 60, (24, 12))), Neuron(1024, 614, 200), weight_exp=1,
                   weight_rec=_even(rng.normal(0, 50, (24, 24))), rec_exp=0)
        l2 = Dense("out", _even(rng.normal(5, 60, (7, 24))), Neuron(2253, 1229, 160))
    else:
        l1 = Dense("rec1", rng.normal(0.3, 2.0, (24, 12)), Neuron(1024.0, 614.4, 3.3),
                   weight_rec=rng.normal(0, 0.8, (24, 24)))
        l2 = Dense("out", rng.normal(0.2, 1.0, (7, 24)), Neuron(2252.8, 1228.8, 2.5))
    return NetworkSpec(input_shape=(12,), layers=[l1, l2], quantized=quantized).validate()


def spikes(spec: NetworkSpec, samples: int = 6, steps: int = 40, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((samples, steps, spec.n_in)) < rate).astype(np.int64)
