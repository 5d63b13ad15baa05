"""The training loop: BPTT with surrogate gradients through the chip's own arithmetic.

* Loss: cross-entropy on ``logit_scale * output spike counts`` (+ optional rate penalty).
* Class decision (everywhere in snnhw): the output neuron with the most spikes over the sample's
  steps; ties go to the lowest index (``numpy.argmax``). A silent output layer predicts class 0.
* Adam, cosine schedule over all batches, gradients from the model's surrogate (recipe ``surrogate``).
* Determinism: epoch ``e`` visits the training set in the order of ``randperm`` seeded with
  ``seed * 100003 + e``; encoders are deterministic per sample; so a run is a function of the seed,
  and resuming at an epoch boundary replays exactly what an uninterrupted run does.
* Checkpoint (atomic) after each epoch; ``resume`` continues after the last completed epoch.
* Data-parallel: under ``torchrun`` (``WORLD_SIZE`` > 1) each process takes an equal contiguous
  share of every global batch, the model is wrapped in DDP (gloo on CPU), and the local loss is scaled
  so that DDP's gradient average equals the single-process gradient of the same global batch.
"""
from __future__ import annotations

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
from snnhw.train.checkpoint import load_checkpoint, load_model_constants, save_checkpoint


def predict(out_spikes) -> np.ndarray:
    """Class per sample from output spikes [samples, steps, classes]: most spikes, ties -> lowest index."""
    counts = np.asarray(out_spikes).sum(axis=1)
    return np.argmax(counts, axis=1)


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


def encode_split(encoder: Encoder, x: np.ndarray, idx: np.ndarray, offset: int = 0) -> torch.Tensor:
    return encoder(x[idx], index=idx + offset)


def evaluate(model: SpikingNet, data: Dataset, encoder: Encoder, n: int = 0, batch: int = 256,
             device: str = "cpu", offset: Optional[int] = None) -> Dict:
    """Test-split accuracy and per-layer rates of ``model`` on the first ``n`` test samples (0 = all)."""
    n = len(data.y_test) if not n else min(n, len(data.y_test))
    offset = len(data.y_train) if offset is None else offset
    preds, rates = [], None
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch):
            idx = np.arange(start, min(n, start + batch))
            x = encode_split(encoder, data.x_test, idx, offset).to(device)
            out, spikes = model(x, return_all=True)
            preds.append(predict(out.cpu().numpy()))
            r = np.array([float(s.sum()) for s in spikes])
            rates = r if rates is None else rates + r
    model.train()
    sizes = np.array([int(np.prod(l.out_shape)) for l in model.neuron_layers()])
    pred = np.concatenate(preds)
    return {"accuracy": float(np.mean(pred == data.y_test[:n])), "n": int(n),
            "rates": (rates / (sizes * n * encoder.total_steps)).tolist()}


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

    Weights live in mantissa units (steps of 2, |w| up to 254); a plain lr of 1e-3 would move them
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


