"""The pipeline shared by the CLI and the app: prepare data, train a method, measure, save; compare
methods; time and analyse a saved checkpoint.

``prepare`` turns a task name (or a CSV) into tokenized splits and a model config; ``fit`` runs a
method's phases (asking the ``METHODS`` registry); ``measure`` sweeps budgets on the test split
(accuracy on the sliced model, CPU latency of sliced vs dense); ``train_and_save`` writes a
checkpoint whose card holds all of it; ``compare`` runs every method on one dataset over seeds;
``posthoc_and_save`` gives a model you already have (a Hugging Face classifier) budgets with no training.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .io.checkpoint import Checkpoint, check_target, read_card, save_checkpoint, update_card
from .io.data import (SYNTH_MAX_MARKS, DataError, EncodedDataset, TaskData, TextDataset, encode, iterate_batches, load_csv,
                      load_task, synthetic_vocab)
from .io.hf_classifier import ModelSourceError, align_labels, load_classifier
from .io.pretrained import external_spec, load_pretrained
from .io.tokenizers import WordTokenizer
from .measure.analysis import budgetformer_analysis
from .measure.cost import flop_speedup
from .measure.evaluate import bootstrap_ci, pack_correct, validation_hook
from .measure.latency import compare_latency, latency_batches, padded_lengths
from .measure.perinput import controller_outputs, summarize_outputs
from .measure.sweep import sweep
from .methods import TrainConfig, get_method, operating_point
from .methods.posthoc import head_importance, posthoc_mask
from .model.config import ModelConfig
from .model.encoder import BudgetedClassifier
from .model.rng import seeded_rng
from .model.surgery import all_heads_mask, layout_mask, slice_heads, with_gating
from .methods.no_attention import no_attention_mask
from .protocol import (aggregate_rows, chance, continue_dense, controls_card, differences, method_epochs, select_and_fit,
                       selection_card, selection_grid, train_no_attention, trained_on)
from .train import TerminalProgress, run_method

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
    # 1 to 4 marks of two kinds (issue 10): 8 heads per block, so one head per block costs 0.125 and
    # inputs that need both reading patterns have room to take more heads than those that need one.
    "synthetic_marks": dict(d_model=64, n_heads=8, n_layers=2, d_ffn=128, max_len=16, dropout=0.0, embedding_init_std=1.0),
    "ag_news": _TEXT,
    "dbpedia14": _TEXT,
    "csv": _TEXT,
}
TRAIN_PRESETS = {
    ("synthetic_marks", "word"): dict(batch_size=32, lr=5e-3, dense_epochs=6, dense_target_acc=0.995, budget_epochs=4,
                                      hard_epochs=2, hard_fraction=0.5, warmup_steps=50, eval_every=100, ad_epochs=4,
                                      # chosen on its validation split, 10 seeds (the card's selection)
                                      ad_hard_epochs=2, ad_difficulty_weight=5.0),
    ("synthetic", "word"): dict(batch_size=32, lr=5e-3, dense_epochs=6, dense_target_acc=0.995, budget_epochs=4,
                                hard_epochs=2, hard_fraction=0.5, warmup_steps=50, eval_every=100),
    # AG News word model: dropout, lr, weight decay and the dense epochs were chosen on validation
    # accuracy in a GPU grid (dropout 0.1-0.3, lr 1e-3/2e-3, weight decay 0.01/0.1, 1-6 epochs): the
    # dense model peaks on validation after 2 epochs. adapt_lr (the gated phases' rate) is a starting
    # point; `--select` re-chooses it on validation.
    ("ag_news", "word"): dict(batch_size=64, lr=1e-3, adapt_lr=3e-4, dense_epochs=2, budget_epochs=2, hard_epochs=1,
                              warmup_steps=100, bf_epochs=3, ad_epochs=2, ad_hard_epochs=1),
    ("dbpedia14", "word"): dict(batch_size=64, lr=1e-3, adapt_lr=3e-4, dense_epochs=2, budget_epochs=2, hard_epochs=1,
                                warmup_steps=100, bf_epochs=3, ad_epochs=2, ad_hard_epochs=1),
    ("csv", "word"): dict(batch_size=32, lr=1e-3, adapt_lr=3e-4, dense_epochs=4, budget_epochs=2, hard_epochs=1, warmup_steps=50),
    ("*", "bert"): dict(batch_size=32, lr=5e-5, gate_lr=5e-2, dense_epochs=3, budget_epochs=2, hard_epochs=1,
                        warmup_steps=100, weight_decay=0.01, bf_epochs=3, ad_epochs=2, ad_hard_epochs=1),
}
# Any Hugging Face family with its own head (issue 13): BERT's fine-tuning recipe. A model whose head
# is already trained skips the dense warm start (the CLI sets dense_epochs=0 unless told otherwise).
TRAIN_PRESETS[("*", "hf")] = TRAIN_PRESETS[("*", "bert")]


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
    csv: dict | None = None  # a CSV's path and columns: kept beside the model it trains (``kept_csv_args``)
    trained_head: bool = False  # init_model came with a trained classifier (kind "hf" with its own labels, a checkpoint)

    def new_model(self, seed: int | None = None) -> BudgetedClassifier:
        """The network training starts from: a copy of the pretrained one (a classifier it did not come
        with drawn afresh from ``seed``), or a fresh network initialised from ``seed``. Seeded here because
        torch seeds its global generator differently in every process: an unseeded init made the same
        seed train a different model each run. Torch's global generator is left as it was."""
        if self.init_model is not None:
            model = copy.deepcopy(self.init_model)
            if seed is not None and not self.trained_head:
                with seeded_rng(seed):
                    model.reset_classifier()
            return model
        with seeded_rng(seed):
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
        data = load_csv(csv, text_column, label_column, max_train=max_train, max_test=max_test)
    else:
        data = load_task(task, data_dir, seed=seed, max_train=max_train, max_test=max_test)
    init, trained_head = None, False
    if kind == "hf" and checkpoint is None:  # a Hugging Face classifier: the data's labels follow its head
        with seeded_rng(seed):  # a head for the data's labels, when the model has none of its own, is drawn fresh
            loaded = load_classifier(base, fresh_labels=list(data.label_names))
        trained_head, base = loaded.trained_head, loaded.source
        data = align_labels(data, loaded.labels) if trained_head else data
    if checkpoint is not None and checkpoint.card.get("model_kind") == "hf":
        data = align_labels(data, checkpoint.config.labels)
    n_classes, labels = len(data.label_names), list(data.label_names)
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
        if task in SYNTH_MAX_MARKS and csv is None:
            tokenizer = WordTokenizer(synthetic_vocab(task), lowercase=False)
        else:
            tokenizer = WordTokenizer.build(data.train.texts, max_size=vocab_size, min_freq=2)
        mcfg = ModelConfig(vocab_size=len(tokenizer), n_classes=n_classes, labels=labels, **shape)
    elif d_ffn:
        raise ValueError("--d-ffn shapes the word-level model; a pretrained model keeps its own FFN width")
    elif kind == "bert":
        with seeded_rng(seed):  # the fresh classifier head
            init, tokenizer = load_pretrained(base, n_classes, labels)
        if max_len:
            init.config.max_len = min(max_len, init.config.max_len)
        mcfg = init.config
    elif kind == "hf":
        init, tokenizer, mcfg = loaded.model, loaded.tokenizer, loaded.model.config
    else:
        raise ValueError(f"model kind must be 'word', 'bert' or 'hf', not {kind!r}")
    empty = EncodedDataset([], torch.empty(0, dtype=torch.long), tokenizer.pad_id)
    train, val, test = (encode(d, tokenizer, mcfg.max_len) if name in splits else empty
                        for name, d in (("train", data.train), ("val", data.val), ("test", data.test)))
    kept = None if csv is None else {"csv": str(csv), "text_column": text_column, "label_column": label_column}
    return Prepared(data, tokenizer, train, val, test, mcfg, kind, base, init, kept, trained_head)


