"""Measuring an adaptive model (issue 10): batched masked evaluation at a budget, how the realised
cost tracks the slider, monotonicity over inputs, sweep rows, analyses, and the app's plain arrays.

Accuracy comes from the batched masked path (every head computed, the unchosen ones multiplied by
0); latency from the structural per-input path (``model/structural.py``: each input runs only its
heads' sliced weights, batch 1), which chooses the same heads (tests check it).
"""
from __future__ import annotations

import statistics

import torch
import torch.nn.functional as F

from ..io.data import iterate_batches
from ..model.adaptive import CALIBRATION_GRID, realised_fraction
from .intervals import bootstrap_ci  # one interval rule for every accuracy in the project

@torch.no_grad()
def adaptive_outputs(model, data, budget, batch_size: int = 128, device: str = "cpu", mode: str = "hard") -> dict:
    """Batched masked evaluation at one budget: per example prediction, loss, s (N, L), heads (N, L, H)."""
    was = model.training
    model.to(device).eval()
    pred, label, loss, s, mask = [], [], [], [], []
    for batch in iterate_batches(data, batch_size, device=device):
        out = model(batch["input_ids"], batch["attention_mask"], budget=budget, controller_mode=mode)
        pred.append(out.logits.argmax(-1).cpu())
        label.append(batch["labels"].cpu())
        loss.append(F.cross_entropy(out.logits.float(), batch["labels"], reduction="none").cpu())
        s.append(torch.stack([r["s"] for r in out.controller], 1).float().cpu())
        mask.append(out.head_weights.float().cpu())
    model.train(was)
    o = {"pred": torch.cat(pred), "label": torch.cat(label), "loss": torch.cat(loss), "s": torch.cat(s),
         "mask": torch.cat(mask)}
    o["accuracy"] = float((o["pred"] == o["label"]).float().mean())
    o["realised"] = float(o["mask"].mean())
    return o


def _outputs(model, data, budget, device: str, cache: dict | None) -> dict:
    """``adaptive_outputs`` at ``budget``, memoised in ``cache`` (one pass over ``data`` per budget)."""
    if cache is None:
        return adaptive_outputs(model, data, budget, device=device)
    key = round(float(budget), 6)
    if key not in cache:
        cache[key] = adaptive_outputs(model, data, budget, device=device)
    return cache[key]


def tracking(model, data, budgets, device: str = "cpu", cache: dict | None = None) -> dict:
    """|realised - b| and |mean s - b| at each budget on ``data``, and the worst of each."""
    rows = []
    for b in budgets:
        o = _outputs(model, data, b, device, cache)
        rows.append({"budget": b, "realised": o["realised"], "s_mean": float(o["s"].mean()),
                     "realised_gap": o["realised"] - b, "s_gap": float(o["s"].mean()) - b, "accuracy": o["accuracy"]})
    worst_r = max(rows, key=lambda r: abs(r["realised_gap"]))
    worst_s = max(rows, key=lambda r: abs(r["s_gap"]))
    reachable = [r for r in rows if r["budget"] >= min_realised(model)] or rows  # one head per block is the floor
    worst_rr = max(reachable, key=lambda r: abs(r["realised_gap"]))
    return {"rows": rows, "worst_realised": {"budget": worst_r["budget"], "gap": worst_r["realised_gap"]},
            "worst_realised_reachable": {"budget": worst_rr["budget"], "gap": worst_rr["realised_gap"]},
            "worst_s": {"budget": worst_s["budget"], "gap": worst_s["s_gap"]}, "n": len(data)}


def min_realised(model) -> float:
    """One head per block: the least any budget can cost."""
    return 1.0 / model.config.n_heads


def monotone_violations(model, data, budgets=CALIBRATION_GRID, device: str = "cpu", tol: float = 1e-6,
                        cache: dict | None = None) -> dict:
    """How many (input, block) pairs have s or the head count fall somewhere as b rises over ``budgets``."""
    s_all, k_all = [], []
    for b in budgets:
        o = _outputs(model, data, b, device, cache)
        s_all.append(o["s"])
        k_all.append(o["mask"].sum(-1))
    s, k = torch.stack(s_all), torch.stack(k_all)  # (n_budgets, N, L)
    s_bad = ((s[1:] < s[:-1] - tol).any(0))
    k_bad = ((k[1:] < k[:-1]).any(0))
    return {"s_decreases": int(s_bad.sum()), "heads_decrease": int(k_bad.sum()), "pairs": int(s_bad.numel()),
            "inputs_with_any": int((s_bad | k_bad).any(-1).sum()), "n": s.shape[1]}


