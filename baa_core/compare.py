"""``compare``: every method on one dataset, in one run, from one shared dense warm start per seed.

Methods: ``dense`` (the warm start alone); ``dense_equal`` (the warm start trained on for as many
epochs as BAA's later phases: the equal-budget baseline); ``baa`` (one model, all budgets);
``static`` (one model per budget); ``posthoc`` (the dense model's heads ranked by validation
importance, cut to the budget, no retraining); ``recovery`` (post-hoc plus one recovery epoch, one
model per budget); ``no_attention`` (the control: the network trained with every head closed for
BAA's epochs). With ``baa``, every seed's BAA model is also evaluated with every head closed
(``no_attention_eval``). With ``--select``, each seed first re-chooses the recipe's open
hyperparameters on the validation split (``protocol.select_and_fit``); every method of that seed
then uses the chosen recipe and warm start.

Accuracy is averaged over seeds (mean, standard deviation, and the bootstrap interval of the mean
over test examples); a row's heads, layout and latency are those of the first seed's model
(``layout_seed``), the weights the card ships. Latency is measured once per distinct head layout.
Per-seed rows keep which test examples were right (``correct``), so runs made on separate machines
(``--results-json``) merge into the same intervals and paired differences (``--merge``).
"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .methods import METHOD_LABELS, train_recovery, validation_importance
from .protocol import (aggregate_rows, chance, continue_dense, controls_card, differences, method_epochs,
                       no_attention_mask, select_and_fit, selection_card, selection_grid, train_no_attention, trained_on)
from .prune import posthoc_mask
from .recipes import (DEFAULT_BUDGETS, fit, fit_dense, make_card, measure, prepare, round_weights, storage_dtype,
                      strip_per_example)
from .train import TerminalProgress

ALL_METHODS = ("dense", "dense_equal", "baa", "static", "posthoc", "recovery", "no_attention")
DEFAULT_METHODS = ",".join(ALL_METHODS)
ROW_LABELS = {**METHOD_LABELS, "dense": "dense (warm start only)", "dense_equal": "dense (equal epochs)",
              "no_attention": "control: trained with no attention", "no_attention_eval": "control: every head closed"}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def aggregate(per_seed: list[list[dict]]) -> list[dict]:
    """Rows of several seeds (same budgets, same order) -> one row per budget (``protocol.aggregate_rows``)."""
    return [aggregate_rows(list(rows)) for rows in zip(*per_seed)]


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
                   text_column=args.text_column, label_column=args.label_column, max_train=args.max_train,
                   max_test=getattr(args, "max_test", None), d_ffn=getattr(args, "d_ffn", None))
    _log(f"data: {prep.data.source}")
    dtype = storage_dtype(prep)
    grid = selection_grid(prep.data.task, prep.kind) if getattr(args, "select", False) else ()
    cache: dict = {}  # latency per head layout, shared by every row of this run
    lat = dict(threads=args.threads_latency, n_latency_batches=args.latency_batches, latency_cache=cache,
               device=args.device, progress=_log, keep_correct=True)
    per_seed: dict[str, list[list[dict]]] = {m: [] for m in methods}
    if "baa" in methods:
        per_seed["no_attention_eval"] = []
    saved: dict = {}
    records, train_times = [], {}
    cb = [TerminalProgress(every=200)]
    for seed in args.seeds:
        tcfg = _tcfg(args, "csv" if args.csv else args.task, args.kind)
        tcfg.seed = seed
        t0 = time.perf_counter()
        if methods == ["no_attention"]:  # the control alone (e.g. run beside the other seeds): no warm start needed
            add_control_only(per_seed, prep, tcfg, seed, trained_fn(dtype), lat, cb)
            train_times[str(seed)] = round(time.perf_counter() - t0, 1)
            continue
        if grid:
            chosen = select_and_fit(prep, "baa" if "baa" in methods else "dense", tcfg, grid, callbacks=cb, log=_log)
            sprep, tcfg, dense, baa_model = chosen.prep, chosen.tcfg, chosen.dense, chosen.model
            records.append(chosen.record)
        else:
            sprep = prep
            dense = fit_dense(prep, tcfg, cb)
            baa_model = fit(prep, "baa", tcfg, dense=dense.to(tcfg.device), callbacks=cb).model if "baa" in methods else None
        train_times[str(seed)] = round(time.perf_counter() - t0, 1)
        trained = lambda m: round_weights(m.cpu().eval(), dtype)  # noqa: E731  what gets measured is what is stored
        cfg = sprep.model_config
        ones, zeros = torch.ones(cfg.n_layers, cfg.n_heads), no_attention_mask(cfg)

        def add(method, rows):
            for r in rows:
                r.update(seed=seed, epochs=method_epochs(method if method != "no_attention_eval" else "baa", tcfg))
            per_seed[method].append(rows)

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
            if seed == args.seeds[0]:
                saved = {"model": model, "prep": sprep, "tcfg": tcfg}
        if "static" in methods:
            rows = []
            for b in special:
                m = trained(fit(sprep, "static", tcfg, budget=b, dense=dense.to(tcfg.device), callbacks=cb).model)
                rows += measure(sprep, m, [b], method="static", **lat)
            add("static", rows)
        if "posthoc" in methods or "recovery" in methods:
            importance = validation_importance(dense.to(tcfg.device), sprep.val, tcfg.device).cpu()
            if seed == args.seeds[0]:
                saved["importance"] = importance.tolist()
            if "posthoc" in methods:
                add("posthoc", measure(sprep, trained(copy.deepcopy(dense)), budgets, method="posthoc",
                                       mask_for=lambda b: posthoc_mask(importance, b), **lat))
            if "recovery" in methods:
                rows = []
                for b in special:
                    mask = posthoc_mask(importance, b)
                    m = trained(train_recovery(dense.to(tcfg.device), mask, sprep.train, tcfg, callbacks=cb))
                    rows += measure(sprep, m, [b], method="recovery", mask_for=lambda _b, mask=mask: mask, **lat)
                add("recovery", rows)
        if "no_attention" in methods:
            blind = trained(train_no_attention(sprep, tcfg, method_epochs("baa", tcfg), cb))
            add("no_attention", measure(sprep, blind, [1.0], method="no_attention", mask_for=lambda b: zeros, **lat))
    result = {"task": prep.data.task, "kind": prep.kind, "base": prep.base, "data": prep.data.source,
              "seeds": list(args.seeds), "per_seed": per_seed, "command": command, "commands": [command],
              "threads": args.threads_latency, "selection_records": records, "selection_axes": _axes(grid),
              "chance": chance(prep.data), "trained_on": [trained_on(args.device)], "train_time_s": train_times,
              "architecture": _architecture(saved.get("prep", prep))}
    result.update(aggregate_result(per_seed))
    if args.out and saved.get("model") is not None:
        from .bert import external_spec

        name = args.out.rstrip("/").split("/")[-1]
        card = make_card(saved["prep"], name=name, method="baa", tcfg=saved["tcfg"], sweeps={}, command=command,
                         train_time_s=train_times[str(args.seeds[0])],
                         extra={"weights_seed": args.seeds[0], "posthoc_importance": saved.get("importance")})
        card.update(evidence_fields(result))
        save_checkpoint(args.out, saved["model"], saved["prep"].tokenizer, card, dtype=dtype, **external_spec(saved["prep"]))
        _log(f"saved {args.out}")
    return result


def trained_fn(dtype):
    return lambda m: round_weights(m.cpu().eval(), dtype)


def add_control_only(per_seed, prep, tcfg, seed, trained, lat, cb) -> None:
    zeros = no_attention_mask(prep.model_config)
    blind = trained(train_no_attention(prep, tcfg, method_epochs("baa", tcfg), cb))
    rows = measure(prep, blind, [1.0], method="no_attention", mask_for=lambda b: zeros, **lat)
    for r in rows:
        r.update(seed=seed, epochs=method_epochs("baa", tcfg))
    per_seed["no_attention"].append(rows)


def _architecture(prep) -> str:
    c = prep.model_config
    return f"{c.n_layers} layers x {c.n_heads} heads, d={c.d_model}, ffn={c.d_ffn}, max_len={c.max_len}"


def _axes(grid) -> list[dict]:
    return [{"name": a.name, "values": list(a.values), "stage": a.stage, "where": a.where} for a in grid]


def aggregate_result(per_seed: dict[str, list[list[dict]]]) -> dict:
    ordered = {m: sorted(v, key=lambda rows: rows[0].get("seed", 0) if rows else 0) for m, v in per_seed.items() if v}
    table = {m: aggregate(v) for m, v in ordered.items()}
    return {"table": table, "rows": [r for rows in table.values() for r in rows], "differences": differences(ordered)}


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


def merge_results(paths: list[str], out: str | None = None, command: str = "") -> dict:
    """Join the per-seed rows of several ``compare --results-json`` files (e.g. seeds run in parallel)
    and aggregate them; with ``out``, write the merged table, intervals, differences, controls and
    selection into that checkpoint's card, with every command as run and this merge command."""
    from .checkpoint import read_card, update_card

    results = [json.loads(Path(p).read_text()) for p in paths]
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
              "trained_on": [x for r in results for x in r.get("trained_on") or []],
              "train_time_s": {k: v for r in results for k, v in (r.get("train_time_s") or {}).items()},
              "selection_axes": next((r["selection_axes"] for r in results if r.get("selection_axes")), []),
              "merge_command": command}
    merged.update(aggregate_result(per_seed))
    if out:
        card = read_card(out)
        card.update(evidence_fields(merged))
        update_card(out, card)
        _log(f"wrote the {len(seeds)}-seed table into {out}/card.json")
    return merged


