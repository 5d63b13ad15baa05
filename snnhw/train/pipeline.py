"""``snnhw train`` end to end: recipe -> checks -> fit (init + QAT) -> export -> verify -> measure ->
report -> publish (the stages are in :mod:`snnhw.train.stages`).

Verification (report.json ``verification``): with Lava installed, snnhw's core against Lava's CPU
simulator or Loihi 2 (or ``--backend netx``: lava-dl's netx loading ``model.net``); without Lava, the
artifact round trip: ``model.net`` and ``model.nir`` re-read through snnhw's readers and re-simulated
must reproduce the trained output spikes exactly (:func:`snnhw.train.verify.artifact_roundtrip`).

Everything a user can get wrong (recipe keys, target, dataset files, a model that does not fit the
target) is checked by :func:`prepare` **before** any directory is created. Training writes into a
hidden work directory next to the run directory (``.<name>.partial``), where ``checkpoint.pt`` lands
after every epoch; ``--resume`` continues from there. Only when the run is complete is the work
directory renamed to the run directory (replacing an older run of the same name), so a run directory
is never half-written.

Run directory contents: ``checkpoint.pt``, ``spec.json`` (the trained :class:`NetworkSpec`),
``model.net`` (lava-dl netx; dense/recurrent networks), ``model.nir``, ``report.json`` (schema
:class:`snnhw.report.schema.RunReport`), ``report.md``, ``plots/*.png`` and ``verify/``:
``inputs.npy`` (uint8 0/1 [samples, steps, inputs]: exactly the spikes the chip receives, column t-1
sent at time step t), ``labels.npy`` (int64 [samples]), ``torch_output_spikes.npy`` and (when Lava
ran) ``lava_output_spikes.npy`` (uint8 [samples, steps, outputs], index t-1 = time step t).
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from snnhw.data import Encoder, load_dataset
from snnhw.data.datasets import n_folds
from snnhw.data.encoders import SERIES_ENCODINGS
from snnhw.errors import InputError
from snnhw.report.schema import RunReport
from snnhw.targets import load_target
from snnhw.train import build, stages
from snnhw.train.evaluate import carve_validation
from snnhw.train.loop import dist_info
from snnhw.train.recipe import Recipe, RecipeError, load_recipe
from snnhw.train.stages import RunContext, Setup

DEFAULT_EXPORT_DIR = "export"
DEVICES = ("cpu", "cuda")


@dataclass
class RunOptions:
    recipe: str = "digits_mlp"
    target: str = "loihi2"
    out: Optional[str] = None
    data_dir: str = "data"
    device: str = "cpu"
    seed: Optional[int] = None
    epochs: Optional[int] = None
    init: Optional[str] = None
    resume: bool = False
    verify_samples: Optional[int] = None
    backend: Optional[str] = None  # "lava" / "netx" (need Lava); None: Lava if installed, else the round trip
    progress: bool = True


@dataclass
class RunOutcome:
    report: RunReport
    out_dir: str  # the published run directory


def work_dir_for(out: str) -> str:
    out = os.path.abspath(out)
    return os.path.join(os.path.dirname(out), f".{os.path.basename(out)}.partial")


def make_encoder(recipe: Recipe, seed: int) -> Encoder:
    d = recipe.data
    return Encoder(d.encoding, d.steps, seed=seed, levels=d.levels, lo=d.lo, hi=d.hi, pad=d.pad_steps,
                   window=d.window)


def _n_channels(data, enc: Encoder) -> int:
    if data.kind == "events":
        return int(data.x_train.shape[2])
    if data.kind == "series":
        return enc.series_channels() if enc.name in SERIES_ENCODINGS else int(data.x_train.shape[1])
    return enc.channels(int(np.prod(data.x_train.shape[1:])))


def _with_options(recipe: Recipe, opts: RunOptions) -> Recipe:
    """The recipe with the command line's overrides, checked like the file's values."""
    over = {"train.seed": opts.seed, "train.epochs": opts.epochs, "init.method": opts.init,
            "data.verify_samples": opts.verify_samples}
    over = {k: v for k, v in over.items() if v is not None}
    return recipe.with_overrides(over, where=f"recipe {recipe.name}") if over else recipe


def _check_device(device: str) -> None:
    if device not in DEVICES:
        raise InputError(f"unknown device '{device}'; choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")


def prepare(opts: RunOptions) -> Setup:
    """Load and check everything that can fail on bad input; creates nothing on disk. The validation
    split (recipe ``data.val_fraction``) is carved from the training split here: ``Setup.data`` holds the
    remaining training samples and the untouched test split, ``Setup.val`` the validation samples."""
    return prepare_recipe(_with_options(load_recipe(opts.recipe), opts), opts)


def prepare_recipe(recipe: Recipe, opts: RunOptions) -> Setup:
    """:func:`prepare` for a recipe already loaded (``opts.recipe`` is not read; ``benchmarks/ablate.py``
    passes a recipe with overrides)."""
    _check_device(opts.device)
    target = load_target(opts.target)
    backend = stages.verification_backend(opts.backend, target.quantized)
    if backend == "netx" and recipe.model.readout == "voltage":
        raise InputError(f"recipe {recipe.name}: --backend netx reads output spikes only; a voltage readout "
                         f"(model.readout) is verified with --backend lava, which reads the output v back")
    d = recipe.data
    data = load_dataset(d.dataset, data_dir=opts.data_dir, steps=d.steps, split_seed=d.split_seed,
                        duration_s=d.duration_s or None, max_samples=d.max_samples or None)
    if d.val_fraction > 0 and d.val_fold >= n_folds(d.val_fraction):
        raise RecipeError(f"data.val_fold {d.val_fold}: val_fraction {d.val_fraction} gives folds "
                          f"0..{n_folds(d.val_fraction) - 1}")
    data, val = carve_validation(data, float(d.val_fraction), int(d.split_seed), int(d.val_fold))
    enc = make_encoder(recipe, recipe.train.seed)
    shape = build.input_shape_for(recipe, data.feature_shape, _n_channels(data, enc))
    plan = build.plan_layers(recipe, shape, data.n_classes)
    return Setup(recipe, target, data, enc, shape, plan, target.check_fit(build.layer_costs(plan)), backend, val)


def start(opts: RunOptions, log: Callable[[str], None], t_start: float) -> RunContext:
    """:func:`prepare`, then the work directory: emptied unless resuming from its checkpoint."""
    setup = prepare(opts)
    out = os.path.abspath(opts.out or os.path.join(DEFAULT_EXPORT_DIR, f"{setup.recipe.name}-{setup.target.name}"))
    work = work_dir_for(out)
    info = dist_info()
    ckpt = os.path.join(work, "checkpoint.pt")
    resuming = opts.resume and os.path.exists(ckpt)
    if opts.resume and not resuming:
        log(f"--resume: no checkpoint at {ckpt}; starting from scratch")
    if info.main and not resuming and os.path.exists(work):
        shutil.rmtree(work)
    if info.main:
        os.makedirs(work, exist_ok=True)
    return RunContext(opts, setup, out, work, info, resuming, log, t_start)


def run(opts: RunOptions, log: Callable[[str], None] = print, on_batch=None) -> Optional[RunOutcome]:
    """Train, export, verify, measure, report, publish. Returns None on a non-zero torchrun rank.

    User errors raise :class:`snnhw.errors.SnnhwError` subclasses (one line), before any directory
    is created when they concern the recipe, target, data, budget or a missing Lava for ``--backend``.
    An artifact round trip that differs raises :class:`snnhw.train.verify.RoundTripMismatch` (a bug)."""
    t_start = time.time()
    ctx = start(opts, log, t_start)
    fitted = stages.fit(ctx, on_batch)
    if not ctx.dist.main:
        return None
    vs = stages.verification_set(ctx.setup)
    exported = stages.export(ctx, fitted.model, vs)
    verified = stages.verify(ctx, exported, vs)
    measured = stages.measure(ctx, fitted.model, exported, verified, vs)
    report = stages.report(ctx, fitted, exported, verified, measured, vs)
    stages.publish(ctx.work, ctx.out)
    return RunOutcome(report, ctx.out)
