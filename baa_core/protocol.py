"""The rules of evidence (METHODS.md section 5) as code, shared by ``compare`` and ``train``.

* **Selection on validation only.** ``select_and_fit`` trains a small grid and keeps the point with
  the best *validation* score; it is handed the training and validation splits and nothing else
  (``Prepared.without_test``), so no test example can reach a choice. Axes that shape the dense warm
  start are scored by the dense model's validation accuracy; axes of the later phases by the
  method's own validation score. Ties go to the first value listed. The record goes into the card
  as ``selection``.
* **Equal training budgets.** ``continue_dense`` gives the dense model the epochs the method spent
  after the warm start (same rate and schedule as those phases), so "BAA vs dense" compares models
  that saw the data equally often; ``method_epochs`` says how many epochs each row's model saw.
* **Controls.** ``train_no_attention`` trains the same network with every head closed for the
  method's epochs; ``no_attention_mask`` evaluates any model with every head closed; ``chance``
  gives the uniform rate and the training-majority class's test accuracy.
* **Intervals.** ``aggregate_rows`` averages seeds and bootstraps the seed-mean accuracy over test
  examples; ``paired_difference`` bootstraps "A - B" on the same examples and calls a difference
  whose interval holds 0 a tie.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .io.data import EncodedDataset
from .measure.evaluate import bootstrap_ci, evaluate, unpack_correct
from .methods import TrainConfig, get_method
from .train import run_method

SELECTION_SPLIT = "validation (a stratified 10% of the training rows; the test split is not given to the selection)"
BAA_SELECTION_BUDGETS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class GridAxis:
    """One hyperparameter of the selection grid.

    ``where``: "train" (a TrainConfig field) or "model" (a ModelConfig field). ``stage``: "dense"
    (changes the warm start; scored by the dense model's validation accuracy) or "method" (changes
    the later phases; scored by the method's validation score)."""

    name: str
    values: tuple
    stage: str = "method"
    where: str = "train"


# What is re-selected on validation, per model family. The word model's embedding scale and the
# gated phases' learning rate were the two choices earlier made on test numbers; the synthetic
# task's embedding scale is fixed by the training speed of the dense model (ModelConfig), not tuned.
SELECTION_GRIDS: dict[str, tuple[GridAxis, ...]] = {
    "word": (GridAxis("embedding_init_std", (0.02, 1.0), "dense", "model"), GridAxis("adapt_lr", (1e-3, 3e-4))),
    "synthetic": (GridAxis("adapt_lr", (5e-3, 1e-3)),),
    "bert": (GridAxis("adapt_lr", (5e-5, 2e-5)),),
}


def selection_grid(task: str, kind: str) -> tuple[GridAxis, ...]:
    if kind in ("bert", "hf"):  # pretrained encoders: the later phases' rate (their embeddings are not re-initialised)
        return SELECTION_GRIDS["bert"]
    return SELECTION_GRIDS["synthetic" if task == "synthetic" else "word"]


def method_epochs(method: str, tcfg: TrainConfig) -> float:
    """Epochs over the training rows that a model of ``method`` saw in total (warm start included)."""
    gated = tcfg.budget_epochs + tcfg.hard_epochs
    return float(tcfg.dense_epochs + {"dense": 0.0, "posthoc": 0.0, "baa": gated, "static": gated, "dense_equal": gated,
                                      "no_attention": gated, "recovery": tcfg.recovery_epochs,
                                      "budgetformer": tcfg.bf_epochs,
                                      "adaptive": tcfg.ad_epochs + tcfg.ad_hard_epochs}.get(method, 0.0))


def after_warm_start_epochs(method: str, tcfg: TrainConfig) -> float:
    return method_epochs(method, tcfg) - tcfg.dense_epochs


# ---------------------------------------------------------------- controls and equal-epoch baselines
def continue_dense(dense, train: EncodedDataset, tcfg: TrainConfig, epochs: float, callbacks=(), stop=None):
    """A copy of the dense warm start trained ``epochs`` more, all heads on, at the rate of the phases
    that follow the warm start: the dense baseline with the method's training budget (``dense_equal``)."""
    if epochs <= 0:
        return copy.deepcopy(dense).cpu().eval()
    model = run_method(get_method("dense_equal"), dense, train, tcfg, callbacks=callbacks, stop=stop, epochs=epochs)
    return model.cpu().eval()


def train_no_attention(prep, tcfg: TrainConfig, epochs: float, callbacks=(), stop=None):
    """The control: the same network (same init, or the same pretrained weights) trained with every head
    closed for ``epochs``. What it reaches is what the task gives without any attention."""
    model = run_method(get_method("no_attention"), prep.new_model(tcfg.seed), prep.train, tcfg, callbacks=callbacks, stop=stop,
                       epochs=epochs)
    return model.cpu().eval()


def chance(data) -> dict:
    """Chance levels: 1/C, and always predicting the training split's most frequent class (its test
    accuracy, with a bootstrap interval)."""
    n_classes = len(data.label_names)
    counts = torch.bincount(torch.tensor(data.train.labels), minlength=n_classes)
    majority = int(counts.argmax())
    hits = torch.tensor([y == majority for y in data.test.labels], dtype=torch.float64)
    return {"uniform": 1.0 / n_classes, "majority_class": data.label_names[majority],
            "majority_class_accuracy": float(hits.mean()), "majority_class_accuracy_ci": list(bootstrap_ci(hits)),
            "what": "1/C; and always predicting the most frequent training class, scored on the test split"}


# ---------------------------------------------------------------- selection
@dataclass
class Selected:
    prep: object  # Prepared with the chosen model config (test split included, for the caller)
    tcfg: TrainConfig
    dense: object
    model: object  # the chosen point's trained method model (None for method "dense")
    record: dict
    history: list = dataclasses.field(default_factory=list)  # the chosen point's TrainEvents


def _apply(prep, tcfg: TrainConfig, axes: tuple[GridAxis, ...], values: tuple):
    model_over = {a.name: v for a, v in zip(axes, values) if a.where == "model"}
    train_over = {a.name: v for a, v in zip(axes, values) if a.where == "train"}
    if model_over:
        prep = dataclasses.replace(prep, model_config=dataclasses.replace(prep.model_config, **model_over))
    return prep, (dataclasses.replace(tcfg, **train_over) if train_over else tcfg)


def validation_score(model, method: str, val: EncodedDataset, device: str = "cpu", budget: float | None = None) -> float:
    """The number a method is selected by, on the validation split: a one-model-many-budgets method
    (BAA), its mean hard-gate accuracy at budgets 0.25 / 0.5 / 0.75 (one model serves every budget); a
    per-budget model (static), its accuracy at its budget; a per-input method (BudgetFormer), its
    accuracy with its own per-input budgets; dense, its accuracy."""
    m = get_method(method)
    if m.per_input:
        from .measure.perinput import budgetformer_summary

        return budgetformer_summary(model, val, device=device)["accuracy"]
    if m.has_budget and m.one_model_per_budget:
        return evaluate(model, val, budget=budget, hard=True, device=device).accuracy
    if m.has_budget and model.gate is not None:
        return statistics.fmean(evaluate(model, val, budget=b, hard=True, device=device).accuracy for b in BAA_SELECTION_BUDGETS)
    return evaluate(model, val, device=device).accuracy


SCORE_WORDS = {"dense": "validation accuracy of the dense warm start",
               "baa": "mean validation accuracy of BAA's hard operating points at budgets 0.25, 0.5, 0.75",
               "static": "validation accuracy at the model's budget",
               "budgetformer": "validation accuracy of BudgetFormer (its own per-input budgets)"}


def select_and_fit(prep, method: str, tcfg: TrainConfig, grid: tuple[GridAxis, ...], *, fit: Callable, fit_dense: Callable,
                   budget: float | None = None, callbacks=(), stop=None, log: Callable[[str], None] | None = None) -> Selected:
    """Train every grid point, score each on validation, keep the best; return the chosen point's
    dense warm start and method model (they are the seed's models: nothing is trained twice). ``fit`` and
    ``fit_dense`` are the pipeline's (passed in: the pipeline sits above this module)."""

    full_prep = prep
    prep = prep.without_test()  # the selection never holds the test split
    dense_axes = tuple(a for a in grid if a.stage == "dense")
    method_axes = tuple(a for a in grid if a.stage == "method" and method != "dense")
    record = {"seed": tcfg.seed, "stages": []}

    def run_stage(axes, train_one, score_words):
        best = None
        scores = []
        for values in itertools.product(*(a.values for a in axes)) if axes else [()]:
            trained = train_one(values)
            score = trained[-1]
            scores.append({**{a.name: v for a, v in zip(axes, values)}, "score": score})
            if log and axes:
                log(f"selection (seed {tcfg.seed}): {dict(zip((a.name for a in axes), values))} -> {score:.4f} ({score_words})")
            if best is None or score > best[-1]:
                best = trained
        if axes:
            chosen = {a.name: v for a, v in zip(axes, best[0])}
            record["stages"].append({"stage": axes[0].stage, "score": score_words, "scores": scores, "chosen": chosen})
        return best

    def train_dense_point(values):
        p, t = _apply(prep, tcfg, dense_axes, values)
        if t.dense_epochs <= 0 and p.init_model is not None:  # a fine-tuned classifier as it is: no warm start
            d = p.new_model().to(t.device)
        else:
            d = fit_dense(p, t, callbacks, stop)
        return values, p, t, d, validation_score(d, "dense", p.val, t.device)

    _, p, t, dense, _ = run_stage(dense_axes, train_dense_point, SCORE_WORDS["dense"])
    model, history = None, []
    if method != "dense":
        def train_method_point(values):
            _, t2 = _apply(p, t, method_axes, values)
            res = fit(p, method, t2, budget=budget, dense=copy.deepcopy(dense).to(t2.device), callbacks=callbacks, stop=stop)
            score = validation_score(res.model.to(t2.device), method, p.val, t2.device, budget)
            return values, t2, res.model, res.history, score

        _, t, model, history, _ = run_stage(method_axes, train_method_point, SCORE_WORDS.get(method, "validation accuracy"))
        model = model.cpu().eval()
    record["chosen"] = {k: v for s in record["stages"] for k, v in s["chosen"].items()}
    chosen_prep = dataclasses.replace(full_prep, model_config=p.model_config)
    return Selected(chosen_prep, t, dense.cpu().eval(), model, record, history)


def selection_card(grid: tuple[GridAxis, ...], records: list[dict], method: str) -> dict:
    """The card's ``selection``: what was tuned, on which split, the grid, the rule and every score."""
    if not records:
        return {"tuned": [], "split": None, "note": "nothing tuned for this model: the preset recipe was used as is"}
    return {"tuned": [a.name for a in grid], "split": SELECTION_SPLIT, "test_split_used": False,
            "grid": {a.name: list(a.values) for a in grid},
            "score": {a.name: SCORE_WORDS["dense"] if a.stage == "dense" else SCORE_WORDS.get(method, "validation accuracy")
                      for a in grid},
            "rule": "highest validation score; ties go to the first value listed; dense-stage axes are chosen first, "
                    "then the later phases' axes from the chosen warm start; done separately for every seed",
            "per_seed": records}


# ---------------------------------------------------------------- seeds, intervals, differences
def _correct(row: dict) -> torch.Tensor | None:
    return unpack_correct(row["correct"]) if row.get("correct") else None


def aggregate_rows(rows: list[dict]) -> dict:
    """Rows of several seeds (same method and budget) -> one row: mean accuracy, std over seeds, and
    ``accuracy_ci``, the bootstrap interval of the seed-mean accuracy over test examples (from the
    per-example results when the rows carry them). Heads, layout and latency stay those of the first
    row's seed (``layout_seed``): the shipped weights' own."""
    first = {k: v for k, v in rows[0].items() if k != "correct"}
    accs = [r["accuracy"] for r in rows]
    first["accuracy"] = statistics.fmean(accs)
    first["accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
    first["accuracy_seeds"] = accs
    first["seeds"] = len(accs)
    if len(rows) > 1:
        first["layout_seed"] = rows[0].get("seed")
        hits = [_correct(r) for r in rows]
        if all(h is not None for h in hits):
            first["accuracy_ci"] = list(bootstrap_ci(torch.stack([h.double() for h in hits]).mean(0)))
        else:
            first["accuracy_ci"] = None  # per-example results missing: only the std over seeds is known
    return first


def paired_difference(a_rows: list[dict], b_rows: list[dict], a_name: str, b_name: str) -> dict | None:
    """``A - B`` in accuracy over the same test examples, averaged over the seeds both have, with its
    paired bootstrap interval; ``verdict`` is "tie" when the interval holds 0."""
    a_by_seed = {r.get("seed"): r for r in a_rows}
    pairs = [(a_by_seed[r.get("seed")], r) for r in b_rows if r.get("seed") in a_by_seed]
    if not pairs:
        return None
    hits = [(_correct(a), _correct(b)) for a, b in pairs]
    diffs = [a["accuracy"] - b["accuracy"] for a, b in pairs]
    out = {"a": a_name, "b": b_name, "difference": statistics.fmean(diffs), "seeds": [a.get("seed") for a, _ in pairs],
           "difference_std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0}
    if all(ha is not None and hb is not None for ha, hb in hits):
        per_example = torch.stack([ha.double() - hb.double() for ha, hb in hits]).mean(0)
        lo, hi = bootstrap_ci(per_example)
        out["ci"] = [lo, hi]
        out["verdict"] = "tie" if lo <= 0.0 <= hi else (f"{a_name} higher" if lo > 0 else f"{b_name} higher")
    return out


def differences(per_seed: dict[str, list[list[dict]]]) -> list[dict]:
    """The comparisons a reviewer reads first: BAA at each budget against the dense model with equal
    epochs (and the warm start alone); what the extra dense epochs buy; each per-budget baseline
    against BAA at its budget; BudgetFormer against its equal-epoch dense model."""
    def by_budget(method):
        runs = per_seed.get(method) or []
        out: dict[float, list[dict]] = {}
        for rows in runs:
            for r in rows:
                out.setdefault(round(r["budget"], 6), []).append(r)
        return out

    single = {m: [r for rows in per_seed.get(m) or [] for r in rows] for m in ("dense", "dense_equal", "budgetformer")}
    result = []
    baa = by_budget("baa")
    for b, rows in sorted(baa.items()):
        for ref in ("dense_equal", "dense"):
            if single[ref]:
                d = paired_difference(rows, single[ref], f"baa@{b:g}", ref)
                if d:
                    result.append(d)
    if single["dense_equal"] and single["dense"]:
        d = paired_difference(single["dense_equal"], single["dense"], "dense_equal", "dense")
        if d:
            result.append(d)
    for method in ("static", "recovery", "posthoc"):
        for b, rows in sorted(by_budget(method).items()):
            if b in baa:
                d = paired_difference(rows, baa[b], f"{method}@{b:g}", f"baa@{b:g}")
                if d:
                    result.append(d)
    if single["budgetformer"]:
        for ref in ("dense_equal", "dense"):
            if single[ref]:
                d = paired_difference(single["budgetformer"], single[ref], "budgetformer", ref)
                if d:
                    result.append(d)
    return result


def controls_card(table: dict[str, list[dict]], chance_levels: dict, epochs: dict[str, float]) -> dict:
    """The card's ``controls`` from the aggregated table's no-attention rows and the chance levels."""
    def entry(method, what):
        rows = table.get(method) or []
        if not rows:
            return None
        r = rows[0]
        return {"accuracy": r["accuracy"], "accuracy_ci": r.get("accuracy_ci"), "accuracy_std": r.get("accuracy_std"),
                "seeds": r.get("seeds", 1), "epochs": r.get("epochs"), "what": what}

    trained_epochs = epochs.get("no_attention")
    return {"no_attention_eval": entry("no_attention_eval", "this card's weights (every seed's method model) evaluated "
                                       "with every head closed: attention adds only its output bias"),
            "no_attention_trained": entry("no_attention", f"the same network trained with every head closed for "
                                          f"{trained_epochs:g} epochs (the method's total)" if trained_epochs else ""),
            "chance": chance_levels}


def trained_on(device: str) -> dict:
    """Where training ran, written by code (not by hand)."""
    import platform

    out = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
           "cpu_threads_available": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _control_accuracy(entry) -> float | None:
    """A control's accuracy: an entry {"accuracy": ...} (every card written since issue 11), or a bare
    number (earlier adaptive cards)."""
    if isinstance(entry, dict):
        return entry.get("accuracy")
    return float(entry) if isinstance(entry, (int, float)) and not isinstance(entry, bool) else None


def controls_table(cards: list[dict]) -> list[dict]:
    """One row per card with controls: the model's own accuracy at budget 0.5 (or its only row), and the
    no-attention and chance controls beside it (what attention carries on that task at all)."""
    rows = []
    for card in cards:
        c = card.get("controls") or {}
        if not c:
            continue
        sweeps = card.get("sweeps") or {}
        own = next((r for r in sweeps.get(card.get("method"), []) if abs(r.get("budget", 1.0) - 0.5) < 1e-9), None)
        own = own or (sweeps.get(card.get("method")) or [None])[0]
        chance_levels = c.get("chance") if isinstance(c.get("chance"), dict) else {}
        rows.append({"model": card.get("name"), "task": card.get("task"), "method": card.get("method"),
                     "accuracy (method)": own.get("accuracy") if own else None,
                     "every head closed (evaluated)": _control_accuracy(c.get("no_attention_eval")),
                     "trained with no attention": _control_accuracy(c.get("no_attention_trained")),
                     "chance (majority class)": chance_levels.get("majority_class_accuracy"),
                     "chance (1/C)": chance_levels.get("uniform"),
                     # each measured column's 95% interval over test examples, where the card has one (1/C is exact)
                     "intervals": {k: list(ci) for k, ci in (
                         ("accuracy (method)", (own or {}).get("accuracy_ci")),
                         ("every head closed (evaluated)", _control_ci(c.get("no_attention_eval"))),
                         ("trained with no attention", _control_ci(c.get("no_attention_trained"))),
                         ("chance (majority class)", chance_levels.get("majority_class_accuracy_ci"))) if _is_interval(ci)}})
    return rows


def _control_ci(entry):
    return entry.get("accuracy_ci") if isinstance(entry, dict) else None


def _is_interval(ci) -> bool:
    return (isinstance(ci, (list, tuple)) and len(ci) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in ci))
