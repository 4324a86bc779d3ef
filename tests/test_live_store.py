"""The on-disk live-accuracy cache (app/ui/live_store.py): what a restarted server reuses, and everything
it must refuse to trust (issue 14: cold start of a classroom). Plus the catalog's one-look-per-folder
under sessions arriving together."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import torch

from app.ui import live_store
from app.ui.live_store import LiveStore

KEY = {"checkpoint": "c" * 64, "data": "d" * 64, "code": "e" * 64, "torch": "2.x"}
MASK = ((1, 0, 1), (0, 1, 1))
OTHER = ((1, 1, 1), (1, 1, 1))


class Counter:
    def __init__(self, value: float):
        self.value, self.calls = value, 0

    def __call__(self) -> float:
        self.calls += 1
        return self.value


def test_round_trip_a_second_store_reads_what_the_first_measured(tmp_path):
    measure = Counter(0.8125)
    assert LiveStore(KEY, tmp_path).get_or_measure(MASK, measure) == 0.8125
    again = LiveStore(KEY, tmp_path)  # a restarted server
    assert again.rejected is None and len(again) == 1
    assert again.get_or_measure(MASK, measure) == 0.8125 and measure.calls == 1
    assert again.get(OTHER) is None  # another head set is not confused with this one
    raw = json.loads(again.path.read_text())
    assert raw["key"] == KEY and raw["accuracies"] == {"101/011": 0.8125}


@pytest.mark.parametrize("field", ["checkpoint", "data", "code", "torch"])
def test_a_changed_key_measures_again(tmp_path, field):
    LiveStore(KEY, tmp_path).put(MASK, 0.5)
    measure = Counter(0.625)
    stale = LiveStore({**KEY, field: "other"}, tmp_path)
    assert stale.get_or_measure(MASK, measure) == 0.625 and measure.calls == 1


def test_a_file_whose_key_is_not_its_own_is_not_trusted(tmp_path):
    """A file copied over another key's file name (or edited to claim it) is ignored, then rewritten."""
    theirs = LiveStore({**KEY, "checkpoint": "x" * 64}, tmp_path)
    theirs.put(MASK, 0.25)
    mine_path = LiveStore(KEY, tmp_path).path
    mine_path.write_text(theirs.path.read_text())
    measure = Counter(0.75)
    mine = LiveStore(KEY, tmp_path)
    assert mine.rejected and "key" in mine.rejected
    assert mine.get_or_measure(MASK, measure) == 0.75 and measure.calls == 1
    assert json.loads(mine_path.read_text())["key"] == KEY  # rewritten under its own key


@pytest.mark.parametrize("body", [
    "",  # empty (a crash before the first byte on a filesystem without atomic rename)
    '{"format": "baa-live-accuracies", "key": {"checkpoint": "cc',  # truncated
    "[1, 2]",  # not an object
    json.dumps({"format": "something-else", "key": KEY, "accuracies": {"101/011": 0.5}}),
    json.dumps({"format": live_store.FORMAT, "key": KEY, "accuracies": {"101/011": 1.5}}),  # not a fraction
    json.dumps({"format": live_store.FORMAT, "key": KEY, "accuracies": {"101/011": "0.5"}}),  # a string
    json.dumps({"format": live_store.FORMAT, "key": KEY, "accuracies": {"101/011": True}}),
    json.dumps({"format": live_store.FORMAT, "key": KEY, "accuracies": {"1x1/011": 0.5}}),  # not a mask
    json.dumps({"format": live_store.FORMAT, "key": KEY, "accuracies": [0.5]}),
    '{"format": "baa-live-accuracies", "key": %s, "accuracies": {"101/011": NaN}}' % json.dumps(KEY),
], ids=["empty", "truncated", "list", "format", "above-1", "string", "bool", "mask", "not-a-dict", "nan"])
def test_a_corrupt_file_is_ignored_whole_and_measured_again(tmp_path, body):
    path = LiveStore(KEY, tmp_path).path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    store = LiveStore(KEY, tmp_path)
    assert store.rejected and len(store) == 0
    measure = Counter(0.5)
    assert store.get_or_measure(MASK, measure) == 0.5 and measure.calls == 1
    assert LiveStore(KEY, tmp_path).rejected is None  # the rewrite is sound


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary_file(tmp_path, monkeypatch):
    store = LiveStore(KEY, tmp_path)
    store.put(MASK, 0.5)
    before = store.path.read_text()

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    store.put(OTHER, 0.75)  # the server goes on: a failed write only loses the cache
    assert store.path.read_text() == before
    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]
    monkeypatch.undo()
    with pytest.raises(OSError):  # atomic_write itself reports the failure (and still leaves nothing behind)
        monkeypatch.setattr(os, "fsync", crash)
        live_store.atomic_write(store.path, "{}")
    assert store.path.read_text() == before
    assert [p.name for p in store.path.parent.iterdir()] == [store.path.name]