@dataclass
class FitResult:
    model: BudgetedClassifier
    dense: BudgetedClassifier
    train_time_s: float
    history: list = field(default_factory=list)


def fit_dense(prep: Prepared, tcfg: TrainConfig, callbacks=(), stop=None) -> BudgetedClassifier:
    """The dense warm start (and the dense baseline): the method ``dense`` from a fresh network."""
    dense = get_method("dense")
    return run_method(dense, prep.new_model(tcfg.seed), prep.train, tcfg, callbacks=callbacks, stop=stop,
                      validate=validation_hook(dense, prep.val, tcfg.device))


KEPT_CSV = "data.csv"  # the copy of its training CSV that a CSV model keeps beside its weights


def kept_csv_args(card: dict, folder: str | Path) -> dict:
    """``prepare`` arguments for a model trained on a CSV, from the copy its card names beside it
    (``train_and_save`` keeps one, from the CLI and the app alike); DataError when there is none."""
    name = card.get("csv_file")
    if name is not None and (not isinstance(name, str) or Path(name).name != name or name.startswith(".")):
        raise DataError("the card's csv_file is not a plain file name inside the model's folder")
    path = Path(folder) / name if name else None
    if path is None or not path.exists():
        raise DataError("the CSV this model was trained on is not stored with it"
                        + (f" ({name} is missing)" if name else ""))
    return {"csv": str(path), "text_column": card.get("text_column", "text"), "label_column": card.get("label_column", "label")}


def fit(prep: Prepared, method: str, tcfg: TrainConfig, *, budget: float | None = None, callbacks=(), stop=None,
        dense: BudgetedClassifier | None = None) -> FitResult:
    """Train a registered ``method`` (``static``: at ``budget``) from ``dense`` if given, else from a
    dense warm start trained here first."""
    m = get_method(method)
    if not m.trainable:
        raise ValueError(f"{method} is not trained on its own; `compare` runs it from a dense model")
    if m.one_model_per_budget and (budget is None or not 0.0 < budget <= 1.0):
        raise ValueError(f"the {method} baseline is trained for one budget in (0, 1]; got budget={budget}")
    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    start = time.perf_counter()
    history: list = []
    cbs = [*callbacks, history.append]
    if dense is None and tcfg.dense_epochs <= 0 and prep.init_model is not None:
        dense = prep.new_model().to(tcfg.device)  # a fine-tuned classifier as it is: no warm start
    if dense is None:
        dense = fit_dense(prep, tcfg, cbs, stop)
    model = dense if method == "dense" else run_method(m, dense, prep.train, tcfg, budget=budget, callbacks=cbs, stop=stop,
                                                       validate=validation_hook(m, prep.val, tcfg.device))
    if m.calibrate is not None and len(prep.val):  # fitted on the validation split, never the test split
        m.calibrate(model, iterate_batches(prep.val, 256, device=tcfg.device), device=tcfg.device)
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


def data_sizes(data: TaskData) -> dict:
    """The data's size notes for a card (limits such as max_train), without its warnings (kept apart)."""
    return {k: v for k, v in data.extra.items() if k != "warnings"}


PROTOCOL = ("accuracy on the test split (touched once per reported row) with the hard operating point (top-k heads, "
            ">=1 per layer), computed by the sliced model; accuracy_ci: 95% bootstrap interval over test examples "
            "(2,000 resamples, seed 0; for seed-averaged rows, of the seed-mean accuracy); latency: median ms per batch "
            "of 8 random test examples at their real lengths, CPU, fixed threads, each head layout timed in pairs beside "
            "dense over shuffled rounds; speedup = median of per-round ratios, speedup_ci = 95% bootstrap interval of "
            "that median, speedup_spread = 2.5-97.5 percentiles of the per-round ratios")


def strip_per_example(sweeps: dict) -> dict:
    """Sweeps without the per-example ``correct`` field (kept in results files, not in cards)."""
    return {m: [{k: v for k, v in r.items() if k != "correct"} for r in rows] for m, rows in sweeps.items()}


def make_card(prep: Prepared, *, name: str, method: str, tcfg: TrainConfig, sweeps: dict, command: str,
              train_time_s: float | None, notes: str = "", extra: dict | None = None) -> dict:
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
        "sizes": {"train": len(prep.train), "val": len(prep.val), "test": len(prep.test), **data_sizes(prep.data)},
        **({"data_warnings": prep.data.extra["warnings"]} if prep.data.extra.get("warnings") else {}),
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
        **({"family": cfg.family} if cfg.family else {}),
        **(extra or {}),
    }


