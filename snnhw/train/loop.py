"""The training loop: BPTT with surrogate gradients through the chip's own arithmetic.

* Loss: cross-entropy on :func:`snnhw.train.evaluate.logits` (``logit_scale * output spike counts``, or
  with the voltage readout ``logit_scale * mean v / readout_scale``; optionally label-smoothed; + optional
  rate floor, :func:`rate_penalty`: hidden layers, and the output layer with ``rate_reg_readout``).
  Validation and test losses are plain cross-entropy.
* Class decision: :func:`snnhw.train.evaluate.predict` (most output spikes, or the highest mean v of a
  voltage readout; ties -> lowest index).
* Adam, cosine schedule over all batches, gradients from the model's surrogate (recipe ``surrogate``).
* Determinism: epoch ``e`` visits the training set in the order of ``randperm`` seeded with
  ``seed * 100003 + e``; encoders are deterministic per sample; so a run is a function of the seed,
  and resuming at an epoch boundary replays exactly what an uninterrupted run does.
* Model selection: after each epoch the model (the quantized core on a quantized target) is scored on
  the validation split carved from the training data (:func:`snnhw.train.evaluate.carve_validation`);
  the epoch with the best validation accuracy (ties: lower validation loss, then the earlier epoch) is
  kept, and when training ends the model holds that epoch's weights. The test split is never looked at.
  Without a validation split the last epoch is kept.
* Weight averaging (recipe ``ema`` > 0): after every optimizer step an exponential moving average of the
  float shadow parameters is updated (:class:`_Average`); that average — quantized like any weights —
  is what is validated, selected and exported, the optimizer keeps stepping the raw parameters.
* Checkpoint (atomic) after each epoch, with the selected epoch's weights; ``resume`` continues after
  the last completed epoch. The final checkpoint's ``model`` is the selected epoch's.
* Augmentation (recipe ``augment_shift``, image datasets): epoch ``e`` shifts every training image by
  a whole-pixel offset drawn per sample and axis from [-augment_shift, augment_shift] (zero fill), from
  a generator seeded like the epoch's order, so resuming replays it too.
* Data-parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes an equal contiguous
  share of every global batch, the model is wrapped in DDP (gloo on CPU), and the local loss is scaled
  so that DDP's gradient average equals the single-process gradient of the same global batch.
* Progress: a rich progress bar on stderr (rank 0, when enabled) with loss, accuracy and rates.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from snnhw.core.layers import SpikingNet
from snnhw.data import Dataset, Encoder
from snnhw.errors import InputError
from snnhw.train.checkpoint import load_checkpoint, save_checkpoint
from snnhw.train.evaluate import Validation, encode_split, evaluate, logits, predict
from snnhw.train.recipe import Recipe, TrainConfig

EPOCH_SEED_STRIDE = 100003  # epoch e shuffles with seed * EPOCH_SEED_STRIDE + e


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    info = dist_info()
    if info.world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return info


@dataclass
class TrainResult:
    model: SpikingNet
    history: List[Dict] = field(default_factory=list)
    init_report: Dict = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from_epoch: int = 0
    selected_epoch: int = 0  # the epoch whose weights the model holds (1-based; 0: no epoch trained)


class _Progress:
    """A rich progress bar (rank 0, when enabled) that shows loss, accuracy and per-layer rates."""

    def __init__(self, enabled: bool, total: int, names: List[str]):
        self.enabled, self.names = enabled, names
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(stderr=True), transient=False)
            self.task = self.bar.add_task("train", total=total, info="")
            self.bar.start()

    def update(self, epoch: int, epochs: int, loss: float, acc: float, rates) -> None:
        if self.bar is not None:
            r = " ".join(f"{n}={v:.3f}" for n, v in zip(self.names, rates))
            self.bar.update(self.task, advance=1, description=f"epoch {epoch + 1}/{epochs}",
                            info=f"loss {loss:.3f} acc {acc:.3f} rates {r}")

    def log(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.console.print(msg, markup=False, highlight=False)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def param_groups(model: SpikingNet, lr: float, readout_lr: float = 1.0) -> List[Dict]:
    """One Adam group per tensor with ``lr`` relative to the tensor's RMS at the start of training.

    Weights live in mantissa units (steps of 2 on the 8-bit grid); a plain lr of 1e-3 would move them
    far less than one quantization step. Scaling by the initial RMS makes ``lr`` the fraction of a
    layer's typical weight that Adam may move per step, the same for every layer and target.
    The output (readout) layer's tensors get ``lr * readout_lr``: in a deep net the readout must
    move faster than the hidden layers, whose small moves compound over depth.
    """
    readout = {id(p) for p in model.layers[-1].parameters()}
    groups = []
    for name, p in model.named_parameters():
        with torch.no_grad():
            rms = float(p.detach().pow(2).mean().sqrt()) if p.numel() else 0.0
        scale = rms if rms > 1e-6 else 1.0
        factor = readout_lr if id(p) in readout else 1.0
        groups.append({"params": [p], "lr": lr * scale * factor, "name": name})
    return groups


def make_optimizer(model: SpikingNet, tr: TrainConfig, n_batches: int):
    """(Adam or AdamW, LambdaLR): per-tensor learning rates (:func:`param_groups`) and the recipe's schedule
    (cosine over all ``epochs * n_batches`` steps, or constant). ``weight_decay`` is Adam's L2 term added to
    the gradient (``"adam"``) or AdamW's decoupled shrink ``w *= 1 - lr_tensor * weight_decay`` per step
    (``"adamw"``; ``lr_tensor`` is the tensor's own learning rate, :func:`param_groups`)."""
    cls = torch.optim.AdamW if tr.optimizer == "adamw" else torch.optim.Adam
    opt = cls(param_groups(model, float(tr.lr), float(tr.readout_lr)), lr=float(tr.lr),
              weight_decay=float(tr.weight_decay))
    total_steps = max(1, int(tr.epochs) * n_batches)
    if tr.schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return opt, sched


@dataclass
class _Selection:
    """The best epoch so far by the recipe's ``select`` rule: ``val_accuracy`` (ties: lower validation
    loss, then earlier), ``val_loss`` (ties: higher validation accuracy, then earlier) or ``last``."""

    epoch: int = 0  # 1-based; 0: none yet
    val_accuracy: float = -1.0
    val_loss: float = math.inf
    state: Optional[Dict] = None  # that epoch's model state_dict (None: the model's own, the last epoch)
    rule: str = "val_accuracy"

    def _better(self, acc: float, loss: float) -> bool:
        if self.rule == "val_loss":
            return loss < self.val_loss or (loss == self.val_loss and acc > self.val_accuracy)
        return acc > self.val_accuracy or (acc == self.val_accuracy and loss < self.val_loss)

    def update(self, rec: Dict, model: SpikingNet) -> None:
        acc, loss = rec.get("val_accuracy"), rec.get("val_loss")
        if acc is None or self.rule == "last":  # no validation split, or the rule says so: the last epoch
            self.epoch = rec["epoch"]
            return
        if self._better(acc, loss):
            self.epoch, self.val_accuracy, self.val_loss = rec["epoch"], acc, loss
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def to_dict(self) -> Dict:
        return {"epoch": self.epoch, "val_accuracy": self.val_accuracy, "val_loss": self.val_loss,
                "model": self.state}


class _Average:
    """Exponential moving average of a model's parameters (recipe ``train.ema`` = the decay ``d``).

    After optimizer step ``n`` (1-based) every averaged tensor moves ``a <- a + (1 - d_n) (p - a)`` with
    ``d_n = min(d, (1 + n) / (10 + n))`` (a short warm-up, so the average is not held at the init).
    ``model`` is a copy of the trained model (same buffers: thresholds, exponents) holding the
    averages; the chip-legal weights are its parameters quantized as usual. Averages of parameters
    that ``clamp_parameters_`` keeps in range stay in range (a convex combination)."""

    def __init__(self, model: SpikingNet, decay: float):
        self.model = copy.deepcopy(model)
        self.decay, self.steps = float(decay), 0

    @torch.no_grad()
    def update(self, model: SpikingNet) -> None:
        self.steps += 1
        d = min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))
        for a, p in zip(self.model.parameters(), model.parameters()):
            a.lerp_(p.detach(), 1.0 - d)

    def to_dict(self) -> Dict:
        return {"model": self.model.state_dict(), "steps": self.steps}


