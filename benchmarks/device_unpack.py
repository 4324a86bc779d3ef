"""Put a GPU session's returned files back together: small.tar.gz into RUNS_DIR, and each
NAME.safetensors.partNN set into RUNS_DIR/NAME/model.safetensors (see device_pack.sh)."""
import sys
import tarfile
from collections import defaultdict
from pathlib import Path


def main(src: str, runs: str) -> int:
    src_dir, runs_dir = Path(src), Path(runs)
    runs_dir.mkdir(parents=True, exist_ok=True)
    small = src_dir / "small.tar.gz"
    if small.exists():
        with tarfile.open(small) as t:
            t.extractall(runs_dir, filter="data")
    parts = defaultdict(list)
    for p in src_dir.glob("*.safetensors.part*"):
        parts[p.name.split(".safetensors.part")[0]].append(p)
    for name, pieces in parts.items():
        target = runs_dir / name / "model.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            for p in sorted(pieces):
                f.write(p.read_bytes())
        print(f"{target}: {target.stat().st_size / 2**20:.1f} MiB from {len(pieces)} pieces")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