def train_and_save(prep: Prepared, method: str, out: str | Path, tcfg: TrainConfig, *, budget: float | None = None,
                   budgets=DEFAULT_BUDGETS, name: str | None = None, command: str = "", callbacks=(), stop=None,
                   threads: int = 1, n_latency_batches: int = 16, progress=None, card_extra: dict | None = None,
                   select: bool = False, controls: bool = False, overwrite: bool = False, expect: tuple | None = None,
                   if_taken: str = "refuse") -> Checkpoint:
    """Train one method, sweep it on the test split, and save it with its card (atomically). A model
    trained on a CSV keeps a copy of it (``KEPT_CSV``), so ``sweep``/``bench`` and the app find its data.

    ``select``: re-choose the recipe's open hyperparameters on the validation split first
    (``protocol.select_and_fit``). ``controls``: also train the dense model with the method's epochs
    and the no-attention model; the no-attention evaluation and chance are always in the card.

    An existing ``out`` is refused before training unless ``overwrite``; at save time the rules of
    ``save_checkpoint`` (``expect``, ``if_taken``) decide, and the returned checkpoint's path is the
    folder really written."""
    m = get_method(method)
    if not overwrite and if_taken == "refuse":
        check_target(out, overwrite)
    grid = selection_grid(prep.data.task, prep.kind) if select else ()
    start = time.perf_counter()
    if select:
        chosen = select_and_fit(prep, method, tcfg, grid, fit=fit, fit_dense=fit_dense, budget=budget, callbacks=callbacks, stop=stop, log=progress)
        prep, tcfg, history = chosen.prep, chosen.tcfg, chosen.history
        dense_model, trained = chosen.dense, chosen.model if chosen.model is not None else chosen.dense
        records = [chosen.record]
    else:
        result = fit(prep, method, tcfg, budget=budget, callbacks=callbacks, stop=stop)
        dense_model, trained, history, records = result.dense, result.model, result.history, []
    train_time_s = time.perf_counter() - start
    dtype = storage_dtype(prep)
    model = round_weights(trained, dtype)
    ones, zeros = all_heads_mask(model.config), no_attention_mask(model.config)
    sweeps = {}
    extra = dict(card_extra or {})
    lat = dict(threads=threads, n_latency_batches=n_latency_batches, progress=progress, device=tcfg.device, keep_correct=True)
    plain = dict(threads=threads, n_latency_batches=0, device=tcfg.device, keep_correct=True)
    if m.calibrate is not None:  # adaptive (issue 10): recalibrated after rounding, then its own card
        from .measure.adaptive import adaptive_card

        sweeps[method], extra["adaptive"] = adaptive_card(prep, model, dense_model, budgets, tcfg, threads=threads,
                                                          latency_examples=n_latency_batches * 8, progress=progress)
        model.cpu()
    elif m.per_input:
        from .measure.analysis import per_example_loss

        outputs = controller_outputs(model, prep.test, device=tcfg.device)
        hits = outputs["pred"] == outputs["label"]
        sweeps[method] = [{**summarize_outputs(model, outputs, prep.test), "accuracy_ci": list(bootstrap_ci(hits.double())),
                           "correct": pack_correct(hits)}]
        complexity = per_example_loss(dense_model, prep.test, device=tcfg.device)  # an independent model's loss
        extra["analysis"] = budgetformer_analysis(model, prep.test, list(prep.data.label_names), history,
                                                  device=tcfg.device, latency_examples=n_latency_batches * 8,
                                                  threads=threads, outputs=outputs, complexity=complexity)
        model.cpu()
    elif m.has_budget:
        sweeps[method] = measure(prep, model, [budget] if m.one_model_per_budget else budgets, method=method, **lat)
    sweeps["dense"] = measure(prep, dense_model, [1.0], method="dense", mask_for=lambda b: ones, **plain)
    control_start = time.perf_counter()
    if controls and method != "dense":
        more = method_epochs(method, tcfg) - tcfg.dense_epochs
        equal = round_weights(continue_dense(dense_model.to(tcfg.device), prep.train, tcfg, more, callbacks, stop), dtype)
        sweeps["dense_equal"] = measure(prep, equal, [1.0], method="dense_equal", mask_for=lambda b: ones, **plain)
    if controls:
        blind = round_weights(train_no_attention(prep, tcfg, method_epochs(method, tcfg), callbacks, stop), dtype)
        sweeps["no_attention"] = measure(prep, blind, [1.0], method="no_attention", mask_for=lambda b: zeros, **plain)
    sweeps["no_attention_eval"] = measure(prep, model, [1.0], method="no_attention_eval", mask_for=lambda b: zeros, **plain)
    model.cpu()
    epochs = {k: method_epochs(method if k in ("no_attention_eval", "no_attention", "dense_equal") else k, tcfg) for k in sweeps}
    for k, rows in sweeps.items():
        for r in rows:
            r.update(seed=tcfg.seed, epochs=epochs[k])
    extra.update(selection=selection_card(grid, records, method), controls=controls_card(sweeps, chance(prep.data), epochs),
                 differences=differences({k: [rows] for k, rows in sweeps.items()}), epochs=epochs)
    if controls:
        extra["controls_train_time_s"] = round(time.perf_counter() - control_start, 1)
    files = {}
    if prep.csv is not None:
        files[KEPT_CSV] = prep.csv["csv"]
        extra.update(csv_file=KEPT_CSV, csv_name=Path(prep.csv["csv"]).name, text_column=prep.csv["text_column"],
                     label_column=prep.csv["label_column"])
    card = make_card(prep, name=name or Path(out).name, method=method, tcfg=tcfg, sweeps=strip_per_example(sweeps),
                     command=command, train_time_s=train_time_s, extra=extra)
    folder = save_checkpoint(out, model, prep.tokenizer, card, dtype=dtype, files=files, overwrite=overwrite, expect=expect,
                             if_taken=if_taken, **external_spec(prep.kind, prep.tokenizer))
    if folder.name != Path(out).name and card.get("name"):
        card = {**card, "name": folder.name}
    return Checkpoint(model, prep.tokenizer, card, folder)


def storage_dtype(prep: Prepared) -> str:
    """Text models are stored in float16 (half the size; accuracy is measured after rounding, see
    ``round_weights``); the tiny synthetic model keeps float32."""
    return "float32" if prep.data.task in SYNTH_MAX_MARKS else "float16"


@torch.no_grad()
def round_weights(model: BudgetedClassifier, dtype: str) -> BudgetedClassifier:
    """Round floating-point weights to ``dtype`` and back, in place: the model that gets measured is
    then exactly the one that loads from a checkpoint stored in that dtype."""
    target = getattr(torch, dtype)
    for p in model.state_dict().values():
        if p.is_floating_point():
            p.copy_(p.to(target).to(p.dtype))
    return model


# ---------------------------------------------------------------- compare: every method on one dataset
# ``dense_equal``: the warm start trained on for as many epochs as BAA's later phases; ``no_attention``: the
# control trained with every head closed for BAA's epochs. With ``baa``, every seed's BAA model is also
# evaluated with every head closed (``no_attention_eval``).
COMPARE_METHODS = ["dense", "dense_equal", "baa", "static", "posthoc", "recovery", "no_attention"]
NO_WARM_START = ("no_attention",)  # what a compare run can train without a dense warm start


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def validation_importance(dense: BudgetedClassifier, val: EncodedDataset, device: str = "cpu", batch_size: int = 64) -> torch.Tensor:
    """(L, H) validation importance of the dense model's heads, for post-hoc pruning."""
    return head_importance(dense, iterate_batches(val, batch_size, device=device), device)


def aggregate(per_seed: list[list[dict]]) -> list[dict]:
    """Rows of several seeds (same budgets, same order) -> one row per budget (``protocol.aggregate_rows``:
    mean, std over seeds, the bootstrap interval of the mean, and whose layout the row shows)."""
    return [aggregate_rows(list(rows)) for rows in zip(*per_seed)]