def adaptive_sweep(model, test, budgets, *, method: str = "adaptive", latency_examples: int = 0, threads: int = 1,
                   device: str = "cpu", progress=None, latency_repeats: int = 5, cache: dict | None = None) -> list[dict]:
    """``sweep``'s rows for an adaptive model: accuracy by batched masked evaluation, est_cost = the
    realised mean head fraction, s_mean / s_std over test inputs (mean over blocks per input), and
    latency of the structural batch-1 path (each input runs only its heads) beside the dense model."""
    from .analysis import per_example_latency

    L, H = model.config.n_layers, model.config.n_heads
    rows = []
    for b in budgets:
        o = _outputs(model, test, b, device, cache)
        s_in = o["s"].mean(1)
        heads = o["mask"].sum(-1)  # (N, L)
        row = {"budget": float(b), "accuracy": o["accuracy"], "est_cost": o["realised"],
               "active_heads": round(float(heads.sum(-1).mean()), 3), "total_heads": L * H, "method": method,
               "mean_heads_per_layer": [round(float(v), 3) for v in heads.mean(0)], "n": len(test),
               "s_mean": float(s_in.mean()), "s_std": float(s_in.std(unbiased=False)),
               "realised_std": float(realised_fraction(o["s"], H).std(unbiased=False)),
               "latency_ms": None, "dense_latency_ms": None, "speedup": None, "flop_speedup": None, "threads": threads}
        if latency_examples:
            lat = per_example_latency(model.cpu(), test, latency_examples, threads, repeats=latency_repeats, budget=b)
            model.to(device)
            row.update(latency_ms=statistics.median(r["latency_ms"] for r in lat["examples"]),
                       dense_latency_ms=statistics.median(r["dense_ms"] for r in lat["examples"]),
                       speedup=lat["median_speedup"], speedup_ci=lat["speedup_ci"], speedup_spread=lat["speedup_spread"],
                       flop_speedup=lat["median_flop_speedup"], latency_ratio_to_flop_model=lat["median_ratio"],
                       latency_ratio_ci=lat["ratio_ci"], latency_inputs=lat["n"],
                       latency_protocol="batch 1 per input, structural path vs dense on the same input, medians over "
                                        "inputs; _ci: 95% bootstrap interval of the median over inputs")
        if progress:
            progress(f"{method} budget {b:g}: accuracy {row['accuracy']:.4f}, realised cost {row['est_cost']:.3f}, "
                     f"mean s {row['s_mean']:.3f}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- analyses and the app's arrays
def s_by_group(s: torch.Tensor, groups: list, name: str) -> list[dict]:
    """Mean / std of per-input s (N,) for each value in ``groups`` (e.g. the number of marks)."""
    out = []
    for g in sorted(set(groups)):
        idx = [i for i, x in enumerate(groups) if x == g]
        v = s[idx]
        out.append({name: g, "n": len(idx), "s_mean": float(v.mean()), "s_std": float(v.std(unbiased=False))})
    return out


def complexity_analysis(model, test, complexity: torch.Tensor, budgets=(0.3, 0.5), device: str = "cpu",
                        measure: str = "", cache: dict | None = None) -> list[dict]:
    """Spearman rho(complexity, s) at each budget; s = mean over blocks per input."""
    from .analysis import spearman

    rows = []
    for b in budgets:
        o = _outputs(model, test, b, device, cache)
        s = o["s"].mean(1)
        rows.append({"budget": b, "spearman_rho": spearman(complexity, s),
                     "spearman_rho_realised": spearman(complexity, realised_fraction(o["s"], model.config.n_heads)),
                     "n": len(test), "complexity_measure": measure})
    return rows


@torch.no_grad()
def shares_at(model, data, budgets, batch_size: int = 256, device: str = "cpu") -> torch.Tensor:
    """Every input's share s_i^l(b) at each budget, (K, N, L), without running a single attention block.

    Where the shares read the pooled embedding output (``adaptive_input="embedding"``, the default), s_i(b)
    is the controllers' function of that output and u(b) alone: this is what lets the app redraw every
    input's budget while the slider moves, for any model size. The same numbers as the full forward's
    (``adaptive_outputs``; a test checks it). Block-reading shares need the blocks: refused."""
    from ..model.attention import masked_mean
    from ..model.gates import as_budget_tensor

    if model.config.gating != "adaptive" or getattr(model.config, "adaptive_input", "embedding") != "embedding":
        raise ValueError("shares without the blocks need an adaptive model whose shares read the embedding output")
    if not len(data) or not len(budgets):
        raise ValueError("shares need at least one input and one budget")
    budgets = [as_budget_tensor(b, device) for b in budgets]  # each checked before any work: (0, 1]
    was = model.training
    model.to(device).eval()
    out = [[] for _ in budgets]
    try:
        for batch in iterate_batches(data, batch_size, device=device):
            x = model.embeddings(batch["input_ids"])  # (B, T, d)
            pooled = masked_mean(x, batch["attention_mask"])  # (B, d)
            for k, b in enumerate(budgets):
                u = model.calibration(b)  # () the calibrated budget logit u(b)
                s = [c.share(pooled, u) for c in model.controllers]  # L x (B,)
                out[k].append(torch.stack(s, 1).float().cpu())  # (B, L)
    finally:
        model.train(was)
    return torch.stack([torch.cat(rows) for rows in out])  # (K, N, L)


def operating_point_arrays(model, data, budget: float, device: str = "cpu") -> dict:
    """What the explorer draws at one budget, as plain lists: per input s (mean over blocks), s per
    block, realised head fraction, label, correct; and the summary numbers."""
    o = adaptive_outputs(model, data, budget, device=device)
    return {"budget": float(budget), "s": o["s"].mean(1).tolist(), "s_blocks": o["s"].tolist(),
            "realised": realised_fraction(o["s"], model.config.n_heads).tolist(), "label": o["label"].tolist(),
            "correct": (o["pred"] == o["label"]).tolist(), "accuracy": o["accuracy"], "est_cost": o["realised"],
            "s_mean": float(o["s"].mean())}


@torch.no_grad()
def s_curves(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, budgets=None) -> dict:
    """One input: s per block as b runs over ``budgets`` (default 0.05 .. 1.00), and the heads run."""
    budgets = list(budgets or CALIBRATION_GRID)
    model.eval()
    s, k = [], []
    for b in budgets:
        out = model(input_ids, attention_mask, budget=b)
        s.append([float(r["s"][0]) for r in out.controller])
        k.append([int(v) for v in out.head_weights[0].sum(-1).tolist()])
    L = model.config.n_layers
    return {"budgets": budgets, "s": [[row[l] for row in s] for l in range(L)],
            "heads": [[row[l] for row in k] for l in range(L)], "n_heads": model.config.n_heads}


# ---------------------------------------------------------------- intervals and the card
def adaptive_card(prep, model, dense, budgets, tcfg, *, threads: int = 1, latency_examples: int = 0, progress=None,
                  tracking_budgets=None, recalibrate: bool = True) -> tuple[list[dict], dict]:
    """Everything an adaptive model's card holds: sweep rows (with bootstrap intervals) and the analyses.

    ``recalibrate``: solve the calibration on the validation split first (after the weights were
    rounded to the storage dtype). Test rows are touched only to report."""
    from ..io.data import count_marks, mark_kinds
    from ..methods.adaptive import calibrate

    device = tcfg.device
    if recalibrate and len(prep.val):
        calibrate(model, iterate_batches(prep.val, 256, device=device), device=device)
    report = {"calibration": {"table": model.config.budget_calibration, "split": "validation", "n": len(prep.val),
                              "grid": CALIBRATION_GRID}}
    cache: dict = {}  # one pass over the test split per budget serves every analysis below
    rows = adaptive_sweep(model, prep.test, budgets, latency_examples=latency_examples, threads=threads, device=device,
                          progress=progress, cache=cache)
    for r in rows:
        o = _outputs(model, prep.test, r["budget"], device, cache)
        r["accuracy_ci"] = bootstrap_ci((o["pred"] == o["label"]).float())
    grid = tracking_budgets or [round(0.1 * i, 1) for i in range(1, 11)]
    report["tracking"] = tracking(model, prep.test, grid, device=device, cache=cache)
    report["tracking"]["floor"] = {"min_realised": min_realised(model),
                                   "note": "at least one head per block: no budget can cost less than 1/H"}
    report["monotone"] = monotone_violations(model, prep.test, device=device, cache=cache)
    # complexity from another model: the dense warm start's loss on the true label
    dense_loss = adaptive_dense_loss(dense, prep.test, device)
    measure = ("cross-entropy on the true label of the dense warm-start model (every head on; a separate "
               "model from the one analysed)")
    report["s_by_complexity"] = complexity_analysis(model, prep.test, dense_loss, device=device, measure=measure, cache=cache)
    if prep.data.task == "synthetic_marks":
        marks = [count_marks(t) for t in prep.data.test.texts]
        by = []
        for b in (0.15, 0.2, 0.3, 0.5, 0.7, 0.9):
            o = _outputs(model, prep.test, b, device, cache)
            correct = (o["pred"] == o["label"]).float()
            groups = s_by_group(o["s"].mean(1), marks, "marks")
            real = s_by_group(realised_fraction(o["s"], model.config.n_heads), marks, "marks")
            for g, rg in zip(groups, real):
                idx = [i for i, m in enumerate(marks) if m == g["marks"]]
                by.append({"budget": b, **g, "realised_mean": rg["s_mean"], "accuracy": float(correct[idx].mean())})
        report["s_by_marks"] = by
        kinds = [mark_kinds(t) for t in prep.data.test.texts]
        report["s_by_kinds"] = [{"budget": b, **g} for b in (0.2, 0.3, 0.5)
                                for g in s_by_group(_outputs(model, prep.test, b, device, cache)["s"].mean(1), kinds, "kinds")]
    report["alpha"] = [float(c.sensitivity().detach()) for c in model.controllers]
    return rows, report


@torch.no_grad()
def adaptive_dense_loss(dense, data, device: str = "cpu") -> torch.Tensor:
    """Per-example cross-entropy of a dense model on the true label (complexity, higher = harder)."""
    dense.to(device).eval()
    out = []
    for batch in iterate_batches(data, 128, device=device):
        logits = dense(batch["input_ids"], batch["attention_mask"]).logits
        out.append(F.cross_entropy(logits.float(), batch["labels"], reduction="none").cpu())
    return torch.cat(out)
