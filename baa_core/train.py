"""A model-agnostic training loop that reports through callbacks (after minGPT's Trainer).

The loop knows nothing about gates or budgets: an *objective* turns (model, batch, context) into a
loss and a few metrics, and each method's phases (``methods/``: ``Method.plan``) are runs of this
loop with different objectives (``run_method``). Progress goes out as ``TrainEvent``s to callbacks (the CLI prints them, the
app draws progress bars); a ``stop`` flag is checked between steps so training can be cancelled.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from .io.data import EncodedDataset, iterate_batches
from .methods.base import Method, Objective, Phase, TrainConfig


WARMUP_SHARE_MAX = 0.2  # warm-up never takes more than a fifth of a phase (short phases)
FINAL_LR_SHARE = 0.1  # after warm-up the rate decays linearly to this share of its base
EMA_DECAY = 0.9  # smoothing of the loss/accuracy/cost curves sent to callbacks


class TrainingCancelled(Exception):
    """Raised between steps when the stop flag is set."""


@dataclass
class TrainEvent:
    phase: str
    step: int
    total_steps: int
    epoch: float
    loss: float
    accuracy: float
    cost: float
    lr: float
    elapsed_s: float
    extra: dict = field(default_factory=dict)
    val: dict | None = None  # filled at evaluation points

    @property
    def fraction(self) -> float:
        return self.step / max(1, self.total_steps)


@dataclass
class StepContext:
    """What an objective may know about the run: how far it is, and its own random stream."""

    progress: float  # 0 at the first step of the phase, 1 at the last
    generator: torch.Generator
    step: int


Callback = Callable[[TrainEvent], None]


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _stop_requested(stop) -> bool:
    if stop is None:
        return False
    if isinstance(stop, threading.Event):
        return stop.is_set()
    return bool(stop())


@dataclass
class Trainer:
    model: nn.Module
    objective: Objective
    data: EncodedDataset
    phase: str = "train"
    epochs: float = 1.0
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    # Extra parameter groups, e.g. gates with their own learning rate: [(params, {"lr": ...}), ...].
    param_groups: list | None = None
    callbacks: list[Callback] = field(default_factory=list)
    stop: threading.Event | Callable[[], bool] | None = None
    evaluate: Callable[[nn.Module], dict] | None = None
    eval_every: int = 0  # steps; 0 = only at the end
    eval_at_start: bool = False  # also evaluate before the first step (training dynamics start there)
    # Ends the phase early once the evaluation says it is done (e.g. validation accuracy reached).
    done: Callable[[dict], bool] | None = None
    log_every: int = 10

    def _optimizer(self) -> torch.optim.Optimizer:
        special = {id(p) for params, _ in (self.param_groups or []) for p in params}
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad or id(p) in special:
                continue
            (no_decay if p.dim() < 2 or "norm" in name.lower() or "embeddings" in name else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        for params, opts in self.param_groups or []:
            groups.append({"params": list(params), "weight_decay": 0.0, **opts})
        for g in groups:
            g.setdefault("lr", self.lr)
            g["base_lr"] = g["lr"]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.lr)

    def run(self) -> list[TrainEvent]:
        generator = seed_everything(self.seed)
        self.model.to(self.device).train()
        opt = self._optimizer()
        # Refuse what would loop without training: no rows, no batch, or a negative length of training.
        if len(self.data) == 0:
            raise ValueError(f"there is nothing to train on: the {self.phase} phase got 0 training examples")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"the batch size must be a whole number of at least 1, not {self.batch_size!r}")
        if not math.isfinite(self.epochs) or self.epochs < 0:
            raise ValueError(f"the {self.phase} phase's epochs must be a number >= 0, not {self.epochs!r}")
        # A parameter group at learning rate 0 is frozen for the phase: no gradients, so none in the clipping norm.
        frozen = [p for g in opt.param_groups if g["base_lr"] == 0 for p in g["params"] if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            return self._steps(generator, opt)
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def _steps(self, generator: torch.Generator, opt: torch.optim.Optimizer) -> list[TrainEvent]:
        steps_per_epoch = math.ceil(len(self.data) / self.batch_size)
        total = max(1, int(round(self.epochs * steps_per_epoch)))
        history: list[TrainEvent] = []
        start, step = time.perf_counter(), 0
        loss_avg = acc_avg = cost_avg = None
        if self.eval_at_start and self.evaluate is not None:
            self._emit(history, TrainEvent(self.phase, 0, total, 0.0, float("nan"), float("nan"), float("nan"), 0.0, 0.0,
                                           {}, self._validate()))
        while step < total:
            # Checked here too, not only per batch: a cancel must work even if a pass yields no batch.
            if _stop_requested(self.stop):
                raise TrainingCancelled(f"training cancelled during {self.phase} at step {step}/{total}")
            before = step
            for batch in iterate_batches(self.data, self.batch_size, True, generator, self.device):
                if step >= total:
                    break
                if _stop_requested(self.stop):
                    raise TrainingCancelled(f"training cancelled during {self.phase} at step {step}/{total}")
                # Linear warm-up, then linear decay to 10% of the base rate.
                warm = min(self.warmup_steps, int(total * WARMUP_SHARE_MAX))
                decay = (1.0 - FINAL_LR_SHARE) * (step - warm) / max(1, total - warm)
                scale = (step + 1) / max(1, warm) if step < warm else 1.0 - decay
                for g in opt.param_groups:
                    g["lr"] = g["base_lr"] * scale
                ctx = StepContext(progress=step / max(1, total - 1), generator=generator, step=step)
                loss, metrics = self.objective(self.model, batch, ctx)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip:
                    torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                opt.step()
                step += 1
                # Exponential moving averages make the live curves readable.
                a = EMA_DECAY if loss_avg is not None else 0.0
                loss_avg = a * (loss_avg or 0.0) + (1 - a) * loss.item()
                acc_avg = a * (acc_avg or 0.0) + (1 - a) * float(metrics.get("accuracy", 0.0))
                cost_avg = a * (cost_avg or 0.0) + (1 - a) * float(metrics.get("cost", 1.0))
                at_eval = self.evaluate is not None and (step == total or (self.eval_every and step % self.eval_every == 0))
                if step % self.log_every == 0 or step == total or at_eval:
                    val = self._validate() if at_eval else None
                    extra = {k: float(v) for k, v in metrics.items() if k not in ("accuracy", "cost")}
                    self._emit(history, TrainEvent(self.phase, step, total, step / steps_per_epoch, loss_avg, acc_avg,
                                                   cost_avg, opt.param_groups[0]["lr"], time.perf_counter() - start, extra, val))
                    if val is not None and self.done is not None and self.done(val):
                        self.model.eval()
                        return history
            if step == before:  # a pass over the data trained nothing: stop instead of looping forever
                raise ValueError(f"the {self.phase} phase made no progress in a pass over {len(self.data)} examples")
        self.model.eval()
        return history

    def _validate(self) -> dict:
        self.model.eval()
        try:
            return self.evaluate(self.model)
        finally:
            self.model.train()

    def _emit(self, history: list[TrainEvent], event: TrainEvent) -> None:
        history.append(event)
        for cb in self.callbacks:
            cb(event)


    @classmethod
    def for_phase(cls, model: nn.Module, phase: Phase, data: EncodedDataset, cfg: TrainConfig, *, callbacks=(),
                  stop=None, validate: Callable[[nn.Module], dict] | None = None) -> "Trainer":
        """The Trainer that runs one of a method's phases with the recipe's shared settings."""
        eval_every = phase.eval_every
        if phase.evals_per_epoch:
            eval_every = max(1, math.ceil(len(data) / cfg.batch_size) // phase.evals_per_epoch)
        return cls(model, phase.objective(model), data, phase=phase.name, epochs=phase.epochs, batch_size=cfg.batch_size,
                   lr=phase.lr, weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, grad_clip=cfg.grad_clip,
                   seed=cfg.seed + phase.seed_offset, device=cfg.device,
                   param_groups=phase.param_groups(model) if phase.param_groups else None, callbacks=list(callbacks),
                   stop=stop, evaluate=validate if phase.validate else None, eval_every=eval_every,
                   eval_at_start=phase.eval_at_start, done=phase.done)


def run_method(method: Method, start: nn.Module, data: EncodedDataset, cfg: TrainConfig, *, budget: float | None = None,
               callbacks=(), stop=None, validate: Callable[[nn.Module], dict] | None = None, **plan_kw) -> nn.Module:
    """Train ``method`` from ``start`` (the dense warm start; for ``dense`` itself, the fresh network):
    ``method.plan`` gives the model and its phases, each run by a Trainer in turn."""
    if method.plan is None:
        raise ValueError(f"{method.name} has nothing to train")
    model, phases = method.plan(start, cfg, budget, **plan_kw)
    for phase in phases:
        Trainer.for_phase(model, phase, data, cfg, callbacks=callbacks, stop=stop, validate=validate).run()
        if phase.after is not None:
            phase.after(model)
    return model.eval()


class TerminalProgress:
    """A callback printing one line per phase update: what the CLI shows while training."""

    def __init__(self, every: int = 50, stream=None):
        import sys

        self.every, self.stream = every, stream or sys.stderr

    def __call__(self, e: TrainEvent) -> None:
        if e.step % self.every and e.step != e.total_steps and e.val is None:
            return
        val = "" if e.val is None else " | val " + " ".join(f"{k}={v:.4f}" for k, v in e.val.items() if isinstance(v, float))
        print(f"[{e.phase:>9}] step {e.step:5d}/{e.total_steps} epoch {e.epoch:5.2f} loss {e.loss:.4f} "
              f"acc {e.accuracy:.3f} cost {e.cost:.3f} ({e.elapsed_s:5.1f}s){val}", file=self.stream, flush=True)
