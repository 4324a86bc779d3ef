"""Deployment choices measured side by side: HF BertModel, this project's dense and sliced models,
dynamic int8, ONNX Runtime; latency in interleaved pairs and accuracy on the test split.

``bench_deploy`` is ``python -m baa_core bench-deploy``; ``measure_variants`` also measures an export
right after it is written (``pipeline.export_model``). Every variant is a runner called as
``runner(input_ids, attention_mask)``; latency uses ``compare_latency``'s pairwise protocol (each
variant timed right beside a fresh timing of the reference, in shuffled rounds), with a bootstrap 95%
interval of the median per-round ratio and the spread of single rounds.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from ..io.data import EncodedDataset, collate, iterate_batches
from ..methods import operating_point
from ..model.encoder import BudgetedClassifier
from ..model.runtimes import OnnxRunner, export_onnx, hf_reference, logits_of, onnx_missing, quantize_int8, quantize_onnx_int8
from ..model.surgery import all_heads_mask, kept_heads, layout_mask, slice_heads
from .latency import compare_latency, latency_batches, median_ci, padded_lengths

VARIANTS = ("hf_dense", "dense", "sliced", "dense_int8", "sliced_int8", "onnx_dense", "onnx_sliced", "onnx_sliced_int8")
# Each variant's fp32 counterpart with the same heads: the logits it is compared with.
FP32_OF = {"hf_dense": "dense", "dense_int8": "dense", "sliced_int8": "sliced", "onnx_dense": "dense", "onnx_sliced": "sliced",
           "onnx_sliced_int8": "sliced"}
# The torch model each ONNX Runtime file was exported from: "is the export at least as fast?"
TORCH_OF = {"onnx_dense": "dense", "onnx_sliced": "sliced", "onnx_sliced_int8": "sliced_int8"}


# ---------------------------------------------------------------- the operating point
def export_mask(model: BudgetedClassifier, budget: float | None) -> torch.Tensor:
    """(L, H) 0/1: the heads kept at ``budget`` (BAA / static: the hard operating point; ungated: all its heads)."""
    cfg = model.config
    if model.controllers is not None:
        raise ValueError("a BudgetFormer model picks its heads per input, so no single budget can be exported; "
                         "export a BAA, static-gate or dense model")
    if budget is not None and not 0.0 < float(budget) <= 1.0:
        raise ValueError(f"the budget must lie in (0, 1], not {budget!r}")
    if model.gate is None:  # every head it has
        return layout_mask(cfg.n_layers, cfg.n_heads, cfg.layer_heads)
    if budget is None:
        raise ValueError("this model has budget gates: give the budget to export (e.g. --budget 0.5)")
    return operating_point(model, budget).cpu()


def sliced_at(model: BudgetedClassifier, budget: float | None) -> tuple[BudgetedClassifier, torch.Tensor]:
    """The ungated model that runs only the heads kept at ``budget``, and that mask. At a hard operating
    point a kept head counts fully, so no gate value is folded into the weights."""
    mask = export_mask(model, budget)
    if model.is_sliced:  # already sliced and ungated: it is its own operating point
        small = copy.deepcopy(model).cpu().eval()
    else:
        small = slice_heads(model.cpu().eval(), mask).eval()
    small.config.gating, small.config.static_budgets = "dense", []
    return small, mask


def dense_of(model: BudgetedClassifier) -> BudgetedClassifier:
    """The model with every head it has and no gates."""
    return model if model.is_sliced else slice_heads(model.cpu().eval(), all_heads_mask(model.config)).eval()


class MaskedAt(torch.nn.Module):
    """``model`` run with a fixed 0/1 head mask (masked execution: every head computed, some zeroed)."""

    def __init__(self, model: BudgetedClassifier, mask: torch.Tensor):
        super().__init__()
        self.model, self.mask = model, mask

    def forward(self, input_ids, attention_mask):
        if self.model.is_sliced:
            return self.model(input_ids, attention_mask)
        return self.model(input_ids, attention_mask, head_mask=self.mask)


# ---------------------------------------------------------------- measuring runners
@torch.inference_mode()
def accuracy_of(runner: Callable, test: EncodedDataset, indices=None, batch_size: int = 32) -> float:
    """Accuracy of ``runner(input_ids, attention_mask)`` on ``test`` (or its ``indices``).

    The examples are batched in order of length, each batch padded to its longest: every example is
    predicted once, as in any batched use, with far less padding than batches in file order (on AG News
    this halves the tokens computed). Timing uses its own batches (``latency_batches``)."""
    order = list(range(len(test))) if indices is None else list(indices)
    order.sort(key=lambda i: len(test.ids[i]))
    correct = n = 0
    for batch in iterate_batches(test, batch_size, indices=order):
        pred = logits_of(runner(batch["input_ids"], batch["attention_mask"])).argmax(-1)
        correct += int((pred == batch["labels"]).sum())
        n += len(pred)
    return correct / max(1, n)


class _Threads:
    """torch's intra-op thread count set to ``n`` for a block (None: left as it is), then put back."""

    def __init__(self, n: int | None):
        self.n = n

    def __enter__(self):
        self.before = torch.get_num_threads()
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