@dataclass
class _Resumed:
    epoch: int = 0
    history: List[Dict] = field(default_factory=list)
    init_report: Optional[Dict] = None
    seconds: float = 0.0
    selection: _Selection = field(default_factory=_Selection)


def _restore(path: str, model: SpikingNet, opt, sched, init_report: Optional[Dict], rule: str,
             average: Optional[_Average]) -> _Resumed:
    """Load a checkpoint into model, optimizer, scheduler and the weight average; what the finished
    epochs left."""
    st = load_checkpoint(path)
    if average is not None:
        if not st.get("average"):
            raise InputError(f"checkpoint {path} has no weight average; the recipe's train.ema is "
                             f"{average.decay} (resume with the recipe that wrote it)")
        average.model.load_state_dict(st["average"]["model"])
        average.steps = int(st["average"]["steps"])
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    sel = st.get("selection") or {}
    selection = _Selection(int(sel.get("epoch", 0)), float(sel.get("val_accuracy", -1.0)),
                           float(sel.get("val_loss", math.inf)), sel.get("model"), rule)
    return _Resumed(int(st["epoch"]), list(st.get("history", [])), st.get("init_report", init_report),
                    float(st.get("train_seconds", 0.0)), selection)


def _save(path: str, model: SpikingNet, opt, sched, epoch: int, history: List[Dict], init_report, seconds: float,
          selection: _Selection, average: Optional[_Average] = None):
    save_checkpoint(path, model, opt, sched, epoch,
                    {"history": history, "init_report": init_report, "train_seconds": seconds,
                     "selection": selection.to_dict(), "average": average.to_dict() if average else None})


