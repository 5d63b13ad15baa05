"""A recipe trained with several seeds: mean ± std of validation, quantized-test and Lava accuracy and of
the core-vs-Lava output-spike agreement.

    ./run.sh python benchmarks/seeds.py digits_mlp                         # seeds 0 1 2
    ./run.sh python benchmarks/seeds.py digits_deep_mlp --seeds 0 1 2 --out export/seeds
    ./run.sh python benchmarks/seeds.py digits_mlp --md seeds.md --json seeds.json
    ./run.sh python benchmarks/seeds.py digits_mlp --merge s0.json s1.json s2.json   # seeds run apart

Each seed is a full ``snnhw train <recipe> --seed k`` (:func:`snnhw.train.pipeline.run`, target loihi2 by
default) into ``<out>/<recipe>-seed<k>``; the figures are read back from its ``report.json``:
``val`` = validation accuracy of the exported (selected) epoch, ``quantized`` = the quantized core on the
whole test split, ``lava`` = Lava on the verification samples (``None`` without Lava), ``agreement`` =
output-spike agreement core vs Lava (a voltage readout, recipe ``model.readout = "voltage"``: the
output-voltage agreement, the fraction of samples whose output v trace Lava reads back bit for bit equal).
Every accuracy is the report's, so every figure uses the run's own class decision. The spread is the
sample standard deviation (ddof = 1) over the seeds. Written: a JSON file (per-seed rows and the summary)
and a markdown table; both printed paths.
``--merge`` trains nothing: it combines the per-seed rows of JSON files this script wrote (seeds run as
separate processes) into one summary.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from typing import Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from snnhw.io.atomic import write_json, write_text  # noqa: E402
from snnhw.train.pipeline import RunOptions, run  # noqa: E402

FIELDS = ("val", "quantized", "lava", "agreement")


def seed_row(report: Dict) -> Dict:
    """One seed's figures from its report.json dict."""
    tr = report["training"]
    sel = tr.get("selected_epoch") or len(tr["history"])
    val = tr["history"][sel - 1].get("val_accuracy") if tr["history"] else None
    ag = report.get("agreement") or {}
    return {"seed": report["seed"], "selected_epoch": sel, "val": val,
            "quantized": report["accuracy"]["quantized"], "lava": report["accuracy"]["lava"],
            "lava_samples": report["accuracy_samples"]["lava"],
            "agreement": ag.get("output_voltage", ag.get("output_spikes")),
            "train_seconds": report["times"]["train_seconds"], "total_seconds": report["times"]["total_seconds"]}


def summarize(rows: List[Dict]) -> Dict[str, Optional[Dict]]:
    """Per field: mean, std (ddof 1; 0 for one seed), min, max over the seeds; None where a seed lacks it."""
    out: Dict[str, Optional[Dict]] = {}
    for f in FIELDS + ("train_seconds",):
        vals = [r[f] for r in rows]
        if any(v is None for v in vals):
            out[f] = None
            continue
        out[f] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                  "min": min(vals), "max": max(vals)}
    return out


def _pct(s: Optional[Dict]) -> str:
    return "n/a" if s is None else f"{100 * s['mean']:.2f} ± {100 * s['std']:.2f} %"


def markdown(recipe: str, target: str, rows: List[Dict], summary: Dict) -> str:
    lines = [f"### `{recipe}` on {target}, seeds {', '.join(str(r['seed']) for r in rows)}", "",
             "| seed | selected epoch | validation | quantized (test) | Lava (first N test) | agreement | train s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lava = "n/a" if r["lava"] is None else f"{100 * r['lava']:.2f} % ({r['lava_samples']})"
        ag = "n/a" if r["agreement"] is None else f"{r['agreement']:.6f}"
        val = "n/a" if r["val"] is None else f"{100 * r['val']:.2f} %"
        lines.append(f"| {r['seed']} | {r['selected_epoch']} | {val} | {100 * r['quantized']:.2f} % | {lava} | "
                     f"{ag} | {r['train_seconds']:.0f} |")
    ag = summary["agreement"]
    ag_cell = "n/a" if ag is None else f"{ag['mean']:.6f} (min {ag['min']:.6f})"
    lines.append(f"| **mean ± std** | | {_pct(summary['val'])} | {_pct(summary['quantized'])} | "
                 f"{_pct(summary['lava'])} | {ag_cell} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe", nargs="?", default="digits_mlp")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--target", default="loihi2")
    ap.add_argument("--out", default="export/seeds", help="parent directory of the per-seed run directories")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--verify-samples", type=int, default=None)
    ap.add_argument("--json", default=None, help="JSON output (default <out>/<recipe>-seeds.json)")
    ap.add_argument("--md", default=None, help="markdown output (default <out>/<recipe>-seeds.md)")
    ap.add_argument("--merge", nargs="+", default=None, help="JSON files of this script to combine (no training)")
    a = ap.parse_args()
    rows = []
    for path in a.merge or []:
        with open(path) as f:
            rows += json.load(f)["seeds"]
    name = os.path.splitext(os.path.basename(a.recipe))[0]  # a recipe name or a path to a .toml
    for seed in ([] if a.merge else a.seeds):
        out = os.path.join(a.out, f"{name}-seed{seed}")
        outcome = run(RunOptions(recipe=a.recipe, target=a.target, out=out, seed=seed, epochs=a.epochs,
                                 verify_samples=a.verify_samples, progress=False), log=lambda m: None)
        rows.append(seed_row(json.loads(json.dumps(outcome.report.to_dict()))))
        print(json.dumps(rows[-1]), flush=True)
    summary = summarize(rows)
    js = a.json or os.path.join(a.out, f"{name}-seeds.json")
    md = a.md or os.path.join(a.out, f"{name}-seeds.md")
    write_json(js, {"recipe": a.recipe, "target": a.target, "seeds": rows, "summary": summary}, indent=1)
    text = markdown(name, a.target, rows, summary)
    write_text(md, text)
    print(text)
    print(f"written: {js}, {md}")


if __name__ == "__main__":
    main()
