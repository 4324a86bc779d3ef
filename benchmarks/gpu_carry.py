"""Build ``.carry/``: what a bare GPU host (torch + transformers, no ``datasets``, no network) needs to run
the training jobs in the README: the data CSVs and a float16 copy of all-MiniLM-L6-v2 (and, with
``--embeddings``, its word embeddings alone, for timing trained MiniLM checkpoints there).

    python benchmarks/gpu_carry.py [--data ../shared/data] [--out .carry] [--no-minilm] [--embeddings]

``.carry/`` is git-ignored; name it in the device call's ``carry``. The data are byte-identical copies
of the files the loaders read; the MiniLM copy is the installed package's folder with its weights
halved (87 MB -> 44 MB). Models trained from it load here exactly: their frozen word embeddings are
rounded to float16 on both sides (``baa_core.bert.load_pretrained``), and their other layers are in
the checkpoint. The jobs point ``BAA_MINILM_DIR`` at ``.carry/minilm``.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FILES = ("ag_news/test.csv", "ag_news/train_partial_desc_only.csv", "dbpedia14/partial_content_only.csv")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default=".carry")
    ap.add_argument("--no-minilm", action="store_true", help="data only (the word-level jobs)")
    ap.add_argument("--embeddings", action="store_true",
                    help="also minilm-emb/: MiniLM's word embeddings alone (float16, 23 MB), all that timing a "
                         "trained MiniLM checkpoint needs from its base")
    args = ap.parse_args()
    src, out = Path(args.data), Path(args.out)
    for rel in FILES:
        if not (src / rel).exists():
            print(f"error: {src / rel} is missing", file=sys.stderr)
            return 2
        (out / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, out / "data" / rel)
        assert md5(src / rel) == md5(out / "data" / rel)
    if not args.no_minilm:
        from baa_core.bert import write_half_copy

        write_half_copy(None, out / "minilm")
    if args.embeddings:
        from baa_core.bert import write_half_copy

        write_half_copy(None, out / "minilm-emb", embeddings_only=True)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB ({', '.join(FILES)}" + ("" if args.no_minilm else ", minilm/ in float16") + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
