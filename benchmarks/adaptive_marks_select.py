"""Issue 10, goal 4: choose how the adaptive method learns per-input allocation, on synthetic_marks'
VALIDATION split (rules of evidence: the test split only reports the chosen recipe).

For each seed one dense warm start; from it one adaptive model per recipe variant (``--variant
NAME:JSON`` with TrainConfig overrides, e.g. ``fd1:{"ad_fd_weight": 1.0}``), rounded to the storage
dtype and calibrated on the validation split as shipped models are. Per variant and budget, on the
validation rows: accuracy, realised head fraction, mean s per number of marks and Spearman's rho
between the number of marks (the known difficulty) and s.

    python benchmarks/adaptive_marks_select.py --seeds 0 --variant base:{} --variant fd1:'{"ad_fd_weight": 1}'

One JSON object per line on stdout; progress on stderr.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baa_core.io.data import count_marks, iterate_batches, mark_kinds  # noqa: E402
from baa_core.measure.adaptive import adaptive_outputs  # noqa: E402
from baa_core.measure.analysis import spearman  # noqa: E402
from baa_core.methods.adaptive import calibrate  # noqa: E402
from baa_core.measure.evaluate import evaluate  # noqa: E402
from baa_core.pipeline import (WORD_PRESETS, default_train_config, fit, fit_dense, prepare, round_weights,  # noqa: E402
                               storage_dtype)


def _variant(text: str) -> tuple[str, dict]:
    name, _, overrides = text.partition(":")
    return name, json.loads(overrides or "{}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0", type=lambda t: [int(x) for x in t.split(",") if x.strip()])
    ap.add_argument("--variant", action="append", type=_variant, required=True, help="NAME:JSON TrainConfig overrides")
    ap.add_argument("--budgets", default="0.15,0.2,0.3,0.5,0.7", type=lambda t: [float(x) for x in t.split(",")])
    ap.add_argument("--dense", default="{}", type=json.loads, help="JSON TrainConfig overrides for the dense warm start")
    ap.add_argument("--shape", default="{}", type=json.loads, help="JSON model-shape overrides (d_model, d_ffn, ...)")
    args = ap.parse_args()
    WORD_PRESETS["synthetic_marks"] = {**WORD_PRESETS["synthetic_marks"], **args.shape}
    for seed in args.seeds:
        prep = prepare("synthetic_marks", seed=seed)
        marks = torch.tensor([count_marks(t) for t in prep.data.val.texts], dtype=torch.float)
        kinds = torch.tensor([mark_kinds(t) for t in prep.data.val.texts], dtype=torch.float)
        base_cfg = default_train_config("synthetic_marks", "word", seed=seed, **args.dense)
        t0 = time.perf_counter()
        dense = fit_dense(prep, base_cfg, []).cpu().eval()
        print(json.dumps({"dense": args.dense, "shape": args.shape, "seed": seed,
                          "val_accuracy": evaluate(dense, prep.val).accuracy, "train_s": round(time.perf_counter() - t0, 1)}),
              flush=True)
        for name, overrides in args.variant:
            t0 = time.perf_counter()
            cfg = default_train_config("synthetic_marks", "word", seed=seed, **{**args.dense, **overrides})
            model = round_weights(fit(prep, "adaptive", cfg, dense=copy.deepcopy(dense), callbacks=[]).model, storage_dtype(prep))
            calibrate(model, iterate_batches(prep.val, 256))
            for b in args.budgets:
                o = adaptive_outputs(model, prep.val, b)
                s = o["s"].mean(1)  # (N,) mean over blocks
                by = {int(k): round(float(s[marks == k].mean()), 4) for k in sorted(set(marks.tolist()))}
                acc = {int(k): round(float((o["pred"] == o["label"])[marks == k].float().mean()), 4) for k in by}
                print(json.dumps({"variant": name, "overrides": overrides, "seed": seed, "split": "val", "budget": b,
                                  "accuracy": float((o["pred"] == o["label"]).float().mean()), "realised": o["realised"],
                                  "rho_marks_s": spearman(marks, s), "s_by_marks": by, "accuracy_by_marks": acc,
                                  "rho_kinds_s": spearman(kinds, s),
                                  "s_by_kinds": {k: round(float(s[kinds == k].mean()), 4) for k in (1, 2)},
                                  "s_std": float(s.std()), "train_s": round(time.perf_counter() - t0, 1)}), flush=True)
            print(f"seed {seed} {name}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
