"""Budgets for a model you already have, with no training: rank heads, sweep, save.

``run_posthoc`` takes a Hugging Face classifier (Hub name or folder, any supported family, its own
head and labels) or a dense checkpoint of this project, and a sample of the user's data (a task or
a CSV with text and label columns):

1. head importance = sum over a sample of held-out rows of |dLoss/dg_lh| at g = 1 (Michel et al.,
   2019). No training happens, so the sample is drawn from the validation split first and then the
   training split (the model never saw either here); the test split is never used for ranking;
2. the post-hoc sweep: at each budget the top round(b * L * H) heads (>= 1 per layer) are kept and
   the *sliced* model is evaluated on the test split, and timed beside the dense model on CPU;
3. a checkpoint folder whose gate is that ranking (``gating="posthoc"``), so every budget works in
   the app and the CLI, with a card holding the sweep, the importance and where the data came from.

Weights are stored in float32: the predictions stay the model's own, bit for bit.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from .checkpoint import Checkpoint, save_checkpoint
from .config import TrainConfig
from .data import TextDataset, encode
from .methods import validation_importance, with_gating
from .recipes import DEFAULT_BUDGETS, Prepared, make_card, measure, prepare

ALBERT_NOTE = ("ALBERT's layer weights are shared; they were unshared at load, so each of its layers holds its own copy "
               "and is gated and sliced on its own (same predictions with every head on, more memory)")


def importance_sample(prep: Prepared, n: int) -> TextDataset:
    """Up to ``n`` held-out rows for ranking: the validation split, then the training split."""
    val, train = prep.data.val, prep.data.train
    rows = list(range(min(n, len(val))))
    pool = val.subset(rows)
    if len(pool) < n and len(train):
        extra = train.subset(range(min(n - len(pool), len(train))))
        pool = TextDataset(pool.texts + extra.texts, pool.labels + extra.labels, pool.label_names, "val+train")
    return pool


def prepare_posthoc(model: str | Checkpoint, *, task: str = "synthetic", csv=None, text_column: str = "text",
                    label_column: str = "label", data_dir=None, max_test: int | None = None) -> Prepared:
    """``prepare`` for a model with a trained head: a loaded Checkpoint (the app's), a checkpoint folder of this
    project, or a Hugging Face classifier by name or folder."""
    from .checkpoint import load_checkpoint
    from .families import ModelSourceError

    data = dict(csv=csv, text_column=text_column, label_column=label_column, data_dir=data_dir, max_test=max_test,
                splits=("test",))
    is_folder = not isinstance(model, Checkpoint) and (Path(model) / "card.json").exists() and (Path(model) / "config.json").exists()
    if isinstance(model, Checkpoint) or is_folder:
        ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(model)
        if ckpt.model.is_sliced or ckpt.model.controllers is not None:
            raise ValueError(f"{ckpt.name} is {'sliced' if ckpt.model.is_sliced else 'a BudgetFormer model'}; post-hoc "
                             f"ranking needs a full model with a fixed head set per budget")
        prep = prepare(task, checkpoint=ckpt, **data)
        prep.init_model = ckpt.model
        return prep
    prep = prepare(task, kind="hf", base=model, **data)
    if not prep.trained_head:
        raise ModelSourceError(f"{model} has no trained classification head (a bare encoder), so there is nothing to rank "
                               f"without training; fine-tune it first: train --kind hf --base {model}")
    return prep


def run_posthoc(prep: Prepared, out: str | Path, *, budgets=DEFAULT_BUDGETS, importance_examples: int = 512,
                threads: int = 1, n_latency_batches: int = 16, device: str = "cpu", command: str = "",
                name: str | None = None, progress=None, keep_csv: tuple[str, str, str] | None = None) -> Checkpoint:
    """Rank the heads of ``prep.init_model`` on a held-out sample, sweep ``budgets`` on the test split, save to ``out``.

    ``keep_csv`` = (path, text column, label column) stores the CSV beside the model, so the app and
    ``sweep`` can evaluate it again."""
    start = time.perf_counter()
    dense = prep.init_model.cpu().eval()
    sample = importance_sample(prep, importance_examples)
    if not len(sample):
        raise ValueError("there are no held-out rows to rank the heads on")
    encoded = encode(sample, prep.tokenizer, prep.model_config.max_len)
    importance = validation_importance(dense.to(device), encoded, device).cpu()
    dense.cpu()
    rank_s = time.perf_counter() - start
    if progress:
        progress(f"ranked {prep.model_config.total_heads} heads on {len(sample)} held-out rows in {rank_s:.1f} s")
    model = with_gating(dense, "posthoc")
    with torch.no_grad():
        model.gate.importance.copy_(importance)
    model.eval()
    sweeps = {"posthoc": measure(prep, model, budgets, method="posthoc", threads=threads, device=device,
                                 n_latency_batches=n_latency_batches, progress=progress)}
    ones = torch.ones(prep.model_config.n_layers, prep.model_config.n_heads)
    sweeps["dense"] = measure(prep, model, [1.0], method="dense", mask_for=lambda b: ones, threads=threads, device=device,
                              n_latency_batches=0)
    cfg = prep.model_config
    notes = ["post-hoc: no training; heads ranked by |dLoss/dgate| at all gates open on held-out rows, then cut to each budget"]
    if cfg.family == "albert":
        notes.append(ALBERT_NOTE)
    extra = {"posthoc_importance": importance.tolist(), "importance_examples": len(sample),
             "importance_data": "the validation split, then training rows (no training happened)",
             "trained_head": True, **({"label_alignment": prep.data.extra["label_alignment"]}
                                      if "label_alignment" in prep.data.extra else {})}
    if keep_csv is not None:
        extra.update(csv_file="data.csv", text_column=keep_csv[1], label_column=keep_csv[2])
    card = make_card(prep, name=name or Path(out).name, method="posthoc", tcfg=TrainConfig(dense_epochs=0, budget_epochs=0,
                     hard_epochs=0, device=device), sweeps=sweeps, command=command, train_time_s=None,
                     notes="; ".join(notes), extra=extra)
    card["ranking_time_s"] = round(rank_s, 2)
    card["sizes"] = {"importance": len(sample), "test": len(prep.test), **prep.data.extra}
    save_checkpoint(out, model, prep.tokenizer, card, dtype="float32")
    if keep_csv is not None:
        tmp = Path(out) / ".data.csv.partial"
        shutil.copyfile(keep_csv[0], tmp)
        tmp.replace(Path(out) / "data.csv")
    return Checkpoint(model, prep.tokenizer, card, Path(out))
