"""``compare``: every method on one dataset, in one run, from one shared dense warm start per seed.

Methods: ``dense``; ``baa`` (one model, all budgets); ``static`` (one model per budget);
``posthoc`` (the dense model's heads ranked by validation importance, cut to the budget, no
retraining); ``recovery`` (post-hoc plus one recovery epoch, one model per budget). Accuracy is
averaged over seeds (mean and standard deviation); latency is measured once per distinct head
layout on this machine's CPU and shared by all rows with that layout.
"""
from __future__ import annotations

import statistics
import sys
import time

import torch

from .checkpoint import save_checkpoint
from .methods import train_recovery, validation_importance
from .prune import posthoc_mask
from .recipes import DEFAULT_BUDGETS, fit, fit_dense, make_card, measure, prepare
from .train import TerminalProgress

ALL_METHODS = ("dense", "baa", "static", "posthoc", "recovery")
LABELS = {"dense": "dense (all heads)", "baa": "BAA (one model, hard gates)", "static": "static gates (one model per budget)",
          "posthoc": "post-hoc structural pruning", "recovery": "post-hoc + 1 recovery epoch (one model per budget)"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def aggregate(per_seed: list[list[dict]]) -> list[dict]:
    """Rows of several seeds (same budgets, same order) -> one row per budget with mean and std accuracy."""
    out = []
    for rows in zip(*per_seed):
        first = dict(rows[0])
        accs = [r["accuracy"] for r in rows]
        first["accuracy"] = statistics.fmean(accs)
        first["accuracy_std"] = statistics.stdev(accs) if len(accs) > 1 else 0.0
        first["accuracy_seeds"] = accs
        first["seeds"] = len(accs)
        out.append(first)
    return out


def run_compare(args, command: str = "") -> dict:
    from .cli import _tcfg

    budgets = args.budgets or DEFAULT_BUDGETS
    special = args.specialist_budgets or budgets
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {ALL_METHODS}")
    prep = prepare(args.task, kind=args.kind, base=args.base, data_dir=args.data_dir, csv=args.csv,
                   text_column=args.text_column, label_column=args.label_column, max_train=args.max_train)
    _log(f"data: {prep.data.source}")
    cache: dict = {}  # latency per head layout, shared by every row of this run
    lat = dict(threads=args.threads_latency, n_latency_batches=args.latency_batches, latency_cache=cache,
               device=args.device, progress=_log)
    per_seed: dict[str, list[list[dict]]] = {m: [] for m in methods}
    saved = {}
    cb = [TerminalProgress(every=200)]
    for seed in args.seeds:
        tcfg = _tcfg(args, "csv" if args.csv else args.task, args.kind)
        tcfg.seed = seed
        t0 = time.perf_counter()
        dense = fit_dense(prep, tcfg, cb).cpu().eval()
        dense_time = time.perf_counter() - t0
        ones = torch.ones(dense.config.n_layers, dense.config.n_heads)
        dense_dev = dense.to(tcfg.device)
        if "dense" in methods:
            per_seed["dense"].append(measure(prep, dense, [1.0], method="dense", mask_for=lambda b: ones, **lat))
        if "baa" in methods:
            res = fit(prep, "baa", tcfg, dense=dense_dev, callbacks=cb)
            per_seed["baa"].append(measure(prep, res.model, budgets, method="baa", **lat))
            if seed == args.seeds[0]:
                saved = {"model": res.model, "train_time_s": dense_time + res.train_time_s}
        if "static" in methods:
            rows = []
            for b in special:
                m = fit(prep, "static", tcfg, budget=b, dense=dense.to(tcfg.device), callbacks=cb).model
                rows += measure(prep, m, [b], method="static", **lat)
            per_seed["static"].append(rows)
        if "posthoc" in methods or "recovery" in methods:
            importance = validation_importance(dense.to(tcfg.device), prep.val, tcfg.device).cpu()
            if seed == args.seeds[0]:
                saved["importance"] = importance.tolist()
            if "posthoc" in methods:
                per_seed["posthoc"].append(measure(prep, dense.cpu(), budgets, method="posthoc",
                                                   mask_for=lambda b: posthoc_mask(importance, b), **lat))
            if "recovery" in methods:
                rows = []
                for b in special:
                    mask = posthoc_mask(importance, b)
                    m = train_recovery(dense.to(tcfg.device), mask, prep.train, tcfg, callbacks=cb).cpu()
                    rows += measure(prep, m, [b], method="recovery", mask_for=lambda _b, mask=mask: mask, **lat)
                per_seed["recovery"].append(rows)
    table = {m: aggregate(v) for m, v in per_seed.items() if v}
    rows = [r for m in methods for r in table.get(m, [])]
    result = {"task": prep.data.task, "data": prep.data.source, "seeds": list(args.seeds), "rows": rows, "table": table,
              "command": command, "threads": args.threads_latency}
    if args.out and saved.get("model") is not None:
        from .bert import external_spec

        tcfg = _tcfg(args, "csv" if args.csv else args.task, args.kind)
        card = make_card(prep, name=args.out.rstrip("/").split("/")[-1], method="baa", tcfg=tcfg, sweeps=table,
                         command=command, train_time_s=saved["train_time_s"],
                         extra={"seeds": list(args.seeds), "posthoc_importance": saved.get("importance")})
        save_checkpoint(args.out, saved["model"], prep.tokenizer, card, **external_spec(prep))
        _log(f"saved {args.out}")
    return result


def markdown_table(table: dict[str, list[dict]]) -> str:
    lines = ["| method | budget | accuracy | est. cost | heads | CPU ms/batch | speedup | FLOP bound |",
             "|---|---|---|---|---|---|---|---|"]
    for method, rows in table.items():
        for r in rows:
            acc = f"{100 * r['accuracy']:.2f}"
            if r.get("seeds", 1) > 1:
                acc += f" ± {100 * r['accuracy_std']:.2f}"
            ms = "-" if r.get("latency_ms") is None else f"{r['latency_ms']:.2f}"
            sp = "-" if r.get("speedup") is None else f"{r['speedup']:.2f}x"
            fb = "-" if r.get("flop_speedup") is None else f"{r['flop_speedup']:.2f}x"
            lines.append(f"| {method} | {r['budget']:.2f} | {acc} | {r['est_cost']:.3f} | {r['active_heads']}/{r['total_heads']} "
                         f"| {ms} | {sp} | {fb} |")
    return "\n".join(lines)


def print_table(result: dict) -> None:
    print(f"{result['task']}: {result['data']}")
    print(f"seeds {result['seeds']}; latency with {result['threads']} thread(s)\n")
    print(markdown_table(result["table"]))
