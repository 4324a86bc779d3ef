"""A model card, typed and validated once on load.

``card.json`` is written by this project, but a folder can be copied, edited or damaged, and every page
reads it. ``Card.from_dict`` checks each field once and keeps what is sound: a value of the wrong type,
a string where a number belongs, NaN or infinity, a sweep row that is not an object, labels that do not
match the model's classes, a CSV file name that points outside its folder. Each fault is dropped (the
field falls back to "unknown") and described in one sentence in ``Card.problems``, so a page shows the
sentence instead of crashing, printing "nan%", or silently losing a point.

"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

# Sweep-row keys that hold numbers, with the range a sound value lies in (None: unbounded).
ROW_NUMBERS: dict[str, tuple[float | None, float | None]] = {
    "budget": (0.0, 1.0), "accuracy": (0.0, 1.0), "accuracy_std": (0.0, 1.0), "est_cost": (0.0, 1.0),
    "soft_mass": (0.0, 1.0), "latency_ms": (0.0, None), "dense_latency_ms": (0.0, None), "speedup": (0.0, None),
    "flop_speedup": (0.0, None), "fraction_of_bound": (0.0, None), "n": (0, None), "active_heads": (0, None),
    "total_heads": (0, None), "threads": (0, None), "s_mean": (0.0, 1.0), "attention_flop_fraction": (0.0, None),
    "heads_fraction": (0.0, 1.0), "seeds": (0, None),
}
ROW_NUMBER_LISTS = ("accuracy_seeds", "mean_heads_per_layer")  # mean_: per-input models' heads per block, averaged
ROW_INT_LISTS = ("heads_per_layer",)
TEXT_FIELDS = ("name", "task", "method", "model_kind", "base_model", "architecture", "data", "protocol", "command",
               "created", "notes", "csv_file", "text_column", "label_column")
DICT_FIELDS = ("sizes", "train_config", "environment", "analysis", "latency")


def finite_number(value: Any) -> float | None:
    """``value`` as a float if it is a real, finite number (not a bool, string, NaN or infinity), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class Card:
    name: str = ""
    task: str | None = None
    method: str | None = None
    model_kind: str = "word"
    base_model: str | None = None
    architecture: str = ""
    labels: list[str] = field(default_factory=list)
    data: str = ""
    protocol: str = ""
    command: str = ""
    created: str = ""
    notes: str = ""
    csv_file: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    train_time_s: float | None = None
    weights_seed: int | None = None
    seeds: list[int] = field(default_factory=list)
    sizes: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    analysis: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    sweeps: dict[str, list[dict]] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as they were
    problems: list[str] = field(default_factory=list)  # one sentence per field that was dropped or repaired

    # ------------------------------------------------------------ reading
    @classmethod
    def from_dict(cls, raw: Any, *, n_classes: int | None = None) -> Card:
        """Validate ``raw`` (parsed card.json). ``n_classes``: the model's, to check ``labels`` against."""
        if not isinstance(raw, dict):
            return cls(problems=[f"card.json holds {type(raw).__name__}, not an object; the card is ignored"])
        card, problems = cls(), []
        known = {f.name for f in fields(cls)} - {"extra", "problems"}

        def bad(key: str, what: str) -> None:
            problems.append(f"card.json: {key} {what}; it is ignored")

        for key in TEXT_FIELDS:
            value = raw.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                setattr(card, key, value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and key in ("created", "notes", "name"):
                setattr(card, key, str(value))
            else:
                bad(key, f"is {_kind(value)}, not text")
        if card.csv_file is not None and (not card.csv_file or "/" in card.csv_file or "\\" in card.csv_file
                                          or card.csv_file.startswith(".")):
            bad("csv_file", f"({card.csv_file[:60]!r}) is not a plain file name inside the model's folder")
            card.csv_file = None
        for key in DICT_FIELDS:
            value = raw.get(key)
            if value is None:
                continue
            if isinstance(value, dict):
                setattr(card, key, _clean_tree(value, key, problems))
            else:
                bad(key, f"is {_kind(value)}, not an object")
        if "train_time_s" in raw and raw["train_time_s"] is not None:
            card.train_time_s = finite_number(raw["train_time_s"])
            if card.train_time_s is None:
                bad("train_time_s", f"is {_kind(raw['train_time_s'])}, not a finite number")
        if raw.get("weights_seed") is not None:
            if isinstance(raw["weights_seed"], int) and not isinstance(raw["weights_seed"], bool):
                card.weights_seed = raw["weights_seed"]
            else:
                bad("weights_seed", f"is {_kind(raw['weights_seed'])}, not a whole number")
        if raw.get("seeds") is not None:
            seeds = raw["seeds"]
            if isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
                card.seeds = list(seeds)
            else:
                bad("seeds", "is not a list of whole numbers")
        labels = raw.get("labels")
        if labels is not None:
            if not isinstance(labels, list) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels):
                bad("labels", "is not a list of names")
            elif n_classes is not None and len(labels) != n_classes:
                problems.append(f"card.json: labels names {len(labels)} classes but the model has {n_classes}; "
                                f"class numbers are shown instead")
            else:
                card.labels = [str(x) for x in labels]
        card.sweeps = _clean_sweeps(raw.get("sweeps"), problems)
        card.extra = {k: v for k, v in raw.items() if k not in known}
        card.problems = problems
        return card

    # ------------------------------------------------------------ dict-style reading, for code written against card.json
    def as_dict(self) -> dict:
        """The validated card as plain JSON-style data (what was dropped is absent)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "problems")}
        return {**self.extra, **{k: v for k, v in out.items() if v is not None}}

    def get(self, key: str, default=None):
        if key in ("extra", "problems"):
            return default
        if hasattr(self, key) and key in {f.name for f in fields(self)}:
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)

    def __getitem__(self, key: str):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key: str) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def label_name(self, index: int) -> str:
        """The class name of ``index``, or its number when the card names no (or too few) classes."""
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)


_MISSING = object()


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"a {type(value).__name__}" if not isinstance(value, (int, float)) or isinstance(value, bool) else repr(value)


def _clean_tree(value: Any, where: str, problems: list[str]) -> Any:
    """JSON data with every non-finite float replaced by None (and said once per tree)."""
    found = []

    def walk(v, path):
        if isinstance(v, float) and not math.isfinite(v):
            found.append(path)
            return None
        if isinstance(v, dict):
            return {k: walk(x, f"{path}.{k}") for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x, f"{path}[{i}]") for i, x in enumerate(v)]
        return v

    out = walk(value, where)
    if found:
        problems.append(f"card.json: {found[0]} is not a finite number" + (f" (and {len(found) - 1} more in {where})"
                                                                           if len(found) > 1 else "") + "; shown as unknown")
    return out


def _clean_sweeps(raw: Any, problems: list[str]) -> dict[str, list[dict]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"card.json: sweeps is {_kind(raw)}, not an object of methods; the card's measurements are ignored")
        return {}
    out: dict[str, list[dict]] = {}
    for method, rows in raw.items():
        if not isinstance(rows, list):
            problems.append(f"card.json: sweeps.{method} is {_kind(rows)}, not a list of rows; it is ignored")
            continue
        clean = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(f"card.json: sweeps.{method}[{i}] is {_kind(row)}, not a row; it is ignored")
                continue
            clean.append(_clean_row(row, f"sweeps.{method}[{i}]", problems))
        out[str(method)] = clean
    return out


def _clean_row(row: dict, where: str, problems: list[str]) -> dict:
    out = dict(row)
    for key, (low, high) in ROW_NUMBERS.items():
        if key not in row or row[key] is None:
            continue
        value = finite_number(row[key])
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            rng = f" in [{low:g}, {high:g}]" if high is not None else ""
            problems.append(f"card.json: {where}.{key} is {_kind(row[key])}, not a number{rng}; shown as unknown")
            out[key] = None
        elif key in ("n", "active_heads", "total_heads", "threads", "seeds") and float(value).is_integer():
            out[key] = int(value)
        else:
            out[key] = value
    for key in ROW_NUMBER_LISTS:
        if key in row and row[key] is not None:
            values = row[key]
            if not isinstance(values, list) or any(finite_number(v) is None for v in values):
                problems.append(f"card.json: {where}.{key} is not a list of finite numbers; it is ignored")
                out.pop(key)
    for key in ROW_INT_LISTS:
        if key in row and row[key] is not None:
            values = row[key]
            if not isinstance(values, list) or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
                problems.append(f"card.json: {where}.{key} is not a list of whole numbers; it is ignored")
                out.pop(key)
    for key, value in row.items():  # any other float that is NaN / infinite
        if key not in ROW_NUMBERS and isinstance(value, float) and not math.isfinite(value):
            problems.append(f"card.json: {where}.{key} is {value}; shown as unknown")
            out[key] = None
    return out
