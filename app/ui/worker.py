"""Training in a separate, lower-priority process, owned by the session that asked for it.

A ``TrainingJob`` runs ``baa_core.pipeline.prepare`` + ``train_and_save`` in a child process
(``python -m app.ui.worker``) at nice 10 with one torch thread, so a class browsing the app keeps its
CPU while a model trains. The child reports TrainEvents as JSON lines; a watcher thread here collects
them under a lock, and the page reads a ``snapshot()`` every two seconds. ``cancel()`` asks the child
to stop (checked between steps, ``TrainingCancelled``) and ends it if it does not.

Jobs belong to the session that started them: ``JobRegistry`` runs one at a time (the machine has
two cores), queues the others in order with their position, and lets only the owner cancel a job or
leave the queue. The checkpoint is written atomically by ``save_checkpoint``; it replaces an existing
model only if its owner confirmed that exact version, and if another model appeared under the name
meanwhile, the new one is saved under the next free name instead (nothing is lost, nothing replaced).
No Streamlit in this module.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TRAIN_SHARE = 0.85  # of the progress bar; the rest is the measurement sweep and saving
ROOT = Path(__file__).resolve().parents[2]
CHILD_NICE = 10  # training yields the CPU to the sessions browsing the app
CHILD_THREADS = 1
MAX_QUEUE = 8  # waiting jobs per server; one per session
STOP_GRACE_S = 20.0  # a child that ignores a cancel this long is ended


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


def check_name(name: str, folder: Path | None = None) -> str | None:
    """Why this model name cannot be used, or None. (An existing model of that name is not a problem
    here: the page asks whether to replace it.)"""
    if not NAME_RE.match(name or ""):
        return "use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
    return None


def fmt_clock(t: float | None) -> str:
    return "-" if t is None else time.strftime("%H:%M:%S", time.localtime(t))


class TrainingJob:
    def __init__(self, request: TrainRequest, out_dir: Path, owner: str = "", *, replace: tuple | None = None,
                 on_end=None):
        """``replace``: the ``folder_stamp`` of the existing model its owner agreed to replace (None: replace nothing)."""
        self.id = uuid.uuid4().hex[:8]
        self.request, self.out_dir, self.owner = request, Path(out_dir), owner
        self.out = self.out_dir / request.name
        self.replace = replace
        self.on_end = on_end
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.status = "queued"  # preparing, training, measuring, done, cancelled, failed
        self.message = ""
        self.measure_done = 0
        self.queued_at = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.result: dict | None = None
        self.process: subprocess.Popen | None = None
        self._phase_offset = 0
        self._last_phase: str | None = None
        self._last_step = 0
        self.thread = threading.Thread(target=self._run, name=f"baa-train-{request.name}", daemon=True)

    # -------------------------------------------------------------- the watcher thread
    def start(self) -> "TrainingJob":
        self.started = time.time()
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.stop.set()
        with self.lock:
            proc = self.process
            if self.status == "queued" and not self.thread.is_alive():
                self.status, self.message, self.finished = "cancelled", "left the queue before it started; nothing was saved", time.time()
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.write("stop\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    @property
    def ended(self) -> bool:
        return self.status in ("done", "cancelled", "failed")

    def _run(self) -> None:
        try:
            self._watch()
        except Exception as exc:  # the watcher itself must never take the app down
            self._set("failed", f"{type(exc).__name__}: {str(exc)[:300]}")
        finally:
            with self.lock:
                if not self.ended:
                    self.status, self.message = "failed", self.message or "the training process ended without a result"
                self.finished = time.time()
            if self.on_end is not None:
                self.on_end(self)

    def _watch(self) -> None:
        payload = {"request": dataclasses.asdict(self.request), "out": str(self.out),
                   "replace": list(self.replace) if self.replace is not None else None}
        env = {**os.environ, "OMP_NUM_THREADS": str(CHILD_THREADS), "MKL_NUM_THREADS": str(CHILD_THREADS)}
        self._set("preparing", "starting the training process")
        proc = subprocess.Popen([sys.executable, "-m", "app.ui.worker"], cwd=str(ROOT), env=env, text=True, bufsize=1,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=(lambda: os.nice(CHILD_NICE)) if hasattr(os, "nice") else None)
        with self.lock:
            self.process = proc
        stderr: list[str] = []
        drain = threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)  # keep the pipe from filling
        drain.start()
        proc.stdin.write(json.dumps(payload) + "\n")
        proc.stdin.flush()
        if self.stop.is_set():
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        threading.Thread(target=self._enforce_stop, args=(proc,), daemon=True).start()
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self._handle(msg)
        proc.wait()
        drain.join(5)
        if not self.ended:
            tail = "".join(stderr[-3:]).strip().splitlines()
            why = tail[-1][:300] if tail else f"exit code {proc.returncode}"
            if self.stop.is_set():
                self._set("cancelled", "training cancelled; nothing was saved")
            else:
                self._set("failed", f"the training process ended unexpectedly ({why})")

    def _enforce_stop(self, proc: subprocess.Popen) -> None:
        """A child that does not stop within STOP_GRACE_S of a cancel is terminated (its partial save is
        a hidden folder that the next start cleans away)."""
        while proc.poll() is None:
            if self.stop.wait(1.0):
                deadline = time.time() + STOP_GRACE_S
                while proc.poll() is None and time.time() < deadline:
                    time.sleep(0.2)
                if proc.poll() is None:
                    proc.terminate()
                return

    def _handle(self, msg: dict) -> None:
        kind = msg.get("kind")
        if kind == "event":
            e = msg["event"]
            with self.lock:
                if e["phase"] != self._last_phase:
                    self._phase_offset += self._last_step
                    self._last_phase = e["phase"]
                self._last_step = e["step"]
                self.status = "training"
                self.events.append({**e, "global_step": self._phase_offset + e["step"]})
        elif kind == "measure":
            with self.lock:
                self.status = "measuring"
                self.measure_done += 1
                self.message = msg.get("message", "")
        elif kind == "status":
            self._set(msg["status"], msg.get("message", ""))
        elif kind == "end":
            with self.lock:
                self.result = msg.get("result")
                if self.result and self.result.get("path"):
                    self.out = Path(self.result["path"])
                self.status, self.message = msg["status"], msg.get("message", "")

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
        start = self.started or self.queued_at
        return {"status": status, "message": message, "events": events, "progress": self.progress(),
                "elapsed_s": (self.finished or time.time()) - start, "name": self.request.name, "id": self.id,
                "started": self.started, "out": str(self.out)}


class JobRegistry:
    """Every training job of this server process: one runs at a time (the machine has 2 cores), the
    others wait in a queue in the order they were asked for. A job belongs to its owner (a session
    id): only the owner can cancel it or take it out of the queue."""

    def __init__(self, max_queue: int = MAX_QUEUE):
        self.lock = threading.Lock()
        self.jobs: dict[str, TrainingJob] = {}
        self.queue: list[TrainingJob] = []
        self.max_queue = max_queue
        self._running: TrainingJob | None = None

    def running(self) -> TrainingJob | None:
        with self.lock:
            return self._running if self._running is not None and not self._running.ended else None

    def submit(self, request: TrainRequest, out_dir: Path, owner: str, replace: tuple | None = None) -> TrainingJob:
        """Start ``request`` now if nothing runs, else queue it. RuntimeError (one sentence) when the
        owner already has a job waiting or running, the name is taken by one, or the queue is full."""
        with self.lock:
            active = [j for j in self.jobs.values() if not j.ended]
            if any(j.owner == owner for j in active):
                raise RuntimeError("you already have a training running or waiting; cancel it first")
            if any(j.request.name == request.name and j.out_dir == Path(out_dir) for j in active):
                raise RuntimeError(f"a training that saves as {request.name} is already running or waiting; pick another name")
            if len(self.queue) >= self.max_queue:
                raise RuntimeError(f"{len(self.queue)} trainings are already waiting; try again later")
            job = TrainingJob(request, out_dir, owner, replace=replace, on_end=self._advance)
            self.jobs[job.id] = job
            if self._running is None or self._running.ended:
                self._running = job
                job.start()
            else:
                self.queue.append(job)
        return job

    def start(self, request: TrainRequest, out_dir: Path, owner: str = "") -> TrainingJob:
        """``submit`` for callers without sessions (scripts, tests)."""
        return self.submit(request, out_dir, owner or uuid.uuid4().hex)

    def _advance(self, finished: TrainingJob) -> None:
        """Called by a job's watcher thread when it ends: start the next job still waiting."""
        with self.lock:
            if self._running is not finished:
                return
            self._running = None
            while self.queue:
                job = self.queue.pop(0)
                if job.stop.is_set() or job.ended:
                    continue
                self._running = job
                job.start()
                break

    def cancel(self, job_id: str, owner: str) -> bool:
        """Cancel a job (or take it out of the queue) if ``owner`` owns it; False otherwise."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None or job.owner != owner:
                return False
            if job in self.queue:
                self.queue.remove(job)
        job.cancel()
        return True

    def position(self, job: TrainingJob) -> int | None:
        """1-based place in the queue (1 = next to start), or None if it is not waiting."""
        with self.lock:
            return self.queue.index(job) + 1 if job in self.queue else None

    def waiting(self) -> int:
        with self.lock:
            return len(self.queue)

    def get(self, job_id: str | None) -> TrainingJob | None:
        with self.lock:
            return self.jobs.get(job_id or "")

    def latest_of(self, owner: str) -> TrainingJob | None:
        """The owner's most recent job (running, waiting or ended)."""
        with self.lock:
            mine = [j for j in self.jobs.values() if j.owner == owner]
        return max(mine, key=lambda j: j.queued_at, default=None)


