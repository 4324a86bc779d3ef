"""Controls for an adaptive checkpoint's card, in the shape every other card has (issue 11, METHODS.md 5).

``no_attention_eval``: this checkpoint with every head closed, on the test split. ``no_attention_trained``:
the same network trained with every head closed for the adaptive method's total epochs (``--train``), or
taken from another card of the same task, architecture and test rows (``--from CARD_FOLDER``, which is
recorded as the source). ``chance``: 1/C and the majority class. Writes ``controls`` into the card.

    python benchmarks/adaptive_controls.py pretrained/synthetic_marks-adaptive --train
    python benchmarks/adaptive_controls.py pretrained/ag_news-word-adaptive --from pretrained/ag_news-word-baa --data-dir ../shared/data
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baa_core.io.checkpoint import load_checkpoint, read_card, update_card  # noqa: E402
from baa_core.measure.evaluate import bootstrap_ci, evaluate  # noqa: E402
from baa_core.methods import TrainConfig  # noqa: E402
from baa_core.methods.no_attention import no_attention_mask  # noqa: E402
from baa_core.pipeline import prepare, round_weights, storage_dtype  # noqa: E402
from baa_core.protocol import chance, method_epochs, train_no_attention  # noqa: E402


def entry(correct: torch.Tensor, what: str, epochs=None, **extra) -> dict:
    c = correct.double()
    return {"accuracy": float(c.mean()), "accuracy_ci": list(bootstrap_ci(c)), "accuracy_std": None, "seeds": 1,
            "epochs": epochs, "what": what, **extra}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--train", action="store_true", help="train the no-attention network here (same task, seed, epochs)")
    how.add_argument("--from", dest="source", help="a card folder of the same task and architecture holding no_attention_trained")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    ckpt = load_checkpoint(args.model)
    card = ckpt.card
    known = {f.name for f in dataclasses.fields(TrainConfig)}  # older cards also hold fields since removed (max_len)
    tcfg = TrainConfig.from_dict({**{k: v for k, v in card["train_config"].items() if k in known}, "device": args.device})
    sizes = card.get("sizes") or {}
    prep = prepare(card["task"], kind=card.get("model_kind", "word"), base=card.get("base_model"), data_dir=args.data_dir,
                   seed=tcfg.seed, max_train=sizes.get("max_train"), max_test=sizes.get("max_test"),
                   checkpoint=None if args.train else ckpt, splits=("train", "val", "test") if args.train else ("test",))
    if len(prep.test) != sizes.get("test", len(prep.test)):
        raise SystemExit(f"the test split has {len(prep.test)} rows here but {sizes.get('test')} in the card: not the same rows")
    closed = no_attention_mask(ckpt.config)
    res = evaluate(ckpt.model.to(args.device), prep.test, head_mask=closed.to(args.device), device=args.device)
    old = card.get("controls") or {}
    controls = {k: v for k, v in old.items() if k not in ("no_attention_eval", "no_attention_trained", "chance", "majority")}
    controls["no_attention_eval"] = entry(res.correct, "this card's weights (seed 0) evaluated with every head closed: "
                                                       "attention adds only its output bias")
    epochs = method_epochs("adaptive", tcfg)
    if args.train:
        torch.manual_seed(tcfg.seed)
        blind = round_weights(train_no_attention(prep, tcfg, epochs), storage_dtype(prep))
        r = evaluate(blind.to(args.device), prep.test, head_mask=closed.to(args.device), device=args.device)
        controls["no_attention_trained"] = entry(r.correct, f"the same network trained with every head closed for "
                                                            f"{epochs:g} epochs (the adaptive method's total)", epochs=epochs,
                                                 command="python benchmarks/adaptive_controls.py " + " ".join(sys.argv[1:]))
    else:
        other = read_card(args.source)
        same = all(other.get(k) == card.get(k) for k in ("task", "architecture", "base_model")) and \
            (other.get("sizes") or {}).get("test") == sizes.get("test")
        if not same:
            raise SystemExit(f"{args.source} is not the same task, architecture and test rows as {args.model}")
        src = (other.get("controls") or {}).get("no_attention_trained")
        if not src:
            raise SystemExit(f"{args.source}'s card has no no_attention_trained control")
        controls["no_attention_trained"] = {**src, "source": f"{Path(args.source).name}'s card (same task, architecture "
                                                             f"and test rows; trained for {src.get('epochs')} epochs)"}
    full = chance(prep.data) if args.train else None
    if full is None:  # the test split alone: 1/C, and the majority class of the training split as the source card says
        n = len(prep.data.label_names)
        full = {"uniform": 1.0 / n, "what": "1/C"}
        prev = (read_card(args.source).get("controls") or {}).get("chance") if args.source else None
        if isinstance(prev, dict):
            full = prev
    controls["chance"] = full
    card["controls"] = controls
    update_card(args.model, card)
    print({k: (v.get("accuracy") if isinstance(v, dict) and "accuracy" in v else v) for k, v in controls.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