def test_threads_writing_together_leave_one_valid_file_with_every_entry(tmp_path):
    store = LiveStore(KEY, tmp_path)
    masks = [tuple(tuple((i >> (3 * r + c)) & 1 for c in range(3)) for r in range(2)) for i in range(1, 33)]
    threads = [threading.Thread(target=store.put, args=(m, i / 64)) for i, m in enumerate(masks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = LiveStore(KEY, tmp_path)
    assert again.rejected is None and len(again) == len(masks)
    assert all(again.get(m) == i / 64 for i, m in enumerate(masks))


def test_old_temporary_files_are_cleaned_young_ones_kept(tmp_path):
    old, young = tmp_path / ".a.json.1.tmp", tmp_path / ".b.json.2.tmp"
    old.write_text("x")
    young.write_text("y")
    os.utime(old, (1, 1))
    assert live_store.clean_leftovers(tmp_path) == 1
    assert not old.exists() and young.exists()


def test_the_key_follows_the_weights_the_sample_and_the_code(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "config.json").write_text("{}")
    first = live_store.checkpoint_digest(folder)
    assert live_store.checkpoint_digest(folder) == first
    (folder / "model.safetensors").write_bytes(b"weights-2")
    os.utime(folder / "model.safetensors", ns=(1, 10**18))  # a new stamp, as a rewrite gives
    assert live_store.checkpoint_digest(folder) != first

    ids, labels = [[5, 6, 7], [8, 9], [4]], torch.tensor([0, 1, 2])
    base = live_store.data_digest(ids, labels, [0, 2])
    assert live_store.data_digest(ids, labels, [0, 2]) == base
    assert live_store.data_digest(ids, labels, [0, 1]) != base  # another sample
    assert live_store.data_digest([[5, 6, 8], [8, 9], [4]], labels, [0, 2]) != base  # other tokens (data or tokenizer)
    assert live_store.data_digest(ids, torch.tensor([1, 1, 2]), [0, 2]) != base  # another label
    assert len(live_store.code_version()) == 64 and live_store.make_key(first, base)["code"] == live_store.code_version()


def test_the_app_measures_a_live_accuracy_once_across_a_restart_and_again_after_corruption(tmp_path, monkeypatch):
    """state.live_accuracy_cached: a 'restart' (Streamlit's caches cleared) reads the disk; a corrupt file is
    measured again, to the same number."""
    pytest.importorskip("streamlit")
    from app.ui import compute, state
    from tests.app_fixtures import build_model_dirs

    monkeypatch.setenv("BAA_CACHE_DIR", str(tmp_path / "cache"))
    path = build_model_dirs(tmp_path / "models")["pretrained"] / "tiny-baa"
    calls = []
    real = compute.live_accuracy

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(compute, "live_accuracy", counted)

    def restart():
        for cached in (state.live_accuracy_cached, state._live_store, state.eval_data, state.load_checkpoint_cached):
            cached.clear()

    def measure():
        version = Path(path / "model.safetensors").stat().st_mtime
        ckpt = state.load_checkpoint_cached(str(path), version)
        data = state.eval_data(str(path), version, ckpt)
        mask = tuple(tuple(int(v) for v in r) for r in ckpt.model.gate.hard(0.5).tolist())
        return state.live_accuracy_cached(str(path), version, mask, ckpt, data)

    restart()
    first = measure()
    assert len(calls) == 1
    files = list((tmp_path / "cache" / "live").glob("*.json"))
    assert len(files) == 1
    restart()
    assert measure() == first and len(calls) == 1  # read back, not measured
    files[0].write_text(files[0].read_text()[:-20])  # truncated
    restart()
    assert measure() == first and len(calls) == 2  # measured again, the same number
    restart()
    assert measure() == first and len(calls) == 2  # and the rewritten file is used


def test_sessions_arriving_together_look_at_each_model_folder_once(tmp_path, monkeypatch):
    """lru_cache alone let 30 sessions each build every checkpoint's skeleton at a cold start."""
    import time

    from app.ui import catalog
    from baa_core.io import checkpoint
    from tests.app_fixtures import build_model_dirs

    dirs = build_model_dirs(tmp_path)
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(dirs["pretrained"]))
    monkeypatch.setenv("BAA_USER_MODELS", str(dirs["user_models"]))
    looked = []
    real = checkpoint.check_files

    def slow(folder):
        looked.append(str(folder))
        time.sleep(0.02)  # long enough for the other threads to arrive while the first one looks
        return real(folder)

    monkeypatch.setattr(checkpoint, "check_files", slow)  # _look imports it when it runs
    catalog._look.cache_clear()
    threads = [threading.Thread(target=catalog.list_models) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert looked and len(looked) == len(set(looked))


def test_the_warm_up_starts_with_the_default_model_then_lowers_its_own_priority(tmp_path, monkeypatch):
    """A class arriving at a cold server waits for the model it opens, not for the sweeps of smaller models
    queued ahead of it; the rest of the warm-up runs niced, so their pages are drawn first."""
    pytest.importorskip("streamlit")
    from app.ui import catalog, state, warmup
    from tests.app_fixtures import build_model_dirs

    dirs = build_model_dirs(tmp_path)
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(dirs["pretrained"]))
    monkeypatch.setenv("BAA_USER_MODELS", str(dirs["user_models"]))
    listed = [e for e in catalog.list_models() if e.source == "shipped" and not e.problem]
    last_by_size = max(listed, key=lambda e: ((e.path / "model.safetensors").stat().st_size, e.name))
    monkeypatch.setattr(catalog, "default_entry", lambda entries: next(e for e in entries if e.id == last_by_size.id))
    loaded = []

    def record(path, version):
        loaded.append((path, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
        raise RuntimeError("not loaded in this test")  # the warm-up goes on to the next model

    monkeypatch.setattr(state, "load_checkpoint_cached", record)
    warm = threading.Thread(target=warmup._warm_caches)
    warm.start()
    warm.join()
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert loaded[0] == (str(last_by_size.path), before)  # first, at the server's priority
    assert len(loaded) > 1 and all(nice >= 10 for _, nice in loaded[1:])  # then niced (this thread only)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