# ------------------------------------------------------------------ the child process
def _emit(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def child_main() -> int:
    """``python -m app.ui.worker``: read one job (a JSON line) on stdin, train it, report JSON lines on
    stdout; a later "stop" line on stdin cancels it between steps."""
    import math

    job = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def listen() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                stop.set()
                return
        stop.set()  # the app went away: stop too

    threading.Thread(target=listen, daemon=True).start()
    import torch

    torch.set_num_threads(CHILD_THREADS)
    from baa_core.io.checkpoint import save_checkpoint  # noqa: F401  (fail early if the library is broken)
    from baa_core.pipeline import default_train_config, prepare, train_and_save
    from baa_core.train import TrainingCancelled

    r = TrainRequest(**job["request"])
    out = Path(job["out"])
    replace = tuple(tuple(x) if isinstance(x, list) else x for x in job["replace"]) if job.get("replace") is not None else None

    def on_event(e) -> None:
        num = lambda v: v if isinstance(v, (int, float)) and math.isfinite(v) else None  # noqa: E731
        _emit({"kind": "event", "event": {"phase": e.phase, "step": e.step, "total_steps": e.total_steps, "fraction": e.fraction,
                                          "loss": num(e.loss), "accuracy": num(e.accuracy), "cost": num(e.cost),
                                          "elapsed_s": e.elapsed_s,
                                          "val": {k: num(v) for k, v in e.val.items() if isinstance(v, (int, float))} if e.val else None}})

    def on_measure(msg: str) -> None:
        if stop.is_set():
            raise TrainingCancelled("cancelled while measuring")
        _emit({"kind": "measure", "message": msg})

    try:
        _emit({"kind": "status", "status": "preparing", "message": "loading and tokenizing the data"})
        if r.task == "csv":
            prep = prepare(kind=r.kind, base=r.base, csv=r.csv_path, text_column=r.text_column, label_column=r.label_column,
                           max_train=r.max_train)
        else:
            prep = prepare(r.task, kind=r.kind, base=r.base, max_train=r.max_train)
        if stop.is_set():
            raise TrainingCancelled("cancelled before training started")
        tcfg = default_train_config("csv" if r.task == "csv" else r.task, r.kind, **{"threads": CHILD_THREADS, **r.overrides})
        warnings = prep.data.extra.get("warnings", [])
        _emit({"kind": "status", "status": "training", "message": f"data: {prep.data.source}"
               + (f" (warning: {'; '.join(warnings)})" if warnings else "")})
        # A CSV model keeps a copy of its data beside it (train_and_save does it, as for the CLI).
        ckpt = train_and_save(prep, r.method, out, tcfg, budget=r.budget, name=r.name, command=r.command(),
                              callbacks=[on_event], stop=stop, n_latency_batches=r.latency_batches, progress=on_measure,
                              overwrite=replace is not None, expect=replace, if_taken="rename")
        moved = ckpt.path.name != out.name
        note = (f"; {out.name} appeared in the models folder while this trained, so it was saved as {ckpt.path.name}"
                if moved else "")
        _emit({"kind": "end", "status": "done", "message": f"saved {ckpt.path}{note}",
               "result": {"path": str(ckpt.path), "sweeps": ckpt.card.get("sweeps", {}),
                          "train_time_s": ckpt.card.get("train_time_s"), "renamed": moved, "warnings": warnings}})
    except TrainingCancelled as exc:
        _emit({"kind": "end", "status": "cancelled", "message": f"{exc}; nothing was saved"})
    except Exception as exc:  # shown on the page; the app keeps running
        _emit({"kind": "end", "status": "failed", "message": f"{type(exc).__name__}: "
               f"{str(exc).splitlines()[0][:400] if str(exc) else ''}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main())
