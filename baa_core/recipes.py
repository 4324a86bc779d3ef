"""End-to-end recipes shared by the CLI and the app: prepare data, train a method, measure, save.

``prepare`` turns a task name (or a CSV) into tokenized splits and a model config; ``fit`` runs a
method's phases; ``measure`` sweeps budgets on the test split (accuracy on the sliced model, CPU
latency of sliced vs dense); ``train_and_save`` writes a checkpoint whose card holds all of it.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .bench import latency_batches
from .checkpoint import Checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import DataError, EncodedDataset, TaskData, TextDataset, encode, load_csv, load_task, synthetic_vocab
from .encoder import BudgetedClassifier
from .methods import train_dense, train_gated, train_recovery, val_metrics, validation_importance
from .prune import posthoc_mask
from .sweep import sweep
from .tokenize import WordTokenizer

METHODS = ("dense", "baa", "static", "budgetformer")
# The Trainer phases each method runs, in order (TrainEvent.phase); static ones carry their budget.
PHASES = {"dense": ["dense"], "baa": ["dense", "budget", "hard"], "static": ["dense", "static@{b:g}", "hard@{b:g}"],
          "budgetformer": ["dense", "budgetformer"]}
DEFAULT_BUDGETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]

# Model shapes per task for the word-level model. Text models: FFN width = d, so attention is most of
# the FLOPs at AG News' real lengths (~65 tokens) and removing heads buys real time: the FLOP bound at
# half the heads is 1.56x, against 1.39x with ffn = 2d (`--d-ffn 256`; the README shows both rows).
# The embedding scale (ModelConfig.embedding_init_std) and the gated phases' learning rate are
# re-chosen on the validation split when training with `--select` (protocol.SELECTION_GRIDS); the
# values here are the starting points used without it. The synthetic task keeps std 1.0 (see
# ModelConfig.embedding_init_std: a training-speed reason, not a score).
_TEXT = dict(d_model=128, n_heads=8, n_layers=2, d_ffn=128, max_len=128, dropout=0.3)
WORD_PRESETS = {
    "synthetic": dict(d_model=64, n_heads=4, n_layers=2, d_ffn=128, max_len=16, dropout=0.0, embedding_init_std=1.0),
    "ag_news": _TEXT,
    "dbpedia14": _TEXT,
    "csv": _TEXT,
}
TRAIN_PRESETS = {
    ("synthetic", "word"): dict(batch_size=32, lr=5e-3, dense_epochs=6, dense_target_acc=0.995, budget_epochs=4,
                                hard_epochs=2, hard_fraction=0.5, warmup_steps=50, eval_every=100),
    # AG News word model: dropout, lr, weight decay and the dense epochs were chosen on validation
    # accuracy in a GPU grid (dropout 0.1-0.3, lr 1e-3/2e-3, weight decay 0.01/0.1, 1-6 epochs): the
    # dense model peaks on validation after 2 epochs. adapt_lr (the gated phases' rate) is a starting
    # point; `--select` re-chooses it on validation.
    ("ag_news", "word"): dict(batch_size=64, lr=1e-3, adapt_lr=3e-4, dense_epochs=2, budget_epochs=2, hard_epochs=1,
                              warmup_steps=100, bf_epochs=3),
    ("dbpedia14", "word"): dict(batch_size=64, lr=1e-3, adapt_lr=3e-4, dense_epochs=2, budget_epochs=2, hard_epochs=1,
                                warmup_steps=100, bf_epochs=3),
    ("csv", "word"): dict(batch_size=32, lr=1e-3, adapt_lr=3e-4, dense_epochs=4, budget_epochs=2, hard_epochs=1, warmup_steps=50),
    ("*", "bert"): dict(batch_size=32, lr=5e-5, gate_lr=5e-2, dense_epochs=3, budget_epochs=2, hard_epochs=1,
                        warmup_steps=100, weight_decay=0.01, bf_epochs=3),
}


def default_train_config(task: str, kind: str = "word", **overrides) -> TrainConfig:
    preset = TRAIN_PRESETS.get((task, kind)) or TRAIN_PRESETS.get(("*", kind)) or {}
    return TrainConfig(**{**preset, **overrides})


@dataclass
class Prepared:
    data: TaskData
    tokenizer: object
    train: EncodedDataset
    val: EncodedDataset
    test: EncodedDataset
    model_config: ModelConfig
    kind: str = "word"
    base: str | None = None
    init_model: BudgetedClassifier | None = None  # pretrained weights to start from (BERT)

    def new_model(self) -> BudgetedClassifier:
        if self.init_model is not None:
            return copy.deepcopy(self.init_model)
        return BudgetedClassifier(self.model_config)

    def without_test(self) -> "Prepared":
        """The same splits with the test split emptied: what model selection is allowed to see."""
        empty = EncodedDataset([], torch.empty(0, dtype=torch.long), self.tokenizer.pad_id)
        data = dataclasses.replace(self.data, test=TextDataset([], [], list(self.data.label_names), "test (withheld)"))
        return dataclasses.replace(self, data=data, test=empty)


def prepare(task: str = "synthetic", *, kind: str = "word", base: str | None = None, data_dir=None, csv: str | Path | None = None,
            text_column: str = "text", label_column: str = "label", seed: int = 0, max_train: int | None = None,
            max_test: int | None = None, max_len: int | None = None, vocab_size: int = 20000, d_ffn: int | None = None,
            checkpoint: Checkpoint | None = None, splits: tuple[str, ...] = ("train", "val", "test")) -> Prepared:
    """Load a task's splits, build (or take the checkpoint's) tokenizer, and encode ``splits``
    (the others stay empty: evaluating a checkpoint needs only its test split)."""
    if csv is not None:
        data = load_csv(csv, text_column, label_column)
    else:
        data = load_task(task, data_dir, seed=seed, max_train=max_train, max_test=max_test)
    n_classes, labels = len(data.label_names), list(data.label_names)
    init = None
    if checkpoint is not None:
        tokenizer, mcfg = checkpoint.tokenizer, checkpoint.config
        kind, base = checkpoint.card.get("model_kind", "word"), checkpoint.card.get("base_model")
        if mcfg.n_classes != n_classes:
            raise ValueError(f"{checkpoint.name} predicts {mcfg.n_classes} classes but this data has {n_classes}")
    elif kind == "word":
        shape = dict(WORD_PRESETS.get("csv" if csv is not None else task, WORD_PRESETS["csv"]))
        if max_len:
            shape["max_len"] = max_len
        if d_ffn:
            shape["d_ffn"] = d_ffn
        if task == "synthetic" and csv is None:
            tokenizer = WordTokenizer(synthetic_vocab(), lowercase=False)
        else:
            tokenizer = WordTokenizer.build(data.train.texts, max_size=vocab_size, min_freq=2)
        mcfg = ModelConfig(vocab_size=len(tokenizer), n_classes=n_classes, labels=labels, **shape)
    elif kind == "bert":
        from .bert import load_pretrained

        if d_ffn:
            raise ValueError("--d-ffn shapes the word-level model; a BERT-family model keeps its own FFN width")
        init, tokenizer = load_pretrained(base, n_classes, labels)
        if max_len:
            init.config.max_len = min(max_len, init.config.max_len)
        mcfg = init.config
    else:
        raise ValueError(f"model kind must be 'word' or 'bert', not {kind!r}")
    empty = EncodedDataset([], torch.empty(0, dtype=torch.long), tokenizer.pad_id)
    train, val, test = (encode(d, tokenizer, mcfg.max_len) if name in splits else empty
                        for name, d in (("train", data.train), ("val", data.val), ("test", data.test)))
    return Prepared(data, tokenizer, train, val, test, mcfg, kind, base, init)


@dataclass
class FitResult:
    model: BudgetedClassifier
    dense: BudgetedClassifier
    train_time_s: float
    history: list = field(default_factory=list)


def fit_dense(prep: Prepared, tcfg: TrainConfig, callbacks=(), stop=None) -> BudgetedClassifier:
    return train_dense(prep.model_config, prep.train, tcfg, model=prep.new_model(), callbacks=list(callbacks), stop=stop,
                       evaluate=val_metrics(prep.val, device=tcfg.device), eval_every=tcfg.eval_every)


def kept_csv_args(card: dict, folder: str | Path) -> dict:
    """``prepare`` arguments for a model trained on a CSV, from the copy its card names beside it
    (the app's Train page keeps one); DataError when there is none."""
    name = card.get("csv_file")
    path = Path(folder) / name if name else None
    if path is None or not path.exists():
        raise DataError("the CSV this model was trained on is not stored with it"
                        + (f" ({name} is missing)" if name else ""))
    return {"csv": str(path), "text_column": card.get("text_column", "text"), "label_column": card.get("label_column", "label")}


def fit(prep: Prepared, method: str, tcfg: TrainConfig, *, budget: float | None = None, callbacks=(), stop=None,
        dense: BudgetedClassifier | None = None) -> FitResult:
    """Train ``method`` ("dense", "baa", "static" at ``budget``, "budgetformer"), from ``dense`` if given."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "static" and (budget is None or not 0.0 < budget <= 1.0):
        raise ValueError(f"the static baseline is trained for one budget in (0, 1]; got budget={budget}")
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    start = time.perf_counter()
    history: list = []
    cbs = [*callbacks, history.append]
    if dense is None:
        dense = fit_dense(prep, tcfg, cbs, stop)
    kw = dict(callbacks=cbs, stop=stop)
    if method == "dense":
        model = dense
    elif method == "baa":
        model = train_gated(dense, prep.train, tcfg, evaluate=val_metrics(prep.val, (0.25, 0.5), tcfg.device), **kw)
    elif method == "static":
        model = train_gated(dense, prep.train, tcfg, budget=budget, **kw)
    else:
        from .budgetformer import train_budgetformer

        model = train_budgetformer(dense, prep.train, tcfg, val=prep.val, **kw)
    return FitResult(model.cpu().eval(), dense.cpu().eval(), time.perf_counter() - start, history)


def measure(prep: Prepared, model: BudgetedClassifier, budgets=DEFAULT_BUDGETS, *, method: str = "baa", threads: int = 1,
            n_latency_batches: int = 16, batch_size: int = 8, device: str = "cpu", progress=None, **kw) -> list[dict]:
    """Sweep ``budgets`` on the test split: accuracy (with its interval), cost, CPU latency of sliced vs
    dense (with the interval of the speedup), FLOP bound."""
    batches = latency_batches(prep.test, batch_size, n_latency_batches) if n_latency_batches else None
    return sweep(model, prep.test, budgets, method=method, latency_batches=batches, threads=threads, device=device,
                 progress=progress, **kw)


def environment() -> dict:
    return {"torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpu_threads_available": torch.get_num_threads()}


PROTOCOL = ("accuracy on the test split (touched once per reported row) with the hard operating point (top-k heads, "
            ">=1 per layer), computed by the sliced model; accuracy_ci: 95% bootstrap interval over test examples "
            "(2,000 resamples, seed 0; for seed-averaged rows, of the seed-mean accuracy); latency: median ms per batch "
            "of 8 random test examples at their real lengths, CPU, fixed threads, each head layout timed in pairs beside "
            "dense over shuffled rounds; speedup = median of per-round ratios, speedup_ci = 95% bootstrap interval of "
            "that median, speedup_spread = 2.5-97.5 percentiles of the per-round ratios")


def make_card(prep: Prepared, *, name: str, method: str, tcfg: TrainConfig, sweeps: dict, command: str,
              train_time_s: float | None, notes: str = "", extra: dict | None = None) -> dict:
    from .protocol import trained_on

    cfg = prep.model_config
    return {
        "name": name,
        "task": prep.data.task,
        "method": method,
        "model_kind": prep.kind,
        "base_model": prep.base,
        "architecture": f"{cfg.n_layers} layers x {cfg.n_heads} heads, d={cfg.d_model}, ffn={cfg.d_ffn}, max_len={cfg.max_len}",
        "labels": list(prep.data.label_names),
        "data": prep.data.source,
        "sizes": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test), **prep.data.extra},
        "protocol": PROTOCOL,
        "train_config": tcfg.to_dict(),
        "embedding_init_std": cfg.embedding_init_std,
        "train_time_s": None if train_time_s is None else round(train_time_s, 1),
        "sweeps": sweeps,
        "command": command,
        "commands": {"train": [command]},
        "trained_on": trained_on(tcfg.device),
        "created": _dt.date.today().isoformat(),
        "environment": environment(),
        "notes": notes,
        **(extra or {}),
    }


def strip_per_example(sweeps: dict) -> dict:
    """Sweeps without the per-example ``correct`` field (kept in results files, not in cards)."""
    return {m: [{k: v for k, v in r.items() if k != "correct"} for r in rows] for m, rows in sweeps.items()}


def train_and_save(prep: Prepared, method: str, out: str | Path, tcfg: TrainConfig, *, budget: float | None = None,
                   budgets=DEFAULT_BUDGETS, name: str | None = None, command: str = "", callbacks=(), stop=None,
                   threads: int = 1, n_latency_batches: int = 16, progress=None, card_extra: dict | None = None,
                   select: bool = False, controls: bool = False) -> Checkpoint:
    """Train one method, sweep it on the test split, and save it with its card (atomically).

    ``select``: re-choose the recipe's open hyperparameters on the validation split first
    (``protocol.select_and_fit``). ``controls``: also train the dense model with the method's epochs
    and the no-attention model (``protocol``); the no-attention evaluation and chance are always in."""
    from .protocol import (after_warm_start_epochs, chance, continue_dense, controls_card, differences, method_epochs,
                           no_attention_mask, select_and_fit, selection_card, selection_grid, train_no_attention)

    grid = selection_grid(prep.data.task, prep.kind) if select else ()
    start = time.perf_counter()
    if select:
        chosen = select_and_fit(prep, method, tcfg, grid, budget=budget, callbacks=callbacks, stop=stop, log=progress)
        prep, tcfg, history = chosen.prep, chosen.tcfg, chosen.history
        dense_model, trained = chosen.dense, chosen.model if chosen.model is not None else chosen.dense
        records = [chosen.record]
    else:
        result = fit(prep, method, tcfg, budget=budget, callbacks=callbacks, stop=stop)
        dense_model, trained, history, records = result.dense, result.model, result.history, []
    train_time_s = time.perf_counter() - start
    dtype = storage_dtype(prep)
    model = round_weights(trained, dtype)
    ones = torch.ones(model.config.n_layers, model.config.n_heads)
    zeros = no_attention_mask(model.config)
    row_kw = dict(threads=threads, keep_correct=True)
    sweeps = {}
    if method == "baa":
        sweeps["baa"] = measure(prep, model, budgets, n_latency_batches=n_latency_batches, progress=progress, **row_kw)
    elif method == "static":
        sweeps["static"] = measure(prep, model, [budget], method="static", n_latency_batches=n_latency_batches,
                                   progress=progress, **row_kw)
    extra = dict(card_extra or {})
    if method == "budgetformer":
        from .analysis import budgetformer_analysis, per_example_loss
        from .budgetformer import controller_outputs, summarize_outputs
        from .evaluate import bootstrap_ci, pack_correct

        outputs = controller_outputs(model, prep.test, device=tcfg.device)
        summary = summarize_outputs(model, outputs, prep.test)
        hits = outputs["pred"] == outputs["label"]
        summary.update(accuracy_ci=list(bootstrap_ci(hits.double())), correct=pack_correct(hits))
        sweeps["budgetformer"] = [summary]
        complexity = per_example_loss(dense_model, prep.test, device=tcfg.device)
        extra["analysis"] = budgetformer_analysis(model, prep.test, list(prep.data.label_names), history,
                                                  device=tcfg.device, latency_examples=n_latency_batches * 8,
                                                  threads=threads, outputs=outputs, complexity=complexity)
        model.cpu()
    sweeps["dense"] = measure(prep, dense_model, [1.0], method="dense", mask_for=lambda b: ones, n_latency_batches=0, **row_kw)
    control_start = time.perf_counter()
    if controls and method != "dense":
        more = after_warm_start_epochs(method, tcfg)
        equal = round_weights(continue_dense(dense_model.to(tcfg.device), prep.train, tcfg, more, callbacks, stop), dtype)
        sweeps["dense_equal"] = measure(prep, equal, [1.0], method="dense_equal", mask_for=lambda b: ones,
                                        n_latency_batches=0, **row_kw)
    if controls:
        blind = round_weights(train_no_attention(prep, tcfg, method_epochs(method, tcfg), callbacks, stop), dtype)
        sweeps["no_attention"] = measure(prep, blind, [1.0], method="no_attention", mask_for=lambda b: zeros,
                                         n_latency_batches=0, **row_kw)
    sweeps["no_attention_eval"] = measure(prep, model, [1.0], method="no_attention_eval", mask_for=lambda b: zeros,
                                          n_latency_batches=0, **row_kw)
    epochs = {m: method_epochs(m if m != "no_attention_eval" else method, tcfg) for m in sweeps}
    for m, rows in sweeps.items():
        for r in rows:
            r.update(seed=tcfg.seed, epochs=epochs[m])
    extra.update(
        selection=selection_card(grid, records, method),
        controls=controls_card(sweeps, chance(prep.data), epochs),
        differences=differences({m: [rows] for m, rows in sweeps.items()}),
        epochs=epochs,
    )
    if controls:
        extra["controls_train_time_s"] = round(time.perf_counter() - control_start, 1)
    name = name or Path(out).name
    card = make_card(prep, name=name, method=method, tcfg=tcfg, sweeps=strip_per_example(sweeps), command=command,
                     train_time_s=train_time_s, extra=extra)
    from .bert import external_spec

    save_checkpoint(out, model, prep.tokenizer, card, dtype=dtype, **external_spec(prep))
    return Checkpoint(model, prep.tokenizer, card, Path(out))


def storage_dtype(prep: Prepared) -> str:
    """Text models are stored in float16 (half the size; accuracy is measured after rounding, see
    ``round_weights``); the tiny synthetic model keeps float32."""
    return "float32" if prep.data.task == "synthetic" else "float16"


@torch.no_grad()
def round_weights(model: BudgetedClassifier, dtype: str) -> BudgetedClassifier:
    """Round floating-point weights to ``dtype`` and back, in place: the model that gets measured is
    then exactly the one that loads from a checkpoint stored in that dtype."""
    target = getattr(torch, dtype)
    for p in model.state_dict().values():
        if p.is_floating_point():
            p.copy_(p.to(target).to(p.dtype))
    return model