@dataclass
class _Loop:
    """What every batch of a run needs."""

    model: SpikingNet
    net: torch.nn.Module  # the model, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: object
    data: Dataset
    encoder: Encoder
    tr: TrainConfig
    info: DistInfo
    device: str
    bar: _Progress
    names: List[str]
    sizes: np.ndarray  # neurons per neuron layer
    n_batches: int
    val: Optional[Validation] = None
    average: Optional[_Average] = None

    @property
    def scored(self) -> SpikingNet:
        """The model that is validated, selected and exported: the weight average, else the model."""
        return self.average.model if self.average is not None else self.model


@dataclass
class _EpochStats:
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    spikes: Optional[np.ndarray] = None

    def rates(self, sizes: np.ndarray, steps: int) -> np.ndarray:
        return self.spikes / (sizes * max(1, self.seen) * steps)


def rate_penalty(spikes: List[torch.Tensor], rate_reg: float, min_rate: float, readout: bool = False) -> torch.Tensor:
    """``rate_reg * sum_l relu(min_rate - mean rate of layer l)`` over the hidden layers, and the output
    layer too when ``readout`` (recipe ``rate_reg_readout``): a floor that pulls a silent layer back."""
    layers = spikes if readout else spikes[:-1]
    return sum((rate_reg * F.relu(min_rate - s.mean()) for s in layers), spikes[0].new_zeros(()))


