"""Take home a faster model: export the sliced model at a budget, and measure every way to deploy it.

``export_model`` writes the model at one operating point as a folder that ``load_checkpoint`` opens:
the kept heads only (gates removed: at a hard operating point a kept head counts fully, so there
is nothing to fold), every weight in the file (no package needed for the word embeddings), a
``config.json`` that also carries Hugging Face's keys (``model_type``, sizes, ``id2label``,
``pruned_heads``), the tokenizer, and optionally ``model.onnx`` / ``model.int8.onnx``. The export
is loaded back from disk and measured before it is moved into place: its card records accuracy
and latency of what was written, not of the model it came from.

``bench_deploy`` times the deployment choices side by side on the same test batches (the pairwise
protocol of ``bench.compare_latency``, against Hugging Face's BertModel) and measures each one's
accuracy on the test split.

Both are pure functions over a loaded ``Checkpoint`` and an encoded test split, shared by the CLI
(``python -m baa_core export`` / ``bench-deploy``) and the app's "Export this budget" button.
"""
from __future__ import annotations

import copy
import datetime as _dt
import io
import json
import math
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .bench import compare_latency, latency_batches, padded_lengths
from .checkpoint import FORMAT, Checkpoint, load_checkpoint, replace_folder, save_checkpoint, update_card
from .cost import flop_speedup
from .data import EncodedDataset, collate, iterate_batches
from .encoder import BudgetedClassifier
from .gates import as_budget_tensor
from .prune import kept_heads, layout_mask, slice_heads
from .runtimes import (ONNX_PACKAGES, OnnxRunner, export_onnx, hf_reference, logits_of, quantize_int8, quantize_onnx_int8,
                       require, word_tokenizer_json)
from .tokenize import WordTokenizer

VARIANTS = ("hf_dense", "dense", "sliced", "dense_int8", "sliced_int8", "onnx_dense", "onnx_sliced", "onnx_sliced_int8")
ONNX_FILE, ONNX_INT8_FILE, WORD_TOKENIZER_FILE = "model.onnx", "model.int8.onnx", "tokenizer.json"


class ExportError(ValueError):
    """An export that cannot be done as asked; the message is one sentence for the user."""


# ---------------------------------------------------------------- the operating point
def operating_mask(model: BudgetedClassifier, budget: float | None) -> torch.Tensor:
    """(L, H) 0/1: the heads kept at ``budget`` (BAA / static: the hard operating point; ungated: all heads)."""
    cfg = model.config
    if model.controllers is not None:
        raise ExportError("a BudgetFormer model picks its heads per input, so no single budget can be exported; "
                          "export a BAA, static-gate or dense model")
    if budget is not None:
        try:
            as_budget_tensor(budget)
        except ValueError:
            raise ExportError(f"the budget must lie in (0, 1], not {budget!r}") from None
    if model.gate is None:  # every head it has
        return layout_mask(cfg.n_layers, cfg.n_heads, cfg.layer_heads)
    if budget is None:
        raise ExportError("this model has budget gates: give the budget to export (e.g. --budget 0.5)")
    return model.gate.hard(budget).detach().cpu()


def sliced_at(model: BudgetedClassifier, budget: float | None) -> tuple[BudgetedClassifier, torch.Tensor]:
    """The ungated model that runs only the heads kept at ``budget``, and that mask."""
    mask = operating_mask(model, budget)
    if model.is_sliced:  # already sliced and ungated: it is its own operating point
        small = copy.deepcopy(model).cpu().eval()
    else:
        small = slice_heads(model.cpu().eval(), mask).eval()
    small.config.gating, small.config.static_budgets = "dense", []
    return small, mask