def compare(prep: Prepared, tcfg: TrainConfig, *, seeds: list[int], methods: list[str] = COMPARE_METHODS,
            budgets: list[float] | None = None, specialist_budgets: list[float] | None = None, threads: int = 1,
            n_latency_batches: int = 16, out: str | None = None, command: str = "", select: bool = False,
            overwrite: bool = False) -> dict:
    """Train and measure every method for each seed from one shared dense warm start per seed; return
    the per-seed rows (with which test examples each model got right) and the aggregated table, its
    paired differences and controls. ``select``: each seed first re-chooses the recipe's open
    hyperparameters on the validation split (``protocol.select_and_fit``; its BAA model and warm start
    are that seed's). With ``out``, the first seed's BAA model is saved there with all of it in its card."""
    budgets = budgets or DEFAULT_BUDGETS
    special = specialist_budgets or budgets
    for m in methods:
        get_method(m)  # one sentence for an unknown name
    _log(f"data: {prep.data.source}")
    dtype = storage_dtype(prep)
    grid = selection_grid(prep.data.task, prep.kind) if select else ()
    cache: dict = {}  # latency per head layout, shared by every row of this run
    lat = dict(threads=threads, n_latency_batches=n_latency_batches, latency_cache=cache, device=tcfg.device, progress=_log,
               keep_correct=True)
    per_seed: dict[str, list[list[dict]]] = {m: [] for m in methods}
    if "baa" in methods:
        per_seed["no_attention_eval"] = []
    saved: dict = {}
    records, train_times = [], {}
    cb = [TerminalProgress(every=200)]
    base_tcfg = tcfg
    trained = lambda m: round_weights(m.cpu().eval(), dtype)  # noqa: E731  what gets measured is what is stored
    for seed in seeds:
        tcfg = copy.deepcopy(base_tcfg)
        tcfg.seed = seed
        t0 = time.perf_counter()

        def add(method, rows, tcfg=tcfg, seed=seed):
            for r in rows:
                r.update(seed=seed, epochs=method_epochs("baa" if method == "no_attention_eval" else method, tcfg))
            per_seed[method].append(rows)

        sprep, dense, baa_model = prep, None, None
        if any(m not in NO_WARM_START for m in methods):
            if grid:
                chosen = select_and_fit(prep, "baa" if "baa" in methods else "dense", tcfg, grid, fit=fit, fit_dense=fit_dense,
                                        callbacks=cb, log=_log)
                sprep, tcfg, dense, baa_model = chosen.prep, chosen.tcfg, chosen.dense, chosen.model
                records.append(chosen.record)
            else:
                dense = fit_dense(prep, tcfg, cb)
                if "baa" in methods:
                    baa_model = fit(prep, "baa", tcfg, dense=dense.to(tcfg.device), callbacks=cb).model
        train_times[str(seed)] = round(time.perf_counter() - t0, 1)
        cfg = sprep.model_config
        ones, zeros = all_heads_mask(cfg), no_attention_mask(cfg)
        if "dense" in methods:
            add("dense", measure(sprep, trained(copy.deepcopy(dense)), [1.0], method="dense", mask_for=lambda b: ones, **lat))
        if "dense_equal" in methods:
            more = method_epochs("baa", tcfg) - tcfg.dense_epochs
            equal = trained(continue_dense(dense.to(tcfg.device), sprep.train, tcfg, more, cb))
            add("dense_equal", measure(sprep, equal, [1.0], method="dense_equal", mask_for=lambda b: ones, **lat))
        if baa_model is not None:
            model = trained(baa_model)
            add("baa", measure(sprep, model, budgets, method="baa", **lat))
            add("no_attention_eval", measure(sprep, model, [1.0], method="no_attention_eval", mask_for=lambda b: zeros, **lat))
            if seed == seeds[0]:
                saved = {"model": model, "prep": sprep, "tcfg": tcfg}
        if "static" in methods:
            rows = []
            for b in special:
                m = trained(fit(sprep, "static", tcfg, budget=b, dense=dense.to(tcfg.device), callbacks=cb).model)
                rows += measure(sprep, m, [b], method="static", **lat)
            add("static", rows)
        if "posthoc" in methods or "recovery" in methods:
            importance = validation_importance(dense.to(tcfg.device), sprep.val, tcfg.device).cpu()
            if seed == seeds[0]:
                saved["importance"] = importance.tolist()
            if "posthoc" in methods:
                add("posthoc", measure(sprep, trained(copy.deepcopy(dense)), budgets, method="posthoc",
                                       mask_for=lambda b: posthoc_mask(importance, b), **lat))
            if "recovery" in methods:
                rows = []
                for b in special:
                    mask = posthoc_mask(importance, b)
                    m = trained(run_method(get_method("recovery"), dense.to(tcfg.device), sprep.train, tcfg, budget=b,
                                           mask=mask, callbacks=cb))
                    rows += measure(sprep, m, [b], method="recovery", mask_for=lambda _b, mask=mask: mask, **lat)
                add("recovery", rows)
        if "no_attention" in methods:
            blind = trained(train_no_attention(sprep, tcfg, method_epochs("baa", tcfg), cb))
            add("no_attention", measure(sprep, blind, [1.0], method="no_attention", mask_for=lambda b: zeros, **lat))
    result = {"task": prep.data.task, "kind": prep.kind, "base": prep.base, "data": prep.data.source,
              "seeds": list(seeds), "per_seed": per_seed, "command": command, "commands": [command], "threads": threads,
              "selection_records": records, "selection_axes": [dataclasses.asdict(a) for a in grid],
              "chance": chance(prep.data), "trained_on": [trained_on(base_tcfg.device)], "train_time_s": train_times,
              "architecture": _architecture(saved.get("prep", prep))}
    result.update(aggregate_result(per_seed))
    if out and saved.get("model") is not None:
        card = make_card(saved["prep"], name=Path(out).name, method="baa", tcfg=saved["tcfg"], sweeps={}, command=command,
                         train_time_s=train_times[str(seeds[0])],
                         extra={"weights_seed": seeds[0], "posthoc_importance": saved.get("importance")})
        card.update(evidence_fields(result))
        save_checkpoint(out, saved["model"], saved["prep"].tokenizer, card, dtype=dtype, overwrite=overwrite,
                        **external_spec(prep.kind, prep.tokenizer))
        _log(f"saved {out}")
    return result


def _architecture(prep: Prepared) -> str:
    c = prep.model_config
    return f"{c.n_layers} layers x {c.n_heads} heads, d={c.d_model}, ffn={c.d_ffn}, max_len={c.max_len}"


def aggregate_result(per_seed: dict[str, list[list[dict]]]) -> dict:
    ordered_runs = {m: sorted(v, key=lambda rows: rows[0].get("seed", 0) if rows else 0) for m, v in per_seed.items() if v}
    table = {m: aggregate(v) for m, v in ordered_runs.items()}
    return {"table": table, "rows": [r for rows in table.values() for r in rows], "differences": differences(ordered_runs)}


def evidence_fields(result: dict) -> dict:
    """What a compare run (or a merge of several) writes into the checkpoint's card."""
    from .protocol import GridAxis

    grid = tuple(GridAxis(a["name"], tuple(a["values"]), a["stage"], a["where"]) for a in result.get("selection_axes") or [])
    epochs = {m: rows[0].get("epochs") for m, rows in result["table"].items() if rows}
    return {"sweeps": strip_per_example(result["table"]), "seeds": sorted(result["seeds"]),
            "selection": selection_card(grid, sorted(result.get("selection_records") or [], key=lambda r: r["seed"]), "baa"),
            "controls": controls_card(result["table"], result["chance"], epochs), "differences": result["differences"],
            "epochs": epochs, "trained_on": result.get("trained_on"),
            "commands": {"train": result.get("commands") or [result.get("command", "")],
                         **({"merge": result["merge_command"]} if result.get("merge_command") else {})}}