def train(model: SpikingNet, recipe: Dict, data: Dataset, encoder: Encoder, *, checkpoint_path: str,
          init_report: Optional[Dict] = None, device: str = "cpu", resume: bool = False, progress: bool = True,
          log: Optional[Callable[[str], None]] = None, on_batch: Optional[Callable[[int, int], None]] = None
          ) -> TrainResult:
    """Train ``model`` (already initialized) per ``recipe['train']``; checkpoint after every epoch.

    ``on_batch(epoch, batch)`` is called before each batch (tests use it to interrupt a run).
    """
    tr = recipe["train"]
    info = init_distributed(device) if dist_info().world > 1 else DistInfo()
    seed, epochs, gbs = int(tr["seed"]), int(tr["epochs"]), int(tr["batch_size"])
    n_train = len(data.y_train)
    n_batches = math.ceil(n_train / gbs)
    model.to(device)
    opt = torch.optim.Adam(param_groups(model, float(tr["lr"]), float(tr["readout_lr"])), lr=float(tr["lr"]),
                           weight_decay=float(tr["weight_decay"]))
    total_steps = max(1, epochs * n_batches)
    if tr["schedule"] == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    history: List[Dict] = []
    start_epoch, t_before = 0, 0.0
    if resume and os.path.exists(checkpoint_path):
        st = load_checkpoint(checkpoint_path)
        model.load_state_dict(st["model"])
        load_model_constants(model, st["constants"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        start_epoch, history = int(st["epoch"]), list(st.get("history", []))
        init_report = st.get("init_report", init_report)
        t_before = float(st.get("train_seconds", 0.0))
    net = model
    if info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model)
    names = [l.name for l in model.neuron_layers()]
    bar = _Progress(progress and info.main, (epochs - start_epoch) * n_batches, names)
    t0 = time.time()
    logit_scale, rate_reg, min_rate = float(tr["logit_scale"]), float(tr["rate_reg"]), float(tr["min_rate"])
    try:
        for epoch in range(start_epoch, epochs):
            g = torch.Generator().manual_seed(seed * 100003 + epoch)
            perm = torch.randperm(n_train, generator=g).numpy()
            sum_loss, sum_correct, seen = 0.0, 0, 0
            spike_sum = np.zeros(len(names))
            sizes = np.array([int(np.prod(l.out_shape)) for l in model.neuron_layers()])
            for b in range(n_batches):
                if on_batch is not None:
                    on_batch(epoch, b)
                gidx = perm[b * gbs:(b + 1) * gbs]
                if len(gidx) < info.world:
                    continue
                share = math.ceil(len(gidx) / info.world)
                idx = gidx[info.rank * share:(info.rank + 1) * share]
                x = encode_split(encoder, data.x_train, idx).to(device)
                y = torch.as_tensor(data.y_train[idx], device=device)
                out, spikes = net(x, return_all=True)
                counts = out.sum(1)
                loss = F.cross_entropy(logit_scale * counts, y, reduction="sum") / len(gidx)
                if rate_reg > 0:
                    for s in spikes[:-1]:
                        loss = loss + rate_reg * F.relu(min_rate - s.mean()) * len(idx) / len(gidx)
                opt.zero_grad(set_to_none=True)
                (loss * info.world).backward()
                opt.step()
                sched.step()
                model.clamp_parameters_()
                with torch.no_grad():
                    pred = predict(out.detach().cpu().numpy())
                    sum_correct += int((pred == data.y_train[idx]).sum())
                    sum_loss += float(loss) * len(gidx)
                    seen += len(idx)
                    spike_sum += np.array([float(s.sum()) for s in spikes])
                rates = spike_sum / (sizes * max(1, seen) * encoder.total_steps)
                bar.update(epoch, epochs, sum_loss / max(1, seen), sum_correct / max(1, seen), rates)
            ev = evaluate(model, data, encoder, n=int(recipe["data"]["eval_samples"]), device=device)
            rates = (spike_sum / (sizes * max(1, seen) * encoder.total_steps)).tolist()
            rec = {"epoch": epoch + 1, "loss": sum_loss / max(1, seen), "train_accuracy": sum_correct / max(1, seen),
                   "test_accuracy": ev["accuracy"], "rates": dict(zip(names, rates)),
                   "lr": float(sched.get_last_lr()[0] / opt.param_groups[0]["initial_lr"] * float(tr["lr"]))}
            history.append(rec)
            silent = [n for n, r in zip(names, rates) if r == 0.0]
            if info.main:
                bar.log(f"epoch {epoch + 1}/{epochs}: loss {rec['loss']:.4f} train acc {rec['train_accuracy']:.4f} "
                        f"test acc {ev['accuracy']:.4f}")
                for n in silent:
                    bar.log(f"warning: layer {n} is silent (no spikes in epoch {epoch + 1})")
                save_checkpoint(checkpoint_path, model, opt, sched, epoch + 1,
                                {"history": history, "init_report": init_report,
                                 "train_seconds": t_before + time.time() - t0})
            if info.world > 1:
                import torch.distributed as dist

                dist.barrier()
    finally:
        bar.close()
    return TrainResult(model, history, init_report or {}, t_before + time.time() - t0, start_epoch)
