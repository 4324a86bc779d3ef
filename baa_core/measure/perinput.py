"""Per-input controllers measured over a dataset: each input's budget s, relevance q and chosen heads,
and the summaries built from them (accuracy, mean s, heads used, attention-FLOP fraction)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..io.data import iterate_batches
from ..model.gates import entropy
from .cost import layer_flops


@torch.no_grad()
def controller_outputs(model, data, batch_size: int = 128, device: str = "cpu", mode: str = "hard", target=None,
                       random_heads: bool = False, seed: int = 0) -> dict:
    """Run a BudgetFormer model over ``data``: predictions, per-block s, q, chosen heads, per example.

    ``target`` fixes s for every input (ablation: no controller); ``random_heads`` keeps each block's
    head count but picks the heads at random (ablation: no scorer).
    """
    model.to(device).eval()
    g = torch.Generator().manual_seed(seed)
    out = {"pred": [], "label": [], "s": [], "q": [], "scores": [], "mask": [], "loss": []}
    hooks = []
    if random_heads:
        def randomise(module, args, output):
            w, rec = output
            k = w.sum(-1, keepdim=True)
            scores = torch.rand(w.shape, generator=g).to(w.device)
            rank = scores.argsort(-1).argsort(-1)
            w = (rank < k).to(w.dtype)
            rec["weights"] = w
            return w, rec

        hooks = [c.register_forward_hook(randomise) for c in model.controllers]
    try:
        for batch in iterate_batches(data, batch_size, device=device):
            res = model(batch["input_ids"], batch["attention_mask"], controller_mode=mode,
                        budget=target)
            pred = res.logits.argmax(-1)
            out["pred"].append(pred.cpu())
            out["label"].append(batch["labels"].cpu())
            out["loss"].append(F.cross_entropy(res.logits.float(), batch["labels"], reduction="none").cpu())
            out["s"].append(torch.stack([r["s"] for r in res.controller], 1).cpu())
            out["q"].append(torch.stack([r["q"] for r in res.controller], 1).cpu())
            out["scores"].append(torch.stack([r["scores"] for r in res.controller], 1).cpu())
            out["mask"].append(res.head_weights.cpu())
    finally:
        for h in hooks:
            h.remove()
    return {k: torch.cat(v) for k, v in out.items()}


def attention_flop_fraction(model, mask: torch.Tensor, lengths) -> torch.Tensor:
    """Per example: attention FLOPs (QKV, scores, output) with the chosen heads / with all heads."""
    cfg = model.config
    fr = []
    for m, n in zip(mask, lengths):
        used = sum(layer_flops(cfg.d_model, int(k), cfg.head_dim, cfg.d_ffn, n).attention for k in m.sum(-1).tolist())
        full = cfg.n_layers * layer_flops(cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.d_ffn, n).attention
        fr.append(used / full)
    return torch.tensor(fr)


def total_flop_fraction(model, mask: torch.Tensor, lengths) -> torch.Tensor:
    """Per example: total encoder FLOPs (attention with the chosen heads + the FFN, which always runs)
    / the dense model's; the measure the BudgetFormer paper's "fewer FLOPs" is comparable with."""
    from .cost import model_flops

    cfg = model.config
    fr = []
    for m, n in zip(mask, lengths):
        fr.append(model_flops(cfg, [int(k) for k in m.sum(-1).tolist()], [n]).total / model_flops(cfg, None, [n]).total)
    return torch.tensor(fr)


def budgetformer_summary(model, data, device: str = "cpu", **kw) -> dict:
    """Accuracy, mean s, mean chosen-head fraction and attention-FLOP fraction over ``data``."""
    return summarize_outputs(model, controller_outputs(model, data, device=device, **kw), data)


def summarize_outputs(model, o: dict, data) -> dict:
    """``budgetformer_summary`` of outputs already computed by ``controller_outputs`` on ``data``."""
    flops = attention_flop_fraction(model, o["mask"], data.lengths())
    total = total_flop_fraction(model, o["mask"], data.lengths())
    return {
        "method": "budgetformer",
        "accuracy": float((o["pred"] == o["label"]).float().mean()),
        "s_mean": float(o["s"].mean()),
        "est_cost": float(o["mask"].mean()),
        "attention_flop_fraction": float(flops.mean()),
        "total_flop_fraction": float(total.mean()),
        "entropy_mean": float(entropy(o["q"]).mean()),
        "n": len(data),
    }