NO_BUDGET = ("dense", "dense_equal", "no_attention", "no_attention_eval")


def _ci(ci, scale: float = 100.0, unit: str = "") -> str:
    return "" if not ci else f" [{scale * ci[0]:.2f}, {scale * ci[1]:.2f}]{unit}"


def markdown_table(table: dict[str, list[dict]]) -> str:
    """The card's rows as a reviewer's table: epochs each model saw, accuracy with its bootstrap
    interval and the std over seeds, cost, heads, CPU latency and speedup with its interval."""
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
            lines.append(f"| {ROW_LABELS.get(method, method)} | {budget} | {ep} | {acc} | {std} | {r['est_cost']:.3f} "
                         f"| {r['active_heads']}/{r['total_heads']} | {ms} | {sp} | {fb} |")
    return "\n".join(lines)


def differences_table(diffs: list[dict], keep=None) -> str:
    """Paired differences in accuracy (points), with the bootstrap interval and the verdict."""
    lines = ["| comparison | difference, points [95% CI] | seeds | verdict |", "|---|---|---|---|"]
    for d in diffs:
        if keep is not None and not keep(d):
            continue
        ci = _ci(d.get("ci"))
        lines.append(f"| {d['a']} − {d['b']} | {100 * d['difference']:+.2f}{ci} | {len(d['seeds'])} | {d.get('verdict', '-')} |")
    return "\n".join(lines)


def print_table(result: dict) -> None:
    print(f"{result['task']}: {result['data']}")
    print(f"seeds {sorted(result['seeds'])}; accuracy: mean over seeds; heads, layout and latency: the first seed's model; "
          f"latency with {result['threads']} thread(s)\n")
    print(markdown_table(result["table"]))
    if result.get("differences"):
        print()
        print(differences_table(result["differences"]))