@torch.inference_mode()
def max_logit_diff(runner: Callable, reference: Callable, batches: list[dict]) -> float:
    """Largest |logit difference| between two runners over ``batches``."""
    return max(float((logits_of(runner(b["input_ids"], b["attention_mask"])).float()
                      - logits_of(reference(b["input_ids"], b["attention_mask"])).float()).abs().max()) for b in batches)


def random_batches(model: BudgetedClassifier, batch_size: int = 8, n_batches: int = 4, length: int = 64, seed: int = 0):
    """Token batches for timing when no test data is on hand (random ids at one length; callers say so)."""
    g = torch.Generator().manual_seed(seed)
    T = min(length, model.config.max_len)
    lo = 1 if model.config.pad_id == 0 else 0
    return [collate(torch.randint(lo, model.config.vocab_size, (batch_size, T), generator=g).tolist(), model.config.pad_id)
            for _ in range(n_batches)]


# Largest |logit difference| from the fp32 counterpart under which a variant computes the same function
# (a second implementation of the same fp32 weights): it then reports that counterpart's accuracy.
SAME_FUNCTION_ATOL = 1e-4


class _FileLock:
    """An exclusive ``flock`` on ``path`` for a block (None: no lock): the machine's measurement lock, taken
    for the timing only, so that the long accuracy pass does not keep other people's benchmarks waiting."""

    def __init__(self, path: str | Path | None, say: Callable[[str], None]):
        self.path, self.say, self.fd = path, say, None

    def __enter__(self):
        if self.path is not None:
            import fcntl

            self.fd = open(self.path, "a")
            self.say(f"waiting for the timing lock {self.path}…")
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        if self.fd is not None:
            self.fd.close()  # closing the file releases the lock


