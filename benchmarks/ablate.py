"""One recipe change at a time: train a recipe with overrides and print its validation and test accuracy.

    ./run.sh python benchmarks/ablate.py mnist1d_rsnn --epochs 12
    ./run.sh python benchmarks/ablate.py mnist1d_rsnn --epochs 12 --set neuron.v_decay=4096
    ./run.sh python benchmarks/ablate.py mnist1d_rsnn --set train.lr=0.06 --jsonl ablations.jsonl
    ./run.sh python benchmarks/ablate.py mnist1d_rsnn --set train.seed=2 --stop-after 5   # first 5 of 40 epochs

The ablations of docs/train.md were measured with this script. It runs what ``snnhw train`` runs up to the
end of training — :func:`snnhw.train.pipeline.prepare_recipe` (target, dataset, validation split),
:func:`snnhw.train.stages.initialized_model` (build and initialize, as ``snnhw train``), :func:`snnhw.train.loop.train`
(the epoch is selected on the validation split) — and then scores the selected model (the quantized core
on loihi2) on the whole test split with :func:`snnhw.train.evaluate.evaluate`; it exports and verifies
nothing (``snnhw train`` does, and Lava agrees with the core spike for spike on every shipped recipe).
Compare changes on ``val_best`` (the validation accuracy of the selected epoch): the test accuracy is
printed for the record, not for choosing.

``--set section.key=VALUE`` (repeatable) overrides a recipe key; VALUE is JSON (``4096``, ``true``,
``"fast_sigmoid"``, or a whole ``model.layers=[{...}, ...]`` list); every value is checked like the
recipe file's own. One JSON line per run is printed (and appended to ``--jsonl``). Torch uses one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from snnhw.io.atomic import write_text  # noqa: E402
from snnhw.train.evaluate import evaluate  # noqa: E402
from snnhw.train.checkpoint import load_checkpoint  # noqa: E402
from snnhw.train.loop import TrainResult, train  # noqa: E402
from snnhw.train.pipeline import RunOptions, prepare_recipe  # noqa: E402
from snnhw.train.recipe import load_recipe  # noqa: E402
from snnhw.train.stages import initialized_model  # noqa: E402


def overrides(pairs, epochs):
    """``{"section.key": value}`` from ``section.key=JSON`` strings (plus ``train.epochs`` when given)."""
    out = {}
    for p in pairs:
        key, _, value = p.partition("=")
        out[key] = json.loads(value)
    if epochs is not None:
        out["train.epochs"] = int(epochs)
    return out


class _Stop(Exception):
    """Raised before the first batch of epoch ``stop_after`` (``--stop-after``)."""


def run(recipe_name: str, over: dict, target: str = "loihi2", stop_after: int = 0) -> dict:
    """Train the recipe with ``over`` and return its selected epoch, validation and test accuracy, and the
    validation accuracy and output rate of every epoch. ``stop_after`` > 0: stop after that many epochs
    of the recipe's schedule (the learning rate follows the full run's cosine) and score the last one."""
    base = load_recipe(recipe_name)
    recipe = base.with_overrides(over, where=f"recipe {base.name}") if over else base
    setup = prepare_recipe(recipe, RunOptions(recipe=recipe.name, target=target))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        model, init = initialized_model(setup)
        ckpt = os.path.join(tmp, "checkpoint.pt")

        def stop(epoch, batch):
            if stop_after and epoch >= stop_after:
                raise _Stop

        try:
            res = train(model, recipe, setup.data, setup.encoder, checkpoint_path=ckpt, init_report=init,
                        progress=False, val=setup.val, on_batch=stop)
        except _Stop:
            history = load_checkpoint(ckpt)["history"]
            res = TrainResult(model, history, init, 0.0, 0, len(history))
    test = evaluate(res.model, setup.data, setup.encoder, logit_scale=float(recipe.train.logit_scale))
    sel = res.history[res.selected_epoch - 1] if res.selected_epoch else res.history[-1]
    return {"recipe": recipe.name, "set": over, "steps": setup.encoder.total_steps,
            "inputs": int(np.prod(setup.input_shape)), "selected_epoch": res.selected_epoch,
            "val_best": sel["val_accuracy"], "val_samples": len(setup.val.data.y_test) if setup.val else 0,
            "train_accuracy_last": res.history[-1]["train_accuracy"],
            "test": test["accuracy"], "test_rates": test["rates"], "seconds": round(time.time() - t0, 1),
            "val_per_epoch": [h["val_accuracy"] for h in res.history],
            "output_rate_per_epoch": [list(h["rates"].values())[-1] for h in res.history]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON")
    ap.add_argument("--target", default="loihi2")
    ap.add_argument("--stop-after", type=int, default=0, help="stop after this many epochs of the schedule")
    ap.add_argument("--jsonl", default=None, help="append the result line to this file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    line = json.dumps(run(a.recipe, overrides(a.set, a.epochs), a.target, a.stop_after))
    print(line)
    if a.jsonl:  # append: rewrite the whole file atomically
        old = open(a.jsonl).read() if os.path.exists(a.jsonl) else ""
        write_text(a.jsonl, old + line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
