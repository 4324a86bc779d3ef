"""Print the README's "measured here" tables from the shipped checkpoints' cards.

Every number in those tables comes from a card, and every card says which command produced it
(training and accuracy: the card's ``command``; CPU latency: ``latency.command``).

    python benchmarks/report.py [pretrained]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baa_core.pipeline import markdown_table  # noqa: E402


def pct(x, std=None) -> str:
    return f"{100 * x:.2f}" + (f" ± {100 * std:.2f}" if std else "")


def main(root: str = "pretrained") -> int:
    for folder in sorted(Path(root).iterdir()):
        card_path = folder / "card.json"
        if not card_path.exists():
            continue
        card = json.loads(card_path.read_text())
        print(f"### {card['name']}\n")
        print(f"{card.get('architecture', '')}; {card.get('data', '')}.  ")
        seeds = card.get("seeds")
        print(f"Trained with `{card['command']}`" + (f" (seeds {seeds})" if seeds else "") + ".  ")
        lat = card.get("latency")
        if lat:
            print(f"CPU latency: `{lat['command']}` ({lat['batches']} batches of {lat['batch_size']} test examples, "
                  f"mean padded length {lat['mean_padded_length']:.1f}, {lat['rounds']} rounds).  ")
        if card.get("train_time_s") is not None:
            where = "on a lent H100 GPU" if card.get("trained_on") else "on this machine's CPU"
            print(f"Training time ({where}, dense warm start included): {card['train_time_s']} s.  ")
        print()
        sweeps = card.get("sweeps", {})
        gated = {k: v for k, v in sweeps.items() if k != "budgetformer" and v and "budget" in v[0]}
        if gated:
            print(markdown_table(gated))
            print()
        if "budgetformer" in sweeps:
            bf = sweeps["budgetformer"][0]
            dense = sweeps.get("dense", [{}])[0]
            print("| model | accuracy | mean s | heads used | attention FLOPs vs full MHA |")
            print("|---|---|---|---|---|")
            print(f"| dense (same size, warm start) | {pct(dense.get('accuracy', float('nan')))} | - | 1.000 | 1.000 |")
            print(f"| BudgetFormer | {pct(bf['accuracy'])} | {bf['s_mean']:.3f} | {bf['est_cost']:.3f} | "
                  f"{bf['attention_flop_fraction']:.3f} |")
            a = card.get("analysis", {})
            c = a.get("s_by_complexity")
            if c:
                print(f"\ns by input complexity ({c['complexity_measure']}): Spearman rho = {c['spearman_rho']:.3f}; "
                      + ", ".join(f"{r['bucket']} {r['s_mean']:.3f} ± {r['s_std']:.3f}" for r in c["summary"]) + ".")
            for r in a.get("ablations", []):
                print(f"- ablation, {r['variant']}: {pct(r['accuracy'])}, attention FLOPs {r['attention_flop_fraction']:.3f}")
            p = a.get("per_example_latency")
            if p:
                print(f"- per-input structural execution (batch 1, {p['threads']} thread, {p['n']} test inputs): median "
                      f"measured / FLOP-model prediction {p['median_ratio']:.3f}; median speedup over dense "
                      f"{p['median_speedup']:.3f} (FLOP bound {p['median_flop_speedup']:.3f})")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