def _batch(lp: _Loop, gidx: np.ndarray, st: _EpochStats) -> None:
    """One optimizer step on this process's share of the global batch ``gidx``."""
    share = math.ceil(len(gidx) / lp.info.world)
    idx = gidx[lp.info.rank * share:(lp.info.rank + 1) * share]
    x = encode_split(lp.encoder, lp.data.x_train, idx).to(lp.device)
    y = torch.as_tensor(lp.data.y_train[idx], device=lp.device)
    logit_scale, rate_reg, min_rate = float(lp.tr.logit_scale), float(lp.tr.rate_reg), float(lp.tr.min_rate)
    out, spikes = lp.net(x, return_all=True)
    loss = F.cross_entropy(logits(out, lp.model, logit_scale), y, reduction="sum",
                           label_smoothing=float(lp.tr.label_smoothing)) / len(gidx)
    if rate_reg > 0:
        loss = loss + rate_penalty(spikes, rate_reg, min_rate, bool(lp.tr.rate_reg_readout)) * len(idx) / len(gidx)
    lp.opt.zero_grad(set_to_none=True)
    (loss * lp.info.world).backward()
    lp.opt.step()
    lp.sched.step()
    lp.model.clamp_parameters_()
    if lp.average is not None:
        lp.average.update(lp.model)
    with torch.no_grad():
        pred = predict(out.detach().cpu().numpy(), lp.model.readout)
        st.correct += int((pred == lp.data.y_train[idx]).sum())
        st.loss_sum += float(loss) * len(gidx)
        st.seen += len(idx)
        st.spikes += np.array([float(s.sum()) for s in spikes])


def shift_images(x: np.ndarray, shape, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Every image of ``x`` ([N, prod(shape)], ``shape`` = (C, H, W)) moved by its own whole-pixel
    offset (dy, dx), each drawn uniformly from [-max_shift, max_shift]; pixels moved in are zero."""
    c, h, w = shape
    m = int(max_shift)
    imgs = x.reshape(len(x), c, h, w)
    padded = np.pad(imgs, ((0, 0), (0, 0), (m, m), (m, m)))
    dy, dx = rng.integers(-m, m + 1, size=(2, len(x)))
    out = np.empty_like(imgs)
    for oy in range(-m, m + 1):
        for ox in range(-m, m + 1):
            sel = (dy == oy) & (dx == ox)
            out[sel] = padded[sel, :, m - oy:m - oy + h, m - ox:m - ox + w]
    return out.reshape(x.shape)


def _augmented(lp: _Loop, epoch: int) -> _Loop:
    """The loop with epoch ``epoch``'s shifted training images (recipe ``augment_shift``; 0: unchanged)."""
    m = int(lp.tr.augment_shift)
    if m == 0:
        return lp
    rng = np.random.default_rng([int(lp.tr.seed), epoch, EPOCH_SEED_STRIDE])
    x = shift_images(lp.data.x_train, lp.data.feature_shape, m, rng)
    return dataclasses.replace(lp, data=dataclasses.replace(lp.data, x_train=x))


def _epoch(lp: _Loop, epoch: int, on_batch) -> _EpochStats:
    """One pass over the training set in the epoch's seeded order."""
    gbs, epochs = int(lp.tr.batch_size), int(lp.tr.epochs)
    g = torch.Generator().manual_seed(int(lp.tr.seed) * EPOCH_SEED_STRIDE + epoch)
    perm = torch.randperm(len(lp.data.y_train), generator=g).numpy()
    st = _EpochStats(spikes=np.zeros(len(lp.names)))
    lp = _augmented(lp, epoch)
    for b in range(lp.n_batches):
        if on_batch is not None:
            on_batch(epoch, b)
        gidx = perm[b * gbs:(b + 1) * gbs]
        if len(gidx) < lp.info.world:
            continue
        _batch(lp, gidx, st)
        lp.bar.update(epoch, epochs, st.loss_sum / max(1, st.seen), st.correct / max(1, st.seen),
                      st.rates(lp.sizes, lp.encoder.total_steps))
    return st


def _record(lp: _Loop, epoch: int, st: _EpochStats, eval_samples: int) -> Dict:
    """The epoch's history entry (validation accuracy and loss on ``eval_samples`` validation samples,
    0 = all; ``None`` without a validation split)."""
    val_acc = val_loss = None
    if lp.val is not None:
        ev = evaluate(lp.scored, lp.val.data, lp.encoder, n=eval_samples, device=lp.device, offset=lp.val.offset,
                      logit_scale=float(lp.tr.logit_scale))
        val_acc, val_loss = ev["accuracy"], ev["loss"]
    rates = st.rates(lp.sizes, lp.encoder.total_steps).tolist()
    lr = float(lp.sched.get_last_lr()[0] / lp.opt.param_groups[0]["initial_lr"] * float(lp.tr.lr))
    return {"epoch": epoch + 1, "loss": st.loss_sum / max(1, st.seen), "train_accuracy": st.correct / max(1, st.seen),
            "val_accuracy": val_acc, "val_loss": val_loss, "rates": dict(zip(lp.names, rates)), "lr": lr}


def _log_epoch(bar: _Progress, rec: Dict, epochs: int, selected: int, readout: str) -> None:
    val = "" if rec["val_accuracy"] is None else f" val acc {rec['val_accuracy']:.4f} (best: epoch {selected})"
    bar.log(f"epoch {rec['epoch']}/{epochs}: loss {rec['loss']:.4f} train acc {rec['train_accuracy']:.4f}{val}")
    names = list(rec["rates"])
    for n, r in rec["rates"].items():
        if r == 0.0 and not (readout == "voltage" and n == names[-1]):  # a voltage readout never fires
            bar.log(f"warning: layer {n} is silent (no spikes in epoch {rec['epoch']})")


def _wrap(model: SpikingNet, info: DistInfo) -> torch.nn.Module:
    if info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model)
    return model


