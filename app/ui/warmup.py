"""What the server does once, before the first page: clean leftovers, check the Hub, set torch's threads,
and warm the shared caches in the background (the default model first, then the small shipped ones).

It sits above the page helpers (``state``, ``live_panel``, ``adaptive_panels``) because it fills their
caches; none of them imports it, so the helpers import only downward.
"""
from __future__ import annotations

import atexit
import logging
import threading

import streamlit as st

from baa_core.measure.operating_points import operating_points

from . import adaptive_panels, catalog, compute, live_panel, live_store, state


@st.cache_resource(show_spinner=False)
def server_start() -> dict:
    """Once per server process, before the first page: clean the leftovers of interrupted saves and
    uploads (app/ui/uploads.py), switch huggingface_hub to offline mode when the Hub is unreachable
    (a model that needs it then fails in one quick sentence instead of after retries), set torch's
    threads for a shared server, and start warming the caches (``_warm_caches``)."""
    from baa_core.io.sources import go_offline_if_unreachable

    from . import uploads

    import os

    import torch

    removed = uploads.clean_leftovers(catalog.user_models_dir())
    live_store.clean_leftovers()
    offline = go_offline_if_unreachable()
    # Many sessions share this process: each runs its own torch work in its own thread, so one thread per
    # operation keeps two cores busy without the threads of one operation waiting on each other
    # (measured timings always state their threads). BAA_APP_TORCH_THREADS=0 keeps torch's default.
    threads = int(os.environ.get("BAA_APP_TORCH_THREADS", "1") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    warm = threading.Thread(target=_warm_caches, name=WARM_THREAD, daemon=True)
    warm.start()
    atexit.register(_stop_warming, warm)
    return {"removed": removed, "offline": offline, "warm": warm}


WARM_THREAD = "baa-warm-caches"
_STOP = threading.Event()  # set at exit: the warm-up stops between two pieces of work
WARM_MAX_BYTES = 10 * 2**20  # models this small (word-level, synthetic) get their data and live sweep warmed too


class _QuietWarmThread(logging.Filter):
    """Streamlit warns once per cached call made outside a session ("missing ScriptRunContext");
    from the warm-up thread that is expected, so it is not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != WARM_THREAD


def _stop_warming(warm: threading.Thread, timeout_s: float = 30.0) -> None:
    """At interpreter exit: let the warm-up finish the piece of torch work it is in, and stop. A daemon
    thread still inside a torch op while the interpreter finalizes aborts the process ("terminate called
    without an active exception", exit status 134), e.g. a test file that ends seconds after the app
    started."""
    _STOP.set()
    warm.join(timeout_s)


def _warm_caches() -> None:
    """Fill the shared caches once, in the background, before sessions ask: every shipped model that
    loads without the network (smallest first), its evaluation data and, where the explorer computes
    it by itself, the live accuracy of every slider stop. Sessions that arrive meanwhile wait for the
    value being computed (Streamlit computes each cached value once) instead of computing it again."""
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).addFilter(_QuietWarmThread())
    listed = catalog.list_models()
    small = [e for e in listed if e.source == "shipped" and not e.problem and not e.needs
             and (e.path / "model.safetensors").stat().st_size <= WARM_MAX_BYTES]
    small.sort(key=lambda e: (e.path / "model.safetensors").stat().st_size)
    first = listed[:1] if listed and not listed[0].problem and not listed[0].needs else []  # what the Overview draws
    # The model a new session opens (catalog.default_entry) first: a class arriving together waits for it
    # alone, not for the other models' sweeps queued ahead of it.
    default = catalog.default_entry([e for e in listed if not e.problem and not e.needs])
    order = ([default] if default is not None else []) + small + first
    for entry in [e for i, e in enumerate(order) if e not in order[:i]]:
        if _STOP.is_set():
            return
        if entry is not default:
            _lower_priority_of_this_thread()
        try:
            path, version = str(entry.path), entry.version
            ckpt = state.load_checkpoint_cached(path, version)
            slides = compute.has_budget(ckpt.model)
            if entry not in small or state.data_unavailable_reason(ckpt.typed_card, entry.path) is not None:
                if slides:  # the Overview's picture of this model (no data)
                    live_panel.points_cached(path, version, False, ckpt, None)
                continue
            data = state.eval_data(path, version, ckpt)
            if adaptive_panels.applies(ckpt.model):
                if data.live_accuracy_auto:  # the explorer's live sample at every budget its panel stops at
                    for row in (ckpt.typed_card.as_dict().get("sweeps") or {}).get("adaptive") or []:
                        if _STOP.is_set():
                            return
                        if row.get("budget") is not None:
                            adaptive_panels.live_point(path, version, float(row["budget"]), ckpt, data)
                continue
            if slides and data.live_accuracy_auto:
                # Every operating point's live accuracy, from the top down: a page measuring the same points
                # from the bottom up meets this thread half way, the two on two cores (each computed once).
                for p in reversed(operating_points(ckpt.model, ckpt.typed_card.as_dict())):
                    if _STOP.is_set():
                        return
                    state.live_accuracy_cached(path, version, tuple(tuple(int(v) for v in r) for r in p.mask.tolist()), ckpt, data)
                live_panel.points_cached(path, version, True, ckpt, data)
        except Exception:  # a model that cannot be warmed is loaded (and its fault shown) when a page asks for it
            continue


def _lower_priority_of_this_thread(niceness: int = 10) -> None:
    """Once the default model is warm, the warm-up goes on with the other models at a lower CPU priority
    (Linux: a thread's own nice value), so the pages of a class arriving meanwhile are drawn first."""
    import os

    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), niceness))
    except (AttributeError, OSError):  # not Linux, or not allowed: the warm-up just runs at the server's priority
        pass