def _read_results_json(path: str) -> dict:
    """One ``compare --results-json`` file, or a one-sentence ValueError saying what it is instead."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--merge {path}: " + ("a folder, not a results file" if p.is_dir() else "no such file"))
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"--merge {path}: not valid JSON; pass files written by compare --results-json") from None
    missing = [k for k in ("task", "seeds", "per_seed") if not isinstance(data, dict) or k not in data]
    if missing or not isinstance(data["per_seed"], dict):
        raise ValueError(f"--merge {path}: not a compare --results-json file (no {', '.join(missing) or 'per_seed table'})")
    return data


def merge_results(paths: list[str], out: str | None = None, command: str = "") -> dict:
    """Join the per-seed rows of several ``compare --results-json`` files (e.g. seeds run in parallel, or
    a control run alone) and aggregate them; with ``out``, write the merged table, intervals, differences,
    controls and selection into that checkpoint's card, with every command as run and this merge command."""
    results = [_read_results_json(p) for p in paths]
    first = results[0]
    for r in results[1:]:
        if (r["task"], r.get("kind"), r.get("architecture")) != (first["task"], first.get("kind"), first.get("architecture")):
            raise ValueError(f"cannot merge results of different tasks or models ({r['task']} {r.get('architecture')} vs "
                             f"{first['task']} {first.get('architecture')})")
    per_seed: dict[str, list] = {}
    for r in results:
        for method, runs in r["per_seed"].items():
            per_seed.setdefault(method, []).extend(runs)
    for method, runs in per_seed.items():
        run_seeds = [rows[0].get("seed") for rows in runs if rows]
        if len(set(run_seeds)) != len(run_seeds):
            raise ValueError(f"the results files repeat seeds of {method} ({run_seeds}); merge each seed once")
    seeds = sorted({s for r in results for s in r["seeds"]})
    merged = {**first, "seeds": seeds, "per_seed": per_seed,
              "commands": [c for r in results for c in (r.get("commands") or [r["command"]])],
              "selection_records": [x for r in results for x in r.get("selection_records") or []],
              "selection_axes": next((r["selection_axes"] for r in results if r.get("selection_axes")), []),
              "trained_on": [x for r in results for x in r.get("trained_on") or []],
              "train_time_s": {k: v for r in results for k, v in (r.get("train_time_s") or {}).items()},
              "merge_command": command}
    merged.update(aggregate_result(per_seed))
    if out:
        card = read_card(out)
        card.update(evidence_fields(merged))
        update_card(out, card)
        _log(f"wrote the {len(seeds)}-seed table into {out}/card.json")
    return merged


NO_BUDGET = ("dense", "dense_equal", "no_attention", "no_attention_eval")


def _ci(ci, scale: float = 100.0) -> str:
    return "" if not ci else f" [{scale * ci[0]:.2f}, {scale * ci[1]:.2f}]"


