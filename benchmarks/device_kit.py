"""Build ``.carry/`` for a run on the lent GPU host (which has torch and transformers, but not the MiniLM
package, ``datasets`` or ../shared): all-MiniLM-L6-v2 with its weights in float16 (a call carries at most
64 MiB) and the AG News / DBpedia14 CSVs compressed with xz. ``.carry/`` is git-ignored: nothing of the
data is ever committed. On the host: ``BAA_MINILM_DIR=.carry/minilm`` and ``--data-dir`` on the unpacked
copy (``tar -xJf .carry/data.tar.xz -C /tmp``).

The frozen word embeddings travel in float16; BERT-family models use them rounded to float16 everywhere
(``io/pretrained.py``), so a model trained there and loaded here sees the same numbers.

``--embeddings-only``: ``.carry/minilm-emb`` instead, MiniLM's word embeddings alone (23 MB), all that a
trained MiniLM checkpoint needs from its base to load (its tokenizer and other layers are its own): to
time checkpoints on the GPU host's CPU cores (``benchmarks/GPU_JOBS.md``, jobs L1 and L2).
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / ".carry"))
    ap.add_argument("--embeddings-only", action="store_true", help="write minilm-emb/ (word embeddings alone) instead of minilm/")
    args = ap.parse_args()
    from safetensors.torch import load_file, save_file

    from baa_core.io.pretrained import resolve_source
    from baa_core.model.families.bert import hf_to_local

    out = Path(args.out)
    minilm = out / ("minilm-emb" if args.embeddings_only else "minilm")
    minilm.mkdir(parents=True, exist_ok=True)
    src = Path(resolve_source(None))
    for f in src.iterdir():
        if f.is_file() and f.name != "model.safetensors" and f.suffix in (".json", ".txt"):
            shutil.copyfile(f, minilm / f.name)
    state = load_file(str(src / "model.safetensors"))
    if args.embeddings_only:
        state = {k: v for k, v in state.items() if hf_to_local(k) == "embeddings.word_embeddings.weight"}
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
              str(minilm / "model.safetensors"), metadata={"format": "pt"})
    data = Path(args.data_dir)
    files = ["ag_news/test.csv", "ag_news/train_partial_desc_only.csv", "dbpedia14/partial_content_only.csv"]
    subprocess.run(["tar", "-cJf", str(out / "data.tar.xz"), "-C", str(data), *files], check=True)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