def train(model: SpikingNet, recipe: Recipe, data: Dataset, encoder: Encoder, *, checkpoint_path: str,
          init_report: Optional[Dict] = None, device: str = "cpu", resume: bool = False, progress: bool = True,
          on_batch: Optional[Callable[[int, int], None]] = None, val: Optional[Validation] = None) -> TrainResult:
    """Train ``model`` (already initialized) per ``recipe.train``; checkpoint after every epoch; select
    the epoch on ``val`` (:func:`snnhw.train.evaluate.carve_validation`; ``None``: the last epoch).

    ``on_batch(epoch, batch)`` is called before each batch (tests use it to interrupt a run).
    """
    tr = recipe.train
    if int(tr.augment_shift) and (data.kind != "static" or len(data.feature_shape) != 3):
        raise InputError(f"recipe {recipe.name}: train.augment_shift needs image data; {data.name} has "
                         f"{data.kind} samples of shape {tuple(data.feature_shape)}")
    info = init_distributed(device) if dist_info().world > 1 else DistInfo()
    epochs = int(tr.epochs)
    n_batches = math.ceil(len(data.y_train) / int(tr.batch_size))
    model.to(device)
    opt, sched = make_optimizer(model, tr, n_batches)
    average = _Average(model, float(tr.ema)) if float(tr.ema) > 0 else None
    done = _Resumed(init_report=init_report, selection=_Selection(rule=str(tr.select)))
    if resume and os.path.exists(checkpoint_path):
        done = _restore(checkpoint_path, model, opt, sched, init_report, str(tr.select), average)
    names = [l.name for l in model.neuron_layers()]
    lp = _Loop(model, _wrap(model, info), opt, sched, data, encoder, tr, info, device,
               _Progress(progress and info.main, (epochs - done.epoch) * n_batches, names), names,
               np.array([int(np.prod(l.out_shape)) for l in model.neuron_layers()]), n_batches, val, average)
    history, t0, sel = done.history, time.time(), done.selection
    try:
        for epoch in range(done.epoch, epochs):
            st = _epoch(lp, epoch, on_batch)
            history.append(_record(lp, epoch, st, int(recipe.data.eval_samples)))
            sel.update(history[-1], lp.scored)
            if epoch + 1 == epochs:  # the run ends with the selected epoch's (or the last average's) weights
                if sel.state is not None:
                    model.load_state_dict(sel.state)
                elif average is not None:
                    model.load_state_dict(average.model.state_dict())
            if info.main:
                _log_epoch(lp.bar, history[-1], epochs, sel.epoch, model.readout)
                _save(checkpoint_path, model, opt, sched, epoch + 1, history, done.init_report,
                      done.seconds + time.time() - t0, sel, average)
            if info.world > 1:
                import torch.distributed as dist

                dist.barrier()
    finally:
        lp.bar.close()
    return TrainResult(model, history, done.init_report or {}, done.seconds + time.time() - t0, done.epoch,
                       sel.epoch)