def markdown_table(table: dict[str, list[dict]]) -> str:
    """The card's rows as a reviewer's table: epochs each model saw, accuracy with its bootstrap
    interval and the std over seeds, cost, heads, CPU latency and speedup with its interval."""
    from .methods import label

    lines = ["| method | budget | epochs | accuracy % [95% CI] | std over seeds | est. cost | heads | CPU ms/batch "
             "| speedup [95% CI] | FLOP bound |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, rows in table.items():
        for r in rows:
            budget = "-" if method in NO_BUDGET else f"{r['budget']:.2f}"
            acc = f"{100 * r['accuracy']:.2f}{_ci(r.get('accuracy_ci'))}"
            std = f"{100 * r['accuracy_std']:.2f} ({r['seeds']})" if r.get("seeds", 1) > 1 else "-"
            ms = "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.2f}"
            sp = "-" if r.get("speedup") is None else f"{r['speedup']:.2f}x{_ci(r.get('speedup_ci'), 1.0)}"
            fb = "-" if r.get("flop_speedup") is None else f"{r['flop_speedup']:.2f}x"
            ep = "-" if r.get("epochs") is None else f"{r['epochs']:g}"
            lines.append(f"| {label(method)} | {budget} | {ep} | {acc} | {std} | {r['est_cost']:.3f} "
                         f"| {r['active_heads']}/{r['total_heads']} | {ms} | {sp} | {fb} |")
    return "\n".join(lines)


def differences_table(diffs: list[dict], keep=None) -> str:
    """Paired differences in accuracy (points), with the bootstrap interval and the verdict."""
    lines = ["| comparison | difference, points [95% CI] | seeds | verdict |", "|---|---|---|---|"]
    for d in diffs:
        if keep is not None and not keep(d):
            continue
        lines.append(f"| {d['a']} − {d['b']} | {100 * d['difference']:+.2f}{_ci(d.get('ci'))} | {len(d['seeds'])} "
                     f"| {d.get('verdict', '-')} |")
    return "\n".join(lines)


def print_table(result: dict) -> None:
    print(f"{result['task']}: {result['data']}")
    print(f"seeds {sorted(result['seeds'])}; accuracy: mean over seeds; heads, layout and latency: the first seed's model; "
          f"latency with {result['threads']} thread(s)\n")
    print(markdown_table(result["table"]))
    if result.get("differences"):
        print()
        print(differences_table(result["differences"]))


# ---------------------------------------------------------------- a saved checkpoint: evaluate, time, analyse
def load_for_eval(folder: str | Path, *, data_dir=None, csv=None, text_column: str = "text",
                  label_column: str = "label") -> tuple[Checkpoint, Prepared]:
    """A checkpoint and its test split, tokenized with its own tokenizer (a CSV model's kept copy when
    no CSV is given)."""
    from .io.checkpoint import load_checkpoint

    ckpt = load_checkpoint(folder)
    task = ckpt.card.get("task", "synthetic")
    data = dict(csv=csv, text_column=text_column, label_column=label_column)
    if task == "csv" and not csv:
        try:
            data = kept_csv_args(ckpt.card, folder)
        except DataError as exc:
            raise DataError(f"{ckpt.name} was trained on a CSV and {exc}; pass it again with --csv") from None
    return ckpt, prepare(task, data_dir=data_dir, checkpoint=ckpt, splits=("test",), **data)


def bench_layouts(ckpt: Checkpoint, prep: Prepared, budgets: list[float], *, from_card: bool = False, batch_size: int = 8,
                  n_batches: int = 16, rounds: int = 20, threads: int = 1) -> dict:
    """CPU latency of each head layout (budgets' operating points, or every layout in the card's
    sweeps) beside the dense model, and each layout's FLOP bound."""
    batches = latency_batches(prep.test, batch_size, n_batches)
    lengths = padded_lengths(batches)
    model, cfg = ckpt.model, ckpt.config
    if from_card:
        rows = timed_rows(ckpt.card)
        layouts = sorted({tuple(r["heads_per_layer"]) for r in rows}, key=sum)
    else:
        layouts = []
        for b in budgets:
            mask = operating_point(model, b) if model.gate is not None else layout_mask(cfg.n_layers, cfg.n_heads, cfg.layer_heads)
            layouts.append(tuple(int(v) for v in mask.sum(-1).tolist()))
    layouts = list(dict.fromkeys(layouts))
    models = {"dense": slice_heads(model, layout_mask(cfg.n_layers, cfg.n_heads, cfg.layer_heads))}
    for lay in layouts:
        models[str(list(lay))] = slice_heads(model, layout_mask(cfg.n_layers, cfg.n_heads, lay))
    c = compare_latency(models, batches, threads, rounds=rounds)
    results = {}
    for lay in layouts:
        name = str(list(lay))
        speed, bound = c.speedup[name], flop_speedup(cfg, list(lay), lengths)
        results[lay] = {"heads_per_layer": list(lay), **c.row_fields(name), "flop_speedup": bound,
                        "fraction_of_bound": speed / bound, "threads": threads}
    return {"layouts": results, "dense_ms": c.median_ms["dense"], "batches": len(batches), "batch_size": batch_size,
            "rounds": rounds, "mean_padded_length": sum(lengths) / len(lengths), "threads": threads}


def bench_per_input(ckpt: Checkpoint, prep: Prepared, budgets: list[float] | None, *, n_inputs: int = 100,
                    threads: int = 1, progress=None) -> list[dict]:
    """An adaptive model's latency at each budget (the card's sweep budgets when ``budgets`` is None):
    every sampled test input runs only its own heads (structural path, batch 1) beside the dense model
    on the same input; accuracy and realised cost from the batched masked path, as ``sweep``."""
    from .measure.adaptive import adaptive_sweep

    if budgets is None:
        budgets = sorted({float(r["budget"]) for r in (ckpt.card.get("sweeps") or {}).get("adaptive", [])})
    if not budgets:
        raise ValueError(f"{ckpt.name}'s card has no adaptive sweep rows to time; pass --budgets")
    return adaptive_sweep(ckpt.model, prep.test, budgets, latency_examples=n_inputs, threads=threads, progress=progress)


def write_per_input_latency_to_card(folder: str | Path, ckpt: Checkpoint, rows: list[dict], command: str) -> int:
    """Write ``bench_per_input``'s latency columns into the card's adaptive rows of the same budget."""
    keys = ("latency_ms", "dense_latency_ms", "speedup", "speedup_ci", "speedup_spread", "flop_speedup",
            "latency_ratio_to_flop_model", "latency_ratio_ci", "latency_inputs", "latency_protocol", "threads")
    by_budget = {round(r["budget"], 6): r for r in rows}
    n = 0
    for r in (ckpt.card.get("sweeps") or {}).get("adaptive", []):
        m = by_budget.get(round(float(r["budget"]), 6))
        if m is not None:
            r.update({k: m.get(k) for k in keys})
            n += 1
    ckpt.card["latency"] = {"command": command, "environment": environment(),
                            "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                            "protocol": rows[0].get("latency_protocol") if rows else None}
    update_card(folder, ckpt.card)
    return n


def timed_rows(card: dict) -> list[dict]:
    """The card's rows that can be timed: a structural head layout (a closed layer, the no-attention
    control, has no sliced model to time)."""
    return [r for rs in card.get("sweeps", {}).values() for r in rs
            if r.get("heads_per_layer") and min(r["heads_per_layer"]) > 0]


def write_latency_to_card(folder: str | Path, ckpt: Checkpoint, bench: dict, command: str) -> int:
    """Write ``bench_layouts(from_card=True)``'s timings into the card's sweep rows; returns how many."""
    rows = timed_rows(ckpt.card)
    for r in rows:
        m = bench["layouts"][tuple(r["heads_per_layer"])]
        r.update({k: m[k] for k in ("latency_ms", "dense_latency_ms", "speedup", "speedup_ci", "speedup_spread",
                                    "latency_rounds", "flop_speedup", "threads")})
    ckpt.card["latency"] = {"command": command, "environment": environment(), "batches": bench["batches"],
                            "batch_size": bench["batch_size"], "rounds": bench["rounds"],
                            "mean_padded_length": bench["mean_padded_length"],
                            "cpu_affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
                            "speedup": "median of per-round ratios dense / sliced (each pair timed back to back, order "
                                       "shuffled); speedup_ci: 95% bootstrap interval of that median; speedup_spread: "
                                       "2.5-97.5 percentiles of the per-round ratios"}
    update_card(folder, ckpt.card)
    return len(rows)


def analyze_checkpoint(ckpt: Checkpoint, prep: Prepared, *, device: str = "cpu", latency_examples: int = 200,
                       threads: int = 1) -> tuple[dict, dict]:
    """A per-input model's summary and analyses over the test split (one pass serves both)."""
    if ckpt.model.controllers is None:
        raise ValueError(f"{ckpt.name} does not choose heads per input (method {ckpt.card.get('method')})")
    from .measure.analysis import COMPLEXITY_MEASURE

    model = ckpt.model.to(device)
    outputs = controller_outputs(model, prep.test, device=device)
    summary = summarize_outputs(model, outputs, prep.test)
    summary["accuracy_ci"] = list(bootstrap_ci((outputs["pred"] == outputs["label"]).double()))
    # Complexity comes from an independent model (the dense warm start), measured at training time and
    # kept in the card; it is never recomputed from the per-input network itself.
    stored = (ckpt.card.get("analysis") or {}).get("complexity") or {}
    complexity = torch.tensor(stored["values"]) if len(stored.get("values") or []) == len(prep.test) else None
    result = budgetformer_analysis(model, prep.test, list(prep.data.label_names), device=device,
                                   latency_examples=latency_examples, threads=threads, outputs=outputs,
                                   complexity=complexity, complexity_measure=stored.get("measure", COMPLEXITY_MEASURE))
    return summary, result


def write_analysis_to_card(folder: str | Path, ckpt: Checkpoint, summary: dict, result: dict) -> None:
    result["training_dynamics"] = ckpt.card.get("analysis", {}).get("training_dynamics", [])
    ckpt.card["analysis"] = result
    key = ckpt.card.get("method", "budgetformer")
    old = (ckpt.card.get("sweeps", {}).get(key) or [{}])[0]
    ckpt.card.setdefault("sweeps", {})[key] = [{**{k: old[k] for k in ("seed", "epochs") if k in old}, **summary}]
    update_card(folder, ckpt.card)


# ---------------------------------------------------------------- budgets for a model you have, no training
ALBERT_NOTE = ("ALBERT's layer weights are shared; they were unshared at load, so each of its layers holds its own copy "
               "and is gated and sliced on its own (same predictions with every head on, more memory)")


def importance_sample(prep: Prepared, n: int) -> TextDataset:
    """Up to ``n`` held-out rows to rank heads on: the validation split, then the training split (no
    training happens in a post-hoc run, so neither was seen); never the test split."""
    val, train = prep.data.val, prep.data.train
    pool = val.subset(range(min(n, len(val))))
    if len(pool) < n and len(train):
        extra = train.subset(range(min(n - len(pool), len(train))))
        pool = TextDataset(pool.texts + extra.texts, pool.labels + extra.labels, pool.label_names, "val+train")
    return pool


def prepare_posthoc(model: str | Checkpoint, *, task: str = "synthetic", csv=None, text_column: str = "text",
                    label_column: str = "label", data_dir=None, max_test: int | None = None) -> Prepared:
    """``prepare`` for a model with a trained head (its test split encoded; train and validation kept as text):
    a loaded Checkpoint (the app's), a checkpoint folder of this project, or a Hugging Face classifier by
    name or folder."""
    from .io.checkpoint import load_checkpoint

    data = dict(csv=csv, text_column=text_column, label_column=label_column, data_dir=data_dir, max_test=max_test,
                splits=("test",))
    own = not isinstance(model, Checkpoint) and (Path(model) / "card.json").exists() and (Path(model) / "config.json").exists()
    if isinstance(model, Checkpoint) or own:
        ckpt = model if isinstance(model, Checkpoint) else load_checkpoint(model)
        if ckpt.model.is_sliced or ckpt.model.controllers is not None:
            raise ValueError(f"{ckpt.name} is {'sliced' if ckpt.model.is_sliced else 'a per-input model'}; post-hoc "
                             f"ranking needs a full model with one head set per budget")
        prep = prepare(task, checkpoint=ckpt, **data)
        prep.init_model, prep.trained_head = ckpt.model, True
        return prep
    prep = prepare(task, kind="hf", base=model, **data)
    if not prep.trained_head:
        raise ModelSourceError(f"{model} has no trained classification head (a bare encoder), so there is nothing to rank "
                               f"without training; fine-tune it first: train --kind hf --base {model}")
    return prep


def posthoc_and_save(prep: Prepared, out: str | Path, *, budgets=DEFAULT_BUDGETS, importance_examples: int = 512,
                     threads: int = 1, n_latency_batches: int = 16, device: str = "cpu", command: str = "",
                     name: str | None = None, progress=None, overwrite: bool = False) -> Checkpoint:
    """Budgets for ``prep.init_model`` with no training: rank its heads (Michel et al., 2019: |dLoss/dg_lh| at
    every gate open, summed over a held-out sample), sweep ``budgets`` on the test split (accuracy of the
    sliced model, CPU latency beside the dense one), save a checkpoint whose gate is that ranking
    (``gating="posthoc"``: every budget works in the app and the CLI). Weights stay float32, so with
    every head on the predictions are the model's own, bit for bit."""
    if not overwrite:
        check_target(out)
    start = time.perf_counter()
    dense = prep.init_model.cpu().eval()
    sample = importance_sample(prep, importance_examples)
    if not len(sample):
        raise DataError("there are no held-out rows to rank the heads on")
    importance = validation_importance(dense.to(device), encode(sample, prep.tokenizer, prep.model_config.max_len), device).cpu()
    dense.cpu()
    rank_s = time.perf_counter() - start
    if progress:
        progress(f"ranked {prep.model_config.total_heads} heads on {len(sample)} held-out rows in {rank_s:.1f} s")
    model = with_gating(dense, "posthoc")
    with torch.no_grad():
        model.gate.importance.copy_(importance)
    model.eval()
    lat = dict(threads=threads, device=device)
    sweeps = {"posthoc": measure(prep, model, budgets, method="posthoc", n_latency_batches=n_latency_batches,
                                 progress=progress, **lat),
              "dense": measure(prep, model, [1.0], method="dense", mask_for=lambda b: all_heads_mask(model.config),
                               n_latency_batches=0, **lat)}
    notes = ["post-hoc: no training; heads ranked by |dLoss/dgate| with every gate open on held-out rows, cut to each budget"]
    if prep.model_config.family == "albert":
        notes.append(ALBERT_NOTE)
    extra = {"posthoc_importance": importance.tolist(), "importance_examples": len(sample),
             "importance_data": "the validation split, then training rows (no training happened)", "trained_head": True,
             "ranking_time_s": round(rank_s, 2)}
    if "label_alignment" in prep.data.extra:
        extra["label_alignment"] = prep.data.extra["label_alignment"]
    files = {}
    if prep.csv is not None:
        files[KEPT_CSV] = prep.csv["csv"]
        extra.update(csv_file=KEPT_CSV, csv_name=Path(prep.csv["csv"]).name, text_column=prep.csv["text_column"],
                     label_column=prep.csv["label_column"])
    card = make_card(prep, name=name or Path(out).name, method="posthoc", sweeps=sweeps, command=command, train_time_s=None,
                     tcfg=TrainConfig(dense_epochs=0, budget_epochs=0, hard_epochs=0, device=device),
                     notes="; ".join(notes), extra=extra)
    card["sizes"] = {"importance": len(sample), "test": len(prep.test), **data_sizes(prep.data)}
    save_checkpoint(out, model, prep.tokenizer, card, dtype="float32", files=files, overwrite=overwrite)
    return Checkpoint(model, prep.tokenizer, card, Path(out))


# ---------------------------------------------------------------- take home a faster model (issue 13)
def test_split_or_reason(ckpt: Checkpoint, folder: str | Path | None, *, data_dir=None, csv=None, text_column: str = "text",
                         label_column: str = "label") -> tuple[EncodedDataset | None, str | None]:
    """(the checkpoint's encoded test split, None) when its data is on this machine; (None, why not)
    otherwise: no Hub download is attempted, so an offline machine answers at once."""
    from .io.data import data_available

    task = ckpt.card.get("task", "synthetic")
    data = dict(csv=csv, text_column=text_column, label_column=label_column)
    if task == "csv" and not csv:
        try:
            data = kept_csv_args(ckpt.card, folder or ".")
        except DataError as exc:
            return None, f"{exc} (pass it with --csv)"
    elif task != "csv" and (why := data_available(task, data_dir)):
        return None, why
    try:
        return prepare(task, data_dir=data_dir, checkpoint=ckpt, splits=("test",), **data).test, None
    except DataError as exc:
        return None, str(exc)


def export_model(ckpt: Checkpoint, out: str | Path, budget: float | None, *, int8: bool = False, onnx: bool = False,
                 overwrite: bool = False, test: EncodedDataset | None = None, indices=None, data_note: str = "",
                 int8_backend: str = "torch", rounds: int = 10, n_latency_batches: int = 8, threads: int = 1,
                 accuracy_threads: int | None = None, command: str = "", progress=None) -> dict:
    """Write the sliced model at ``budget`` to ``out``, measure what was written, card it; returns the card.

    The export is built in a hidden sibling folder, loaded back from disk and measured there (accuracy
    on ``test`` or its ``indices``; latency beside the source's dense form, interleaved; logits checked
    against masked execution at the same budget and, with ``onnx``, ONNX Runtime's against torch's),
    and only then renamed to ``out``: a failure leaves nothing under that name. ``test=None``: no
    accuracy, timing on random tokens (the card says so, and ``data_note`` why).
    """
    import uuid

    from .io.checkpoint import load_checkpoint, replace_folder
    from .io.export import (ONNX_FILE, ONNX_INT8_FILE, ExportError, check_target, hf_config_keys, storage_dtype_of,
                            write_tokenizer_json)
    from .measure.deploy import MaskedAt, dense_of, max_logit_diff, measure_variants, random_batches, sliced_at
    from .model.runtimes import OnnxRunner, export_onnx, onnx_missing, quantize_int8, quantize_onnx_int8

    say = progress or (lambda m: None)
    out = check_target(out, overwrite, ckpt.path)
    if onnx and (why := onnx_missing()):
        raise ExportError(why)
    small, mask = sliced_at(ckpt.model, budget)
    if ckpt.model.gate is None:
        budget = None  # an ungated model keeps all of its heads: no budget applies
    dtype = storage_dtype_of(ckpt)
    extra = hf_config_keys(small, mask, list(ckpt.card.get("labels") or small.config.labels), dtype)
    stage = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    try:
        say(f"writing the sliced model ({int(mask.sum())}/{mask.numel()} heads: {extra['heads_per_layer']})…")
        save_checkpoint(stage, small, ckpt.tokenizer, {}, dtype=dtype, extra_config=extra)  # self-contained: no external tensors
        files = {"weights": "model.safetensors", "config": "config.json", "card": "card.json",
                 "tokenizer": write_tokenizer_json(ckpt.tokenizer, stage)}
        exported = load_checkpoint(stage)  # everything below measures what was written
        have_data = test is not None and len(test) > 0
        batches = (latency_batches(test, 8, n_latency_batches) if have_data
                   else random_batches(exported.model, 8, max(1, n_latency_batches // 2)))
        runners = {"dense": dense_of(ckpt.model), "sliced": exported.model}
        if int8:
            say(f"quantizing the Linear layers to int8 ({int8_backend})…")
            runners["sliced_int8"] = quantize_int8(exported.model, int8_backend)
        if onnx:
            say("exporting to ONNX…")
            export_onnx(exported.model, stage / ONNX_FILE)
            files["onnx"] = ONNX_FILE
            runners["onnx_sliced"] = OnnxRunner(stage / ONNX_FILE, threads)
            if int8:
                quantize_onnx_int8(stage / ONNX_FILE, stage / ONNX_INT8_FILE)
                files["onnx_int8"] = ONNX_INT8_FILE
                runners["onnx_sliced_int8"] = OnnxRunner(stage / ONNX_INT8_FILE, threads)
        check = max_logit_diff(exported.model, MaskedAt(ckpt.model, mask), batches)
        if check > 1e-4:
            raise ExportError(f"the exported model's logits differ from the masked model's by {check:.2g}; nothing written")
        if onnx and (d := max_logit_diff(runners["onnx_sliced"], exported.model, batches)) > 1e-4:
            raise ExportError(f"ONNX Runtime's logits differ from torch's by {d:.2g}; nothing written")
        rows = measure_variants(runners, "dense", batches=batches, test=test if have_data else None, indices=indices,
                                rounds=rounds, threads=threads, accuracy_threads=accuracy_threads, progress=say)
        n = (len(indices) if indices is not None else len(test)) if have_data else 0
        where = ("test examples at their real lengths" if have_data
                 else f"random token ids of length {batches[0]['input_ids'].shape[1]} (no test data)")
        card = _export_card(ckpt, exported.model.config, mask, budget, rows, batches, n, where, data_note, files, dtype,
                            int8_backend if int8 else None, check, rounds, threads, command)
        update_card(stage, card)
        replace_folder(stage, out)
    except BaseException:
        import shutil

        shutil.rmtree(stage, ignore_errors=True)
        raise
    say(f"wrote {out}")
    return card


def _export_card(ckpt: Checkpoint, cfg: ModelConfig, mask: torch.Tensor, budget, rows: dict, batches, n: int, where: str,
                 data_note: str, files: dict, dtype: str, int8_backend: str | None, check: float, rounds: int, threads: int,
                 command: str) -> dict:
    """The exported model's card: the source's identity, the operating point, and what was measured after export
    (a one-row sweep in the card's usual keys, so the app shows it like any model)."""
    from .model.runtimes import ONNX_OPSET
    from .model.surgery import kept_heads

    src = ckpt.card
    hpl = [len(k) for k in kept_heads(mask)]
    lengths = padded_lengths(batches)
    method = src.get("method", "dense")
    sliced = rows["sliced"]
    row = {"budget": 1.0 if budget is None else budget, "accuracy": sliced.get("accuracy"), "est_cost": float(mask.mean()),
           "active_heads": int(mask.sum()), "total_heads": mask.numel(), "latency_ms": sliced["ms_per_batch"],
           "dense_latency_ms": rows["dense"]["ms_per_batch"], "speedup": sliced["speedup"],
           "flop_speedup": None if ckpt.model.is_sliced else flop_speedup(ckpt.model.config, hpl, lengths),
           "method": method, "heads_per_layer": hpl, "n": n, "threads": threads}
    variants = [{"variant": k, "accuracy": r.get("accuracy"), "accuracy_from": r.get("accuracy_from", k if "accuracy" in r else None),
                 "n": n if "accuracy" in r else 0, "ms_per_batch": r["ms_per_batch"],
                 "speedup_vs_dense": r["speedup"], "speedup_ci": r["speedup_ci"], "speedup_spread": r["speedup_spread"],
                 "max_abs_logit_diff": r.get("max_abs_logit_diff")} for k, r in rows.items()]
    onnx = "onnx" in files
    return {
        "name": ckpt.name + ("" if budget is None else f"-b{budget:.2f}"),
        "task": src.get("task"), "method": method, "model_kind": src.get("model_kind"), "base_model": src.get("base_model"),
        "architecture": f"{cfg.n_layers} layers x {hpl} heads (of {mask.shape[1]}), d={cfg.d_model}, ffn={cfg.d_ffn}, "
                        f"max_len={cfg.max_len}",
        "labels": list(src.get("labels") or cfg.labels), "data": src.get("data"), "created": _dt.date.today().isoformat(),
        "command": command, "environment": environment(), "sweeps": {method: [row]},
        "latency": {"command": command, "environment": environment(), "batches": len(batches), "batch_size": 8,
                    "rounds": rounds, "mean_padded_length": sum(lengths) / len(lengths), "inputs": where,
                    "protocol": "each variant timed beside the source model's dense form in interleaved rounds; "
                                "speedup = median of the per-round ratios; speedup_ci: 95% bootstrap interval of that median; "
                                "speedup_spread: 2.5-97.5 percentiles of single rounds"},
        "export": {
            "source": str(ckpt.path or ckpt.name), "budget": budget, "heads_per_layer": hpl, "kept_heads": kept_heads(mask),
            "active_heads": int(mask.sum()), "total_heads": mask.numel(),
            "gating": "removed: at a hard operating point every kept head counts fully, so no gate value is folded",
            "dtype": dtype, "files": files, "accuracy_n": n,
            "accuracy_data": (f"the test split ({n} examples)" if n else (data_note or "no test data")),
            "max_abs_logit_diff_vs_masked": check, "variants": variants,
            "int8": None if int8_backend is None else {
                "backend": int8_backend, "what": "dynamic int8: Linear weights per output channel, activations at run time",
                "apply": f"baa_core.model.runtimes.quantize_int8(load_checkpoint(folder).model, {int8_backend!r})"},
            "onnx": None if not onnx else {
                "file": files["onnx"], "int8_file": files.get("onnx_int8"),
                "inputs": {"input_ids": "int64 (batch, length)", "attention_mask": "int64 (batch, length): 1 token, 0 padding"},
                "outputs": {"logits": f"float32 (batch, {cfg.n_classes})"}, "pad_id": cfg.pad_id, "max_length": cfg.max_len,
                "tokenizer": files["tokenizer"], "opset": ONNX_OPSET,
                "runtime": f"any ONNX runtime with opset {ONNX_OPSET} (its Attention op); measured with ONNX Runtime"},
        },
        "notes": (f"Exported from {ckpt.name} with all of its heads (it has no budget gates)." if budget is None else
                  f"Sliced from {ckpt.name} at budget {budget}: only the kept heads' weights are stored.")
                 + f" Accuracy and latency were measured on the written files after export ({where}).",
    }