# ---------------------------------------------------------------- where it goes
def check_target(out: str | Path, overwrite: bool = False, source: str | Path | None = None) -> Path:
    """The export folder, after checking (before any work) that it may and can be written."""
    out = Path(out).expanduser()
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise ExportError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
        if not out.is_dir():
            raise ExportError(f"{out} is a file, not a folder; choose another --out")
        if source is not None and out.resolve() == Path(source).resolve():
            raise ExportError(f"{out} is the model being exported; write the export to another folder")
        try:
            is_checkpoint = json.loads((out / "config.json").read_text()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            is_checkpoint = False
        if not is_checkpoint and any(out.iterdir()):
            raise ExportError(f"{out} is not a checkpoint folder; --overwrite replaces only an earlier export or checkpoint")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=f".{out.name}.probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ExportError(f"cannot write to {parent} ({exc.strerror or exc})") from None
    return out


def storage_dtype_of(ckpt: Checkpoint) -> str:
    """The dtype the source checkpoint stored its weights in: the export keeps it (rounding already happened)."""
    try:
        return json.loads((Path(ckpt.path) / "config.json").read_text()).get("dtype") or "float32"
    except (OSError, TypeError, ValueError):
        return "float32"


def hf_config_keys(model: BudgetedClassifier, mask: torch.Tensor, labels: list[str], dtype: str) -> dict:
    """Hugging Face's config.json keys for the exported model (AutoConfig reads them; per-layer head counts
    are what ``pruned_heads`` says was removed, in the original head numbering)."""
    cfg = model.config
    keep = kept_heads(mask)
    names = labels or [str(i) for i in range(cfg.n_classes)]
    return {
        "model_type": "bert", "architectures": ["BudgetedClassifier"], "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.d_model, "num_hidden_layers": cfg.n_layers, "num_attention_heads": int(mask.shape[1]),
        "attention_head_size": cfg.head_dim, "intermediate_size": cfg.d_ffn, "hidden_act": "gelu",
        "max_position_embeddings": cfg.max_len, "type_vocab_size": cfg.type_vocab_size, "layer_norm_eps": cfg.layer_norm_eps,
        "pad_token_id": cfg.pad_id, "torch_dtype": dtype, "id2label": {str(i): n for i, n in enumerate(names)},
        "label2id": {n: i for i, n in enumerate(names)}, "heads_per_layer": [len(k) for k in keep],
        "pruned_heads": {str(layer): [h for h in range(mask.shape[1]) if h not in k] for layer, k in enumerate(keep)
                         if len(k) < mask.shape[1]},
        "classifier_pooling": "mean of the final hidden states over non-padding tokens, then one Linear layer",
    }


# ---------------------------------------------------------------- measuring runners
@torch.inference_mode()
def accuracy_of(runner: Callable, test: EncodedDataset, indices=None, batch_size: int = 32) -> float:
    """Accuracy of ``runner(input_ids, attention_mask)`` on ``test`` (or its ``indices``), padded per batch."""
    correct = n = 0
    for batch in iterate_batches(test, batch_size, indices=indices):
        pred = logits_of(runner(batch["input_ids"], batch["attention_mask"])).argmax(-1)
        correct += int((pred == batch["labels"]).sum())
        n += len(pred)
    return correct / max(1, n)


@torch.inference_mode()
def max_logit_diff(runner: Callable, reference: Callable, batches: list[dict]) -> float:
    return max(float((logits_of(runner(b["input_ids"], b["attention_mask"])).float()
                      - logits_of(reference(b["input_ids"], b["attention_mask"])).float()).abs().max()) for b in batches)


def median_ci(values: list[float], level: float = 0.95) -> list[float]:
    """Distribution-free confidence interval of the median (order statistics); the range when rounds are too few."""
    x, n = sorted(values), len(values)
    alpha, k, cdf = 1.0 - level, 0, 0.0
    while k < n and cdf + math.comb(n, k) / 2**n <= alpha / 2:
        cdf += math.comb(n, k) / 2**n
        k += 1
    k = max(k, 1)
    return [x[k - 1], x[n - k]]


def random_batches(model: BudgetedClassifier, batch_size: int = 8, n_batches: int = 4, length: int = 64, seed: int = 0):
    """Token batches for timing when no test data is on hand (random ids at one length; the card says so)."""
    g = torch.Generator().manual_seed(seed)
    T = min(length, model.config.max_len)
    lo = 1 if model.config.pad_id == 0 else 0
    return [collate(torch.randint(lo, model.config.vocab_size, (batch_size, T), generator=g).tolist(), model.config.pad_id)
            for _ in range(n_batches)]


def measure_variants(runners: dict[str, Callable], reference: str, *, batches: list[dict], test: EncodedDataset | None,
                     indices=None, rounds: int = 10, threads: int = 1, fp32_of: dict[str, str] | None = None,
                     progress: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Latency (pairwise against ``reference``, interleaved rounds), accuracy on ``test`` and the largest logit
    difference from each variant's fp32 counterpart (``fp32_of``: variant -> variant), per variant."""
    say = progress or (lambda m: None)
    out: dict[str, dict] = {}
    fp32_of = fp32_of or {}
    for name, runner in runners.items():
        row = {"variant": name}
        if test is not None and len(test):
            say(f"{name}: accuracy on {len(indices) if indices is not None else len(test)} test examples…")
            row["accuracy"] = accuracy_of(runner, test, indices)
        if name in fp32_of:
            row["max_abs_logit_diff"] = max_logit_diff(runner, runners[fp32_of[name]], batches)
        out[name] = row
    say(f"timing {len(runners)} variants, {rounds} rounds, {threads} thread(s)…")
    c = compare_latency(runners, batches, threads, rounds=rounds, reference=reference)
    for name, row in out.items():
        row["ms_per_batch"] = c.median_ms[name]
        row["speedup"] = c.speedup[name]
        row["speedup_ci"] = [1.0, 1.0] if name == reference else median_ci(c.ratios[name])
    return out


# ---------------------------------------------------------------- export
@dataclass
class ExportResult:
    folder: Path
    card: dict

    @property
    def variants(self) -> list[dict]:
        return self.card["export"]["variants"]


def onnx_missing() -> str | None:
    """Why --onnx cannot run here, in one sentence; None when it can."""
    try:
        require(*ONNX_PACKAGES, purpose="--onnx")
    except ImportError as exc:
        return str(exc)
    return None


def export_model(ckpt: Checkpoint, out: str | Path, budget: float | None, *, int8: bool = False, onnx: bool = False,
                 overwrite: bool = False, test: EncodedDataset | None = None, indices=None, data_note: str = "",
                 int8_backend: str = "torch", rounds: int = 10, n_latency_batches: int = 8, threads: int = 1,
                 command: str = "", progress: Callable[[str], None] | None = None) -> ExportResult:
    """Write the sliced model at ``budget`` to ``out`` (atomically), measure it after export, and card it.

    ``test``: the encoded test split for accuracy (``indices``: a subset of it) and real-length timing
    batches; None = no accuracy, random-token timing batches (the card says which, and ``data_note`` why).
    """
    say = progress or (lambda m: None)
    out = check_target(out, overwrite, ckpt.path)
    if onnx and (why := onnx_missing()):
        raise ExportError(why)
    source = ckpt.model
    small, mask = sliced_at(source, budget)
    dtype = storage_dtype_of(ckpt)
    labels = list(ckpt.card.get("labels") or small.config.labels)
    extra = hf_config_keys(small, mask, labels, dtype)
    stage = out.parent / f".{out.name}.export-{uuid.uuid4().hex[:8]}"
    try:
        say(f"writing the sliced model ({int(mask.sum())}/{mask.numel()} heads: {[len(k) for k in kept_heads(mask)]})…")
        save_checkpoint(stage, small, ckpt.tokenizer, {}, dtype=dtype, extra_config=extra)
        files = {"weights": "model.safetensors", "config": "config.json", "card": "card.json"}
        tokenizer_file = _write_tokenizer_json(ckpt.tokenizer, stage)
        files["tokenizer"] = tokenizer_file
        exported = load_checkpoint(stage)  # everything below measures what was written
        model = exported.model
        have_data = test is not None and len(test) > 0
        batches = (latency_batches(test, 8, n_latency_batches) if have_data
                   else random_batches(model, 8, max(1, n_latency_batches // 2)))
        runners: dict[str, Callable] = {"dense": slice_heads(source, torch.ones_like(mask)) if not source.is_sliced else source,
                                        "sliced": model}
        if int8:
            say(f"quantizing the Linear layers to int8 ({int8_backend})…")
            runners["sliced_int8"] = quantize_int8(model, int8_backend)
        if onnx:
            say("exporting to ONNX…")
            export_onnx(model, stage / ONNX_FILE, batches[0])
            files["onnx"] = ONNX_FILE
            runners["onnx_sliced"] = OnnxRunner(stage / ONNX_FILE, threads)
            if int8:
                quantize_onnx_int8(stage / ONNX_FILE, stage / ONNX_INT8_FILE)
                files["onnx_int8"] = ONNX_INT8_FILE
                runners["onnx_sliced_int8"] = OnnxRunner(stage / ONNX_INT8_FILE, threads)
        masked = _MaskedAt(source, mask)
        check = max_logit_diff(model, masked, batches)
        if check > 1e-4:
            raise ExportError(f"the exported model's logits differ from the masked model's by {check:.2g}; not written")
        if onnx and (d := max_logit_diff(runners["onnx_sliced"], model, batches)) > 1e-4:
            raise ExportError(f"ONNX Runtime's logits differ from the exported model's by {d:.2g}; not written")
        fp32 = {"sliced_int8": "sliced", "onnx_sliced": "sliced", "onnx_sliced_int8": "sliced"}
        rows = measure_variants(runners, "dense", batches=batches, test=test if have_data else None, indices=indices,
                                rounds=rounds, threads=threads, fp32_of={k: v for k, v in fp32.items() if k in runners},
                                progress=say)
        n = (len(indices) if indices is not None else len(test)) if have_data else 0
        card = _export_card(ckpt, exported, mask, budget, rows, batches, have_data, n, data_note, files, dtype, int8,
                            int8_backend, onnx, check, rounds, threads, command)
        update_card(stage, card)
        replace_folder(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    say(f"wrote {out}")
    return ExportResult(out, card)


class _MaskedAt(torch.nn.Module):
    """The source model run with a fixed 0/1 head mask (masked execution: every head computed, some zeroed)."""

    def __init__(self, model: BudgetedClassifier, mask: torch.Tensor):
        super().__init__()
        self.model, self.mask = model, mask

    def forward(self, input_ids, attention_mask):
        if self.model.is_sliced:
            return self.model(input_ids, attention_mask)
        return self.model(input_ids, attention_mask, head_mask=self.mask)


def _write_tokenizer_json(tokenizer, folder: Path) -> str:
    """The tokenizer as one ``tokenizers`` JSON file; returns its path inside the export."""
    if isinstance(tokenizer, WordTokenizer):
        (folder / WORD_TOKENIZER_FILE).write_text(word_tokenizer_json(tokenizer), encoding="utf-8")
        return WORD_TOKENIZER_FILE
    fast = folder / "tokenizer" / "tokenizer.json"
    if not fast.exists():  # a slow tokenizer was saved; its fast twin writes the one-file form
        backend = getattr(tokenizer.tok, "backend_tokenizer", None)
        if backend is None:
            return "tokenizer/"
        backend.save(str(fast))
    return "tokenizer/tokenizer.json"


def _export_card(ckpt, exported, mask, budget, rows, batches, have_data, n, data_note, files, dtype, int8, int8_backend, onnx,
                 check, rounds, threads, command) -> dict:
    from .recipes import environment

    src = ckpt.card
    cfg = exported.model.config
    hpl = [len(k) for k in kept_heads(mask)]
    lengths = padded_lengths(batches)
    sliced = rows["sliced"]
    method = src.get("method", "dense")
    row = {"budget": budget if budget is not None else 1.0, "accuracy": sliced.get("accuracy"), "est_cost": float(mask.mean()),
           "active_heads": int(mask.sum()), "total_heads": mask.numel(), "latency_ms": sliced["ms_per_batch"],
           "dense_latency_ms": rows["dense"]["ms_per_batch"], "speedup": sliced["speedup"],
           "flop_speedup": flop_speedup(ckpt.model.config, hpl, lengths) if not ckpt.model.is_sliced else None, "method": method,
           "heads_per_layer": hpl, "n": n, "threads": threads}
    variants = [{**{k: v for k, v in r.items() if k != "speedup"}, "speedup_vs_dense": r["speedup"], "n": n if "accuracy" in r else 0}
                for r in rows.values()]
    where = "the test split" if have_data else f"random token ids of length {batches[0]['input_ids'].shape[1]} (no test data)"
    return {
        "name": ckpt.name + (f"-b{budget:.2f}" if budget is not None else ""),
        "task": src.get("task"), "method": method, "model_kind": src.get("model_kind"), "base_model": src.get("base_model"),
        "architecture": f"{cfg.n_layers} layers x {hpl} heads (of {mask.shape[1]}), d={cfg.d_model}, ffn={cfg.d_ffn}, "
                        f"max_len={cfg.max_len}",
        "labels": list(src.get("labels") or cfg.labels), "data": src.get("data"),
        "created": _dt.date.today().isoformat(), "command": command, "environment": environment(),
        "sweeps": {method: [row]},
        "latency": {"command": command, "environment": environment(), "batches": len(batches), "batch_size": 8,
                    "rounds": rounds, "mean_padded_length": sum(lengths) / len(lengths), "inputs": where,
                    "protocol": "each variant timed beside the source model's dense form in interleaved rounds; "
                                "speedup = median of the per-round ratios"},
        "export": {
            "source": str(ckpt.path or ckpt.name), "source_method": method, "budget": budget, "heads_per_layer": hpl,
            "kept_heads": kept_heads(mask), "active_heads": int(mask.sum()), "total_heads": mask.numel(),
            "gating": "removed: at a hard operating point every kept head counts fully, so no gate value is folded",
            "dtype": dtype, "files": files, "accuracy_n": n,
            "accuracy_data": ("the test split" + (f" ({n} examples)" if n else "")) if have_data else (data_note or "no test data"),
            "max_abs_logit_diff_vs_masked": check, "variants": variants,
            "int8": ({"backend": int8_backend, "what": "dynamic int8: Linear weights per output channel, activations per "
                      "batch at run time", "apply": "baa_core.runtimes.quantize_int8(load_checkpoint(folder).model, "
                      f"{int8_backend!r})"} if int8 else None),
            "onnx": ({"file": ONNX_FILE, "int8_file": files.get("onnx_int8"), "inputs": {
                "input_ids": "int64 (batch, length)", "attention_mask": "int64 (batch, length), 1 = token, 0 = padding"},
                "outputs": {"logits": f"float32 (batch, {cfg.n_classes})"}, "pad_id": cfg.pad_id, "max_length": cfg.max_len,
                "tokenizer": files["tokenizer"]} if onnx else None),
        },
        "notes": (f"Sliced from {ckpt.name} at budget {budget}: only the kept heads' weights are stored. Accuracy and latency "
                  f"were measured on the written files after export ({where})." if budget is not None else
                  f"Exported from {ckpt.name} with all of its heads (it has no budget gates)."),
    }


def zip_folder(folder: str | Path) -> bytes:
    """A zip of ``folder`` (files under a top-level folder of the same name), in memory."""
    folder = Path(folder)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, Path(folder.name) / path.relative_to(folder))
    return buf.getvalue()


# ---------------------------------------------------------------- bench-deploy
def bench_deploy(ckpt: Checkpoint, budget: float | None, test: EncodedDataset | None, *, batch_size: int = 8,
                 n_batches: int = 8, rounds: int = 10, threads: int = 1, indices=None, int8_backend: str = "torch",
                 onnx: bool | None = None, progress: Callable[[str], None] | None = None) -> list[dict]:
    """One row per deployment variant (``VARIANTS``, those available here): ms per batch and speedup against
    Hugging Face's BertModel (SDPA, fp32, same weights), timed side by side; accuracy on ``test``."""
    say = progress or (lambda m: None)
    model = ckpt.model.cpu().eval()
    small, mask = sliced_at(model, budget)
    gated = model.gate is not None
    dense = slice_heads(model, torch.ones_like(mask)) if not model.is_sliced else small
    have_data = test is not None and len(test) > 0
    batches = latency_batches(test, batch_size, n_batches) if have_data else random_batches(model, batch_size, n_batches)
    runners: dict[str, Callable] = {}
    notes: dict[str, str] = {}
    try:
        runners["hf_dense"] = hf_reference(dense)
    except (ValueError, ImportError) as exc:
        notes["hf_dense"] = str(exc)
    runners["dense"] = dense
    if gated:
        runners["sliced"] = small
    say("quantizing to int8…")
    runners["dense_int8"] = quantize_int8(dense, int8_backend)
    if gated:
        runners["sliced_int8"] = quantize_int8(small, int8_backend)
    onnx = (onnx_missing() is None) if onnx is None else onnx
    if onnx and (why := onnx_missing()):
        raise ExportError(why)
    with tempfile.TemporaryDirectory(prefix="baa-deploy-") as tmp:
        if onnx:
            say("exporting to ONNX…")
            runners["onnx_dense"] = OnnxRunner(export_onnx(dense, Path(tmp) / "dense.onnx", batches[0]), threads)
            if gated:
                runners["onnx_sliced"] = OnnxRunner(export_onnx(small, Path(tmp) / "sliced.onnx", batches[0]), threads)
                runners["onnx_sliced_int8"] = OnnxRunner(quantize_onnx_int8(Path(tmp) / "sliced.onnx",
                                                                            Path(tmp) / "sliced.int8.onnx"), threads)
        else:
            notes["onnx"] = onnx_missing() or "not asked for"
        reference = "hf_dense" if "hf_dense" in runners else "dense"
        fp32 = {"hf_dense": "dense", "dense_int8": "dense", "sliced_int8": "sliced", "onnx_dense": "dense",
                "onnx_sliced": "sliced", "onnx_sliced_int8": "sliced"}
        measured = measure_variants(runners, reference, batches=batches, test=test if have_data else None, indices=indices,
                                    rounds=rounds, threads=threads, progress=say,
                                    fp32_of={k: v for k, v in fp32.items() if k in runners and v in runners})
    lengths = padded_lengths(batches)
    n = (len(indices) if indices is not None else len(test)) if have_data else 0
    hpl_small = [len(k) for k in kept_heads(mask)]
    rows = []
    for name in [v for v in VARIANTS if v in measured]:
        r = measured[name]
        sliced_variant = "sliced" in name
        rows.append({
            "variant": name, "ms_per_batch": r["ms_per_batch"],
            "speedup_vs_hf_dense": r["speedup"] if reference == "hf_dense" else None,
            "speedup_ci": r["speedup_ci"], "accuracy": r.get("accuracy"), "n": n,
            "max_abs_logit_diff": r.get("max_abs_logit_diff"), "budget": budget if sliced_variant else 1.0,
            "heads_per_layer": hpl_small if sliced_variant else dense.config.layer_heads,
            "int8_backend": ("onnxruntime" if name.startswith("onnx") else int8_backend) if name.endswith("int8") else None,
            "reference": reference, "threads": threads, "batch_size": batch_size, "n_batches": len(batches), "rounds": rounds,
            "mean_padded_length": round(sum(lengths) / len(lengths), 1),
            "inputs": "test" if have_data else "random tokens (no test data)",
        })
    if notes:
        say("left out: " + "; ".join(f"{k}: {v}" for k, v in notes.items()))
    return rows
