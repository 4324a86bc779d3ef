"""Training in a background thread, watched by the Train page.

A ``TrainingJob`` runs ``baa_core.pipeline.prepare`` + ``train_and_save`` in a daemon thread. The
trainer's callbacks append events under a lock; the page reads a ``snapshot()`` every second and
draws the progress bar and the live curves. ``cancel()`` sets the stop flag, checked between steps
(``TrainingCancelled``). The checkpoint is written atomically by ``save_checkpoint`` into the user
models folder, so a cancelled or crashed run never leaves a half-written model there.
No Streamlit in this module.
"""
from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TRAIN_SHARE = 0.85  # of the progress bar; the rest is the measurement sweep and saving


@dataclass
class TrainRequest:
    name: str
    task: str  # synthetic, ag_news, dbpedia14, csv
    method: str  # baa, static, budgetformer, dense
    kind: str = "word"  # word or bert
    base: str | None = None
    budget: float | None = None  # static baseline
    csv_path: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    max_train: int | None = None
    overrides: dict = field(default_factory=dict)  # TrainConfig fields
    latency_batches: int = 8

    def phases(self) -> list[str]:
        from baa_core.methods import get_method

        return get_method(self.method).phase_names(self.budget)

    def command(self) -> str:
        """The CLI command that trains the same thing (for the card)."""
        parts = ["python -m baa_core train", f"--method {self.method}", f"--kind {self.kind}"]
        parts.append(f"--csv {Path(self.csv_path).name} --text-column {self.text_column} --label-column {self.label_column}"
                     if self.task == "csv" else f"--task {self.task}")
        if self.budget is not None:
            parts.append(f"--budget {self.budget:g}")
        if self.base:
            parts.append(f"--base {self.base}")
        if self.max_train:
            parts.append(f"--max-train {self.max_train}")
        for k, v in self.overrides.items():
            parts.append(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}")
        parts.append(f"--latency-batches {self.latency_batches} --out user_models/{self.name}")
        return " ".join(parts) + "  # started from the app's Train page"


def check_name(name: str, folder: Path) -> str | None:
    """Why this model name cannot be used, or None."""
    if not NAME_RE.match(name or ""):
        return "use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
    if (folder / name).exists():
        return f"a model called {name} already exists in {folder}; pick another name"
    return None


class TrainingJob:
    def __init__(self, request: TrainRequest, out_dir: Path):
        self.id = uuid.uuid4().hex[:8]
        self.request, self.out_dir = request, Path(out_dir)
        self.out = self.out_dir / request.name
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.status = "queued"  # preparing, training, measuring, done, cancelled, failed
        self.message = ""
        self.measure_done = 0
        self.started = time.time()
        self.finished: float | None = None
        self.result: dict | None = None
        self._phase_offset = 0
        self._last_phase: str | None = None
        self._last_step = 0
        self.thread = threading.Thread(target=self._run, name=f"baa-train-{request.name}", daemon=True)

    # -------------------------------------------------------------- the thread
    def start(self) -> "TrainingJob":
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.stop.set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def _on_event(self, e) -> None:
        with self.lock:
            if e.phase != self._last_phase:
                self._phase_offset += self._last_step
                self._last_phase = e.phase
            self._last_step = e.step
            self.status = "training"
            self.events.append({"phase": e.phase, "step": e.step, "total_steps": e.total_steps, "global_step": self._phase_offset + e.step,
                                "fraction": e.fraction, "loss": e.loss, "accuracy": e.accuracy, "cost": e.cost,
                                "elapsed_s": e.elapsed_s, "val": dict(e.val) if e.val else None})

    def _on_measure(self, msg: str) -> None:
        if self.stop.is_set():
            from baa_core.train import TrainingCancelled

            raise TrainingCancelled("cancelled while measuring")
        with self.lock:
            self.status = "measuring"
            self.measure_done += 1
            self.message = msg

    def _run(self) -> None:
        from baa_core.pipeline import default_train_config, prepare, train_and_save
        from baa_core.train import TrainingCancelled

        r = self.request
        try:
            self._set("preparing", "loading and tokenizing the data")
            if r.task == "csv":
                prep = prepare(kind=r.kind, base=r.base, csv=r.csv_path, text_column=r.text_column, label_column=r.label_column,
                               max_train=r.max_train)
            else:
                prep = prepare(r.task, kind=r.kind, base=r.base, max_train=r.max_train)
            if self.stop.is_set():
                raise TrainingCancelled("cancelled before training started")
            tcfg = default_train_config("csv" if r.task == "csv" else r.task, r.kind, **r.overrides)
            self._set("training", f"data: {prep.data.source}")
            # A CSV model keeps a copy of its data beside it (train_and_save does it, as for the CLI).
            ckpt = train_and_save(prep, r.method, self.out, tcfg, budget=r.budget,
                                  name=r.name, command=r.command(), callbacks=[self._on_event], stop=self.stop,
                                  n_latency_batches=r.latency_batches, progress=self._on_measure)
            self.result = {"path": str(self.out), "sweeps": ckpt.card.get("sweeps", {}), "train_time_s": ckpt.card.get("train_time_s")}
            self._set("done", f"saved {self.out}")
        except TrainingCancelled as exc:
            self._set("cancelled", f"{exc}; nothing was saved")
        except Exception as exc:  # shown on the page; the app keeps running
            self._set("failed", f"{type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}")
        finally:
            self.finished = time.time()

    def _set(self, status: str, message: str) -> None:
        with self.lock:
            self.status, self.message = status, message

    # -------------------------------------------------------------- what the page reads
    def progress(self) -> float:
        with self.lock:
            if self.status == "done":
                return 1.0
            if not self.events:
                return 0.0
            phases = self.request.phases()
            last = self.events[-1]
            idx = phases.index(last["phase"]) if last["phase"] in phases else len(phases) - 1
            train = (idx + last["fraction"]) / len(phases)
            from baa_core.pipeline import DEFAULT_BUDGETS  # what train_and_save sweeps

            from baa_core.methods import get_method

            n_budgets = 1 if get_method(self.request.method).one_model_per_budget else len(DEFAULT_BUDGETS)
            measure = min(1.0, self.measure_done / (n_budgets + 1)) if self.status == "measuring" else 0.0
            return min(0.99, TRAIN_SHARE * train + (1 - TRAIN_SHARE) * measure)

    def snapshot(self) -> dict:
        with self.lock:
            events = list(self.events)
            status, message = self.status, self.message
        return {"status": status, "message": message, "events": events, "progress": self.progress(),
                "elapsed_s": (self.finished or time.time()) - self.started, "name": self.request.name, "id": self.id}


class JobRegistry:
    """All training jobs of this server process (one at a time: the machine has 2 cores)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.jobs: dict[str, TrainingJob] = {}

    def running(self) -> TrainingJob | None:
        with self.lock:
            return next((j for j in self.jobs.values() if j.running), None)

    def start(self, request: TrainRequest, out_dir: Path) -> TrainingJob:
        with self.lock:
            if any(j.running for j in self.jobs.values()):
                raise RuntimeError("another training is running; wait for it or cancel it")
            job = TrainingJob(request, out_dir)
            self.jobs[job.id] = job
        return job.start()

    def get(self, job_id: str | None) -> TrainingJob | None:
        with self.lock:
            return self.jobs.get(job_id or "")
