"""How much class information survives each layer of ``digits_deep_mlp`` at init (no training).

    ./run.sh python benchmarks/deep_probe.py                     # identity 0, 0.5, 0.8, 0.9 (~4 min, 2 cores)
    ./run.sh python benchmarks/deep_probe.py --identity 0.8 --init kaiming --out probe.json

For each setting the recipe's model is initialized exactly as ``snnhw train`` does (same seed, same
256 calibration samples), the exact fixed-point forward runs on 1000 training and all test samples,
and a logistic regression (scikit-learn, L2, max 300 iterations) is fitted on each layer's spike
counts per neuron (training samples) and scored on the test samples. Printed per layer: firing rate
(spikes per neuron per step, over all 14 steps) and the probe's test accuracy (chance 0.1). This is
the measurement behind ``init.identity`` in ``models/digits_deep_mlp.toml`` (docs/init.md).

Measured 2026-12-02 (``--identity 0.8 0.9 0.95 --threads 1``, seed 0): fc1 0.939 in all three; fc10 0.886
(0.8), 0.936 (0.9), 0.939 (0.95): with 0.8 the chain loses five points before any training, with 0.9 and
above it passes on what fc1 holds (docs/train.md, "digits_deep_mlp: what was tried").
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnhw.io.atomic import write_json  # noqa: E402
from snnhw.train import build  # noqa: E402
from snnhw.train.evaluate import encode_split  # noqa: E402
from snnhw.train.pipeline import RunOptions, prepare  # noqa: E402


def probe(identity: float, init: str, n_train: int = 1000) -> dict:
    from sklearn.linear_model import LogisticRegression

    s = prepare(RunOptions(recipe="digits_deep_mlp", init=init))
    recipe, target, data, enc, shape = s.recipe, s.target, s.data, s.encoder, s.input_shape
    recipe = recipe.with_overrides({"init.identity": identity})
    seed = int(recipe.train.seed)
    torch.manual_seed(seed)
    model = build.build_model(recipe, target, shape, data.n_classes)
    n_cal = int(recipe.init.calib_samples)
    build.initialize(model, recipe, enc(data.x_train[:n_cal], index=np.arange(n_cal)), seed)
    n_train = min(n_train, len(data.y_train))
    x = encode_split(enc, data.x_train, np.arange(n_train))
    xt = encode_split(enc, data.x_test, np.arange(len(data.y_test)), offset=len(data.y_train))
    with torch.no_grad():
        _, spikes = model(x, return_all=True)
        _, spikes_t = model(xt, return_all=True)
    rows = []
    for layer, s, st in zip(model.neuron_layers(), spikes, spikes_t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence warnings on silent/saturated layers
            clf = LogisticRegression(max_iter=300).fit(s.sum(1).numpy(), data.y_train[:n_train])
        rows.append({"layer": layer.name, "rate": float(s.mean()),
                     "probe_test_accuracy": float(clf.score(st.sum(1).numpy(), data.y_test))})
    return {"init": init, "identity": identity, "layers": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--identity", type=float, nargs="+", default=[0.0, 0.5, 0.8, 0.9])
    ap.add_argument("--init", default="hardware-calibrated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the results as JSON")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = [probe(lam, a.init) for lam in a.identity]
    names = [r["layer"] for r in results[0]["layers"]]
    print(f"init {a.init}: linear-probe test accuracy on spike counts per layer (rate in brackets)")
    print("identity " + " ".join(f"{n:>13}" for n in names))
    for r in results:
        print(f"{r['identity']:>8} " + " ".join(f"{x['probe_test_accuracy']:6.3f} ({x['rate']:.3f})"
                                                for x in r["layers"]))
    if a.out:
        write_json(a.out, results, indent=1)


if __name__ == "__main__":
    main()
