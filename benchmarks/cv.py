"""k-fold cross-validation of recipe variants on the training split: pick a variant without the test split.

    ./run.sh python benchmarks/cv.py digits_mlp                                  # the recipe, 10 folds, seed 0
    ./run.sh python benchmarks/cv.py digits_mlp --variant ls01:train.label_smoothing=0.1 \\
        --variant fc1024:'model.layers=[{"kind":"dense","name":"fc1","out":1024},{"kind":"dense","name":"fc2","out":10}]' \\
        --jsonl export/cv/digits_mlp.jsonl --md export/cv/digits_mlp.md

A recipe's own validation split (``data.val_fraction`` of the training split, 143 samples for digits) is
one draw: once a variant makes one or two errors on it, it cannot rank variants any more. Here every
variant is trained once per fold ``k`` of ``data.val_fold`` (the k-th disjoint stratified share of the
training split, :func:`snnhw.train.evaluate.carve_validation`; ``round(1 / val_fraction)`` folds cover
every training sample once) with the recipe's own selection rule, through ``benchmarks/ablate.py``'s
:func:`run` (what ``snnhw train`` does up to the selected epoch). Per variant it reports, pooled over the
folds (each fold weighted by its size):

* ``val_selected``: validation accuracy of the epoch the selection rule exports (the figure to choose by;
  it is the maximum over epochs of each fold, so slightly optimistic, alike for every variant);
* ``val_last``: validation accuracy of the last epoch (no selection on the fold);
* ``errors``: the validation errors of the selected epochs, out of ``samples``;
* ``val_late``: the mean validation accuracy of the last 10 epochs (the plateau; no selection).

The test split is never read for the table: ``ablate.run`` scores it, but this script drops that figure
(``snnhw train`` with the chosen recipe gives the test accuracy once). ``--jsonl`` keeps one line per
(variant, fold, seed) run and is read back first, so an interrupted sweep resumes where it stopped.
Torch uses one thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from ablate import run  # noqa: E402
from snnhw.data.datasets import n_folds  # noqa: E402
from snnhw.io.atomic import write_text  # noqa: E402
from snnhw.train.recipe import load_recipe  # noqa: E402

BASE = "recipe"  # the name of the unchanged recipe's row
LATE = 10  # val_late: the mean validation accuracy of the last LATE epochs (the plateau, no selection)


def parse_variant(text: str) -> Tuple[str, Dict]:
    """``NAME:section.key=JSON[;section.key=JSON...]`` -> (NAME, overrides)."""
    name, sep, rest = text.partition(":")
    if not sep or not name:
        raise SystemExit(f"--variant {text!r}: expected NAME:section.key=JSON[;section.key=JSON...]")
    over = {}
    for pair in filter(None, rest.split(";")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise SystemExit(f"--variant {name}: {pair!r} is not section.key=JSON")
        over[key.strip()] = json.loads(value)
    return name, over


def _done(path: str) -> List[Dict]:
    return [json.loads(line) for line in open(path) if line.strip()] if path and os.path.exists(path) else []


def fold_row(variant: str, fold: int, seed: int, res: Dict, n_val: int) -> Dict:
    """One run's validation figures (no test figure)."""
    return {"variant": variant, "fold": fold, "seed": seed, "selected_epoch": res["selected_epoch"],
            "val_selected": res["val_best"], "val_last": res["val_per_epoch"][-1],
            "val_late": sum(res["val_per_epoch"][-LATE:]) / len(res["val_per_epoch"][-LATE:]), "samples": n_val,
            "seconds": res["seconds"]}


def summarize(rows: List[Dict]) -> Dict[str, Dict]:
    """Per variant, pooled over its runs (weighted by validation size)."""
    out: Dict[str, Dict] = {}
    for r in rows:
        s = out.setdefault(r["variant"], {"runs": 0, "samples": 0, "correct_sel": 0.0, "correct_last": 0.0,
                                          "correct_late": 0.0})
        s["runs"] += 1
        s["samples"] += r["samples"]
        s["correct_sel"] += r["val_selected"] * r["samples"]
        s["correct_last"] += r["val_last"] * r["samples"]
        s["correct_late"] += r["val_late"] * r["samples"] if "val_late" in r else float("nan")  # older rows: n/a
    for s in out.values():
        s["val_selected"] = s["correct_sel"] / s["samples"]
        s["val_last"] = s["correct_last"] / s["samples"]
        s["val_late"] = s["correct_late"] / s["samples"]
        s["errors"] = int(round(s["samples"] - s["correct_sel"]))
    return out


def markdown(summary: Dict[str, Dict], variants: Dict[str, Dict]) -> str:
    lines = [f"| variant | overrides | runs | samples | val (selected epoch) | errors | val (last epoch) "
             f"| val (mean of the last {LATE} epochs) |", "|---|---|---|---|---|---|---|---|"]
    for name, s in sorted(summary.items(), key=lambda kv: -kv[1]["val_selected"]):
        over = "; ".join(f"`{k}={json.dumps(v)}`" for k, v in variants.get(name, {}).items()) or "–"
        lines.append(f"| {name} | {over} | {s['runs']} | {s['samples']} | {100 * s['val_selected']:.2f} % "
                     f"| {s['errors']} | {100 * s['val_last']:.2f} % | "
                     + ("n/a" if s["val_late"] != s["val_late"] else f"{100 * s['val_late']:.2f} %") + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:section.key=JSON;...")
    ap.add_argument("--folds", type=int, default=0, help="first K folds only (0: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-base", action="store_true", help="skip the unchanged recipe")
    ap.add_argument("--jsonl", default=None)
    ap.add_argument("--md", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    variants = dict(parse_variant(v) for v in a.variant)
    if not a.no_base:
        variants = {BASE: {}, **variants}
    recipe = load_recipe(a.recipe)
    k = n_folds(recipe.data.val_fraction)
    folds = range(min(a.folds, k) if a.folds else k)
    rows = _done(a.jsonl)
    have = {(r["variant"], r["fold"], r["seed"]) for r in rows}
    for name, over in variants.items():
        for seed in a.seeds:
            for fold in folds:
                if (name, fold, seed) in have:
                    continue
                res = run(a.recipe, {**over, "data.val_fold": fold, "train.seed": seed})
                n_val = res["val_samples"]
                row = fold_row(name, fold, seed, res, n_val)
                rows.append(row)
                print(json.dumps(row), flush=True)
                if a.jsonl:
                    write_text(a.jsonl, "".join(json.dumps(r) + "\n" for r in rows))
    table = markdown(summarize([r for r in rows if r["variant"] in variants]), variants)
    print(table)
    if a.md:
        write_text(a.md, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
