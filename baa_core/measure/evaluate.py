"""Accuracy and estimated cost of a model at a budget, a head mask, or per-input budgets; the
validation hook the Trainer calls while a method trains; and the intervals that go with an accuracy
(METHODS.md section 5: bootstrap over test examples).

``bootstrap_ci`` resamples test examples with replacement and reports the percentile interval of the
mean of a per-example value: 0/1 correctness gives the accuracy's interval; the per-example mean over
seeds gives the interval of a seed-averaged accuracy; a paired difference a_i - b_i (same examples)
gives the interval of "A - B". The resampling stream is seeded, so a card's interval is reproducible.
"""
from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..io.data import EncodedDataset, iterate_batches
from ..methods import Method
from .intervals import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, bootstrap_ci  # noqa: F401 (re-exported)


@dataclass
class EvalResult:
    accuracy: float
    est_cost: float  # mean gate mass over heads and examples (active / total for hard gates)
    n: int
    predictions: torch.Tensor  # (N,)
    confidences: torch.Tensor  # (N,) softmax probability of the prediction
    head_weights: torch.Tensor | None = None  # (N, L, H) when kept
    correct: torch.Tensor | None = None  # (N,) bool, prediction == label, in data order


@torch.no_grad()
def evaluate(model, data: EncodedDataset, *, budget=None, hard: bool = True, head_mask: torch.Tensor | None = None,
             batch_size: int = 128, device: str = "cpu", keep_head_weights: bool = False, indices=None) -> EvalResult:
    """Run ``model`` over ``data`` in eval mode; gates come from ``budget`` (hard top-k by default) or ``head_mask``."""
    was_training = model.training
    model.eval()
    preds, confs, weights, hits = [], [], [], []
    correct, cost_sum, n = 0, 0.0, 0
    for batch in iterate_batches(data, batch_size, device=device, indices=indices):
        out = model(batch["input_ids"], batch["attention_mask"], budget=budget, hard=hard, head_mask=head_mask)
        prob = out.logits.float().softmax(-1)
        conf, pred = prob.max(-1)
        B = pred.shape[0]
        hit = pred == batch["labels"]
        correct += int(hit.sum())
        hits.append(hit.cpu())
        n += B
        hw = out.head_weights
        if hw is None:
            cost_sum += B
        else:
            per_example = hw.float().mean(dim=(-2, -1))  # () or (B,)
            cost_sum += float(per_example.sum()) if per_example.dim() else float(per_example) * B
            if keep_head_weights:
                weights.append((hw if hw.dim() == 3 else hw.expand(B, *hw.shape)).float().cpu())
        preds.append(pred.cpu())
        confs.append(conf.cpu())
    model.train(was_training)
    return EvalResult(
        accuracy=correct / max(1, n),
        est_cost=cost_sum / max(1, n),
        n=n,
        predictions=torch.cat(preds) if preds else torch.empty(0, dtype=torch.long),
        confidences=torch.cat(confs) if confs else torch.empty(0),
        head_weights=torch.cat(weights) if weights else None,
        correct=torch.cat(hits) if hits else torch.empty(0, dtype=torch.bool),
    )


def pack_correct(correct: torch.Tensor) -> str:
    """(N,) bool -> a short base64 string (one bit per example), for per-seed results files."""
    bits = correct.to(torch.bool).flatten().tolist()
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        if b:
            out[i // 8] |= 1 << (i % 8)
    return f"{len(bits)}:" + base64.b64encode(bytes(out)).decode("ascii")


def unpack_correct(text: str) -> torch.Tensor:
    n, _, data = text.partition(":")
    raw = base64.b64decode(data)
    return torch.tensor([bool(raw[i // 8] >> (i % 8) & 1) for i in range(int(n))], dtype=torch.bool)


VALIDATION_BUDGETS = (0.25, 0.5)  # where a one-model-many-budgets method reports validation accuracy


def validation_hook(method: Method, val: EncodedDataset, device: str = "cpu") -> Callable[[torch.nn.Module], dict]:
    """What the Trainer reports at a method's evaluation points, on the validation split only:
    per-input methods their accuracy, mean s and attention FLOPs (the training-dynamics view);
    one-model-many-budgets methods their accuracy at hard budgets; the rest their plain accuracy."""
    from .perinput import budgetformer_summary

    def run(model) -> dict:
        if method.per_input and method.has_budget:  # adaptive: accuracy and realised cost at two budgets
            from .adaptive import adaptive_outputs

            out = {}
            for b in (0.25, 0.5):
                o = adaptive_outputs(model, val, b, device=device)
                out.update({f"val_acc@{b:g}": o["accuracy"], f"val_cost@{b:g}": o["realised"]})
            return out
        if method.per_input:
            s = budgetformer_summary(model, val, device=device)
            return {"val_acc": s["accuracy"], "val_s_mean": s["s_mean"], "val_attention_flops": s["attention_flop_fraction"]}
        if method.has_budget and not method.one_model_per_budget:
            return {f"acc@{b:g}": evaluate(model, val, budget=b, hard=True, device=device).accuracy for b in VALIDATION_BUDGETS}
        return {"acc": evaluate(model, val, device=device).accuracy}

    return run
