"""``compare``: every method on one dataset, in one run, from one shared dense warm start per seed.

Methods: ``dense``; ``baa`` (one model, all budgets); ``static`` (one model per budget);
``posthoc`` (the dense model's heads ranked by validation importance, cut to the budget, no
retraining); ``recovery`` (post-hoc plus one recovery epoch, one model per budget). Accuracy is
averaged over seeds (mean and standard deviation); latency is measured once per distinct head
layout on this machine's CPU and shared by all rows with that layout.
"""
from __future__ import annotations

import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .methods import train_recovery, validation_importance
from .prune import posthoc_mask
from .recipes import DEFAULT_BUDGETS, fit, fit_dense, make_card, measure, prepare, round_weights, storage_dtype
from .train import TerminalProgress

ALL_METHODS = ("dense", "baa", "static", "posthoc", "recovery")


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
    """Train and measure every method for each seed; return the per-seed rows and the aggregated table."""
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
    dtype = storage_dtype(prep)
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
        dense = fit_dense(prep, tcfg, cb)
        dense_time = time.perf_counter() - t0
        trained = lambda m: round_weights(m.cpu().eval(), dtype)  # noqa: E731  what gets measured is what is stored
        ones = torch.ones(prep.model_config.n_layers, prep.model_config.n_heads)
        if "dense" in methods:
            per_seed["dense"].append(measure(prep, trained(copy.deepcopy(dense)), [1.0], method="dense",
                                             mask_for=lambda b: ones, **lat))
        if "baa" in methods:
            res = fit(prep, "baa", tcfg, dense=dense.to(tcfg.device), callbacks=cb)
            model = trained(res.model)
            per_seed["baa"].append(measure(prep, model, budgets, method="baa", **lat))
            if seed == args.seeds[0]:
                saved = {"model": model, "train_time_s": dense_time + res.train_time_s}
        if "static" in methods:
            rows = []
            for b in special:
                m = trained(fit(prep, "static", tcfg, budget=b, dense=dense.to(tcfg.device), callbacks=cb).model)
                rows += measure(prep, m, [b], method="static", **lat)
            per_seed["static"].append(rows)
        if "posthoc" in methods or "recovery" in methods:
            importance = validation_importance(dense.to(tcfg.device), prep.val, tcfg.device).cpu()
            if seed == args.seeds[0]:
                saved["importance"] = importance.tolist()
            if "posthoc" in methods:
                per_seed["posthoc"].append(measure(prep, trained(copy.deepcopy(dense)), budgets, method="posthoc",
                                                   mask_for=lambda b: posthoc_mask(importance, b), **lat))
            if "recovery" in methods:
                rows = []
                for b in special:
                    mask = posthoc_mask(importance, b)
                    m = trained(train_recovery(dense.to(tcfg.device), mask, prep.train, tcfg, callbacks=cb))
                    rows += measure(prep, m, [b], method="recovery", mask_for=lambda _b, mask=mask: mask, **lat)
                per_seed["recovery"].append(rows)
    result = {"task": prep.data.task, "kind": prep.kind, "base": prep.base, "data": prep.data.source,
              "seeds": list(args.seeds), "per_seed": per_seed, "command": command, "threads": args.threads_latency}
    result.update(aggregate_result(per_seed))
    if args.out and saved.get("model") is not None:
        from .bert import external_spec

        tcfg = _tcfg(args, "csv" if args.csv else args.task, args.kind)
        card = make_card(prep, name=args.out.rstrip("/").split("/")[-1], method="baa", tcfg=tcfg, sweeps=result["table"],
                         command=command, train_time_s=saved["train_time_s"],
                         extra={"seeds": list(args.seeds), "weights_seed": args.seeds[0],
                                "posthoc_importance": saved.get("importance")})
        save_checkpoint(args.out, saved["model"], prep.tokenizer, card, dtype=dtype, overwrite=getattr(args, "overwrite", False),
                        **external_spec(prep))
        _log(f"saved {args.out}")
    return result


def aggregate_result(per_seed: dict[str, list[list[dict]]]) -> dict:
    table = {m: aggregate(v) for m, v in per_seed.items() if v}
    return {"table": table, "rows": [r for rows in table.values() for r in rows]}


def merge_results(paths: list[str], out: str | None = None) -> dict:
    """Join the per-seed rows of several ``compare --results-json`` files (e.g. seeds run in parallel)
    and aggregate them; with ``out``, write the merged table into that checkpoint's card."""
    from .checkpoint import read_card, update_card

    results = [json.loads(Path(p).read_text()) for p in paths]
    first = results[0]
    for r in results[1:]:
        if (r["task"], r.get("kind"), r.get("data")) != (first["task"], first.get("kind"), first.get("data")):
            raise ValueError(f"cannot merge results of different tasks or data ({r['task']} vs {first['task']})")
    per_seed: dict[str, list] = {}
    seeds = []
    for r in results:
        seeds += r["seeds"]
        for method, runs in r["per_seed"].items():
            per_seed.setdefault(method, []).extend(runs)
    merged = {**first, "seeds": seeds, "per_seed": per_seed, "merged_from": [r["command"] for r in results]}
    merged.update(aggregate_result(per_seed))
    if out:
        card = read_card(out)
        card.update(sweeps=merged["table"], seeds=seeds, compare_commands=merged["merged_from"])
        update_card(out, card)
        _log(f"wrote the {len(seeds)}-seed table into {out}/card.json")
    return merged


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