def measure_variants(runners: dict[str, Callable], reference: str, *, batches: list[dict], test: EncodedDataset | None,
                     indices=None, rounds: int = 10, threads: int = 1, accuracy_threads: int | None = None,
                     share_accuracy: bool = True, timing_lock: str | Path | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Per variant: latency (pairwise against ``reference``, interleaved rounds, ``threads`` threads; under
    ``timing_lock`` when given), the largest logit difference from its fp32 counterpart (``FP32_OF``) on
    ``batches``, and accuracy on ``test`` (when given).

    Accuracy uses ``accuracy_threads`` (None: torch's default): it does not depend on the thread count, and
    the full test split at one thread takes minutes per variant. With ``share_accuracy``, a variant whose
    logits are within ``SAME_FUNCTION_ATOL`` of its fp32 counterpart's (HF's BERT or ONNX Runtime running
    the same fp32 weights) reports the counterpart's accuracy, with ``accuracy_from`` naming it; int8
    variants are always evaluated themselves."""
    say = progress or (lambda m: None)
    out: dict[str, dict] = {name: {"variant": name} for name in runners}
    for name, runner in runners.items():
        if FP32_OF.get(name) in runners:
            out[name]["max_abs_logit_diff"] = max_logit_diff(runner, runners[FP32_OF[name]], batches)
    if test is not None and len(test):
        n_acc = len(indices) if indices is not None else len(test)
        shared = {name: FP32_OF[name] for name, row in out.items() if share_accuracy and not name.endswith("int8")
                  and row.get("max_abs_logit_diff") is not None and row["max_abs_logit_diff"] <= SAME_FUNCTION_ATOL}
        for name, runner in runners.items():
            if name in shared:
                continue
            say(f"{name}: accuracy on {n_acc} test examples ({accuracy_threads or torch.get_num_threads()} thread(s))…")
            acc_runner = runner
            if isinstance(runner, OnnxRunner) and accuracy_threads != threads:
                acc_runner = OnnxRunner(runner.path, accuracy_threads or torch.get_num_threads())
            with _Threads(accuracy_threads):
                out[name]["accuracy"] = accuracy_of(acc_runner, test, indices)
        for name, source in shared.items():
            out[name]["accuracy"], out[name]["accuracy_from"] = out[source]["accuracy"], source
    with _FileLock(timing_lock, say):
        say(f"timing {len(runners)} variants beside {reference}, {rounds} rounds, {threads} thread(s)…")
        c = compare_latency(runners, batches, threads, rounds=rounds, reference=reference)
    for name, row in out.items():
        row["ms_per_batch"] = c.median_ms[name]
        row["speedup"] = c.speedup[name]
        row["speedup_ci"] = list(c.speedup_ci(name))  # 95% bootstrap interval of the median per-round ratio
        row["speedup_spread"] = list(c.speedup_spread(name))  # 2.5-97.5 percentiles of single rounds
        torch_twin = TORCH_OF.get(name)
        if torch_twin in runners:
            # Both were timed beside the reference in every round: the ratio of their two ratios is the
            # ONNX file's speedup over its torch model in that round.
            per_round = [a / b for a, b in zip(c.ratios[name], c.ratios[torch_twin])] if torch_twin != reference \
                else list(c.ratios[name])
            row["vs_torch"], row["speedup_vs_torch"] = torch_twin, statistics.median(per_round)
            row["speedup_vs_torch_ci"] = list(median_ci(per_round))
    return out


# ---------------------------------------------------------------- bench-deploy
def bench_deploy(model: BudgetedClassifier, budget: float | None, test: EncodedDataset | None, *, batch_size: int = 8,
                 n_batches: int = 8, rounds: int = 10, threads: int = 1, accuracy_threads: int | None = None, indices=None,
                 int8_backend: str = "torch", onnx: bool | None = None, share_accuracy: bool = True,
                 timing_lock: str | Path | None = None, progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per deployment variant (``VARIANTS``, those available here): ms per batch and speedup against
    Hugging Face's BertModel (SDPA, fp32, same weights), timed side by side on ``batch_size`` test examples
    at their real lengths; accuracy on ``test`` (its ``indices``). ``onnx=None``: when the packages are here."""
    say = progress or (lambda m: None)
    model = model.cpu().eval()
    small, mask = sliced_at(model, budget)
    gated = model.gate is not None
    dense = dense_of(model)
    have_data = test is not None and len(test) > 0
    batches = latency_batches(test, batch_size, n_batches) if have_data else random_batches(model, batch_size, n_batches)
    runners: dict[str, Callable] = {}
    left_out: dict[str, str] = {}
    try:
        runners["hf_dense"] = hf_reference(dense)
    except (ValueError, ImportError) as exc:
        left_out["hf_dense"] = str(exc)
    runners["dense"] = dense
    if gated:
        runners["sliced"] = small
    say(f"quantizing to int8 ({int8_backend})…")
    runners["dense_int8"] = quantize_int8(dense, int8_backend)
    if gated:
        runners["sliced_int8"] = quantize_int8(small, int8_backend)
    why_not_onnx = onnx_missing()
    if onnx and why_not_onnx:
        raise ValueError(why_not_onnx)
    onnx = why_not_onnx is None if onnx is None else onnx
    with tempfile.TemporaryDirectory(prefix="baa-deploy-") as tmp:
        if onnx:
            say("exporting to ONNX…")
            runners["onnx_dense"] = OnnxRunner(export_onnx(dense, Path(tmp) / "dense.onnx"), threads)
            if gated:
                sliced_file = export_onnx(small, Path(tmp) / "sliced.onnx")
                runners["onnx_sliced"] = OnnxRunner(sliced_file, threads)
                runners["onnx_sliced_int8"] = OnnxRunner(quantize_onnx_int8(sliced_file, Path(tmp) / "sliced.int8.onnx"),
                                                         threads)
        else:
            left_out["onnx"] = why_not_onnx or "not asked for"
        reference = "hf_dense" if "hf_dense" in runners else "dense"
        measured = measure_variants(runners, reference, batches=batches, test=test if have_data else None, indices=indices,
                                    rounds=rounds, threads=threads, accuracy_threads=accuracy_threads,
                                    share_accuracy=share_accuracy, timing_lock=timing_lock, progress=say)
    if left_out:
        say("left out: " + "; ".join(f"{k} ({v})" for k, v in left_out.items()))
    lengths = padded_lengths(batches)
    n = (len(indices) if indices is not None else len(test)) if have_data else 0
    rows = []
    for name in [v for v in VARIANTS if v in measured]:
        r = measured[name]
        is_sliced = "sliced" in name
        rows.append({
            "variant": name, "ms_per_batch": r["ms_per_batch"],
            "speedup_vs_hf_dense": r["speedup"] if reference == "hf_dense" else None,
            "speedup_ci": r["speedup_ci"], "speedup_spread": r["speedup_spread"], "accuracy": r.get("accuracy"),
            "accuracy_from": r.get("accuracy_from", name if "accuracy" in r else None),
            "n": n if "accuracy" in r else 0,
            "max_abs_logit_diff": r.get("max_abs_logit_diff"), "budget": budget if is_sliced else 1.0,
            "heads_per_layer": [len(k) for k in kept_heads(mask)] if is_sliced else dense.config.layer_heads,
            "int8_backend": ("onnxruntime" if name.startswith("onnx") else int8_backend) if name.endswith("int8") else None,
            "reference": reference, "speedup_vs_reference": r["speedup"], "threads": threads,
            "vs_torch": r.get("vs_torch"), "speedup_vs_torch": r.get("speedup_vs_torch"),
            "speedup_vs_torch_ci": r.get("speedup_vs_torch_ci"),
            "accuracy_threads": accuracy_threads or torch.get_num_threads(), "batch_size": batch_size,
            "n_batches": len(batches), "rounds": rounds, "mean_padded_length": round(sum(lengths) / len(lengths), 1),
            "inputs": "test examples at their real lengths" if have_data else "random tokens (no test data)",
        })
    return rows
