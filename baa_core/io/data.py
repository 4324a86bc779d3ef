"""Data: the synthetic marked-token task, AG News / DBpedia14 / user CSVs through HF `datasets`.

Hub names (``ag_news`` -> ``fancyzhx/ag_news``, ``dbpedia14`` -> ``fancyzhx/dbpedia_14``) work for
online users. Offline, a folder in the canonical CSV layout (no header; class index 1..C, title,
description/content) loads through the same ``datasets.load_dataset("csv", ...)`` API:

    DATA_DIR/ag_news/test.csv + train.csv (or the partial train_partial_desc_only.csv)
    DATA_DIR/dbpedia14/train.csv + test.csv (or partial_content_only.csv, split here)

Splits are deterministic: validation is a stratified 10% of the training rows (seed 0), so every
method and seed sees the same evaluation data.
"""
from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

AG_NEWS_LABELS = ["World", "Sports", "Business", "Sci/Tech"]
DBPEDIA_LABELS = [
    "Company", "EducationalInstitution", "Artist", "Athlete", "OfficeHolder", "MeanOfTransportation",
    "Building", "NaturalPlace", "Village", "Animal", "Plant", "Album", "Film", "WrittenWork",
]
HUB_NAMES = {"ag_news": "fancyzhx/ag_news", "dbpedia14": "fancyzhx/dbpedia_14"}
TASKS = ("synthetic", "synthetic_marks", "ag_news", "dbpedia14")
SPLIT_SEED = 0


class DataError(ValueError):
    """Data that cannot be used, with a message a user can act on."""


@dataclass
class TextDataset:
    texts: list[str]
    labels: list[int]
    label_names: list[str]
    name: str = ""

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "TextDataset":
        return TextDataset([self.texts[i] for i in indices], [self.labels[i] for i in indices], self.label_names, self.name)


@dataclass
class TaskData:
    """Train / validation / test splits of one task and a sentence saying where they came from."""

    train: TextDataset
    val: TextDataset
    test: TextDataset
    source: str
    task: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def label_names(self) -> list[str]:
        return self.train.label_names


# ---------------------------------------------------------------- synthetic marked-token task
SYNTH_MARK = "[M]"
SYNTH_MARK_LEFT = "[L]"  # synthetic_marks only: marks the value to its left
SYNTH_VALUES = list("abcdefgh")
SYNTH_DISTRACTORS = list("pqrstuvwxyz")


def marked_token_task(n: int, seq_len: int = 16, seed: int = 0, max_marks: int = 1) -> TextDataset:
    """The label is the value token right after the marker [M], among random distractors.

    Values a..h also appear elsewhere as distractors, so a bag of words can only guess which one is
    marked (a model without attention reaches about a third); being right every time needs relating
    the marker to its right-hand neighbour, which only attention can do.

    ``max_marks`` > 1 (the ``synthetic_marks`` task, issue 10): each sequence has 1 to max_marks
    marks (uniform), each of one of two kinds drawn at random: [M] marks the value to its right (as
    in the original task), [L] the value to its left; the label is the **largest** marked value
    (a < b < ... < h). The label is drawn first, uniformly, and the other marked values at or
    below it, so the label says as little about the number of marks as possible and a guess from
    the letters present gets no easier with more marks. Each mark adds a value to read, and reading
    a right neighbour and reading a left neighbour are two different attention patterns, so the
    more marks, the likelier an input needs both (1 - 2 * 0.5^k): the number of marks is the known
    difficulty. With max_marks = 1 the sequences are exactly the original task's.
    """
    if seq_len < 2 * max(1, max_marks):
        raise ValueError("seq_len must be at least twice the number of marks")
    rng = random.Random(seed)
    pool = SYNTH_VALUES + SYNTH_DISTRACTORS
    texts, labels = [], []
    for _ in range(n):
        tokens = [rng.choice(pool) for _ in range(seq_len)]
        if max_marks <= 1:
            pos = rng.randrange(seq_len - 1)
            label = rng.randrange(len(SYNTH_VALUES))
            tokens[pos], tokens[pos + 1] = SYNTH_MARK, SYNTH_VALUES[label]
        else:
            used: set[int] = set()
            k, label = rng.randint(1, max_marks), rng.randrange(len(SYNTH_VALUES))
            others = [rng.randint(0, label) for _ in range(k - 1)]
            values_to_place = [label] + others
            rng.shuffle(values_to_place)
            for v in values_to_place:
                mark = rng.choice((SYNTH_MARK, SYNTH_MARK_LEFT))
                offset = 1 if mark == SYNTH_MARK else -1
                while True:  # no position holds two marks or two values
                    p = rng.randrange(max(0, -offset), seq_len - max(0, offset))
                    if p not in used and p + offset not in used:
                        break
                used |= {p, p + offset}
                tokens[p], tokens[p + offset] = mark, SYNTH_VALUES[v]
        texts.append(" ".join(tokens))
        labels.append(label)
    return TextDataset(texts, labels, list(SYNTH_VALUES), "synthetic" if max_marks <= 1 else "synthetic_marks")


def count_marks(text: str) -> int:
    """How many marks a synthetic sequence holds (the synthetic_marks task's difficulty)."""
    return sum(t in (SYNTH_MARK, SYNTH_MARK_LEFT) for t in text.split())


def mark_kinds(text: str) -> int:
    """How many kinds of mark ([M], [L]) a synthetic sequence holds: the attention patterns it needs."""
    tokens = set(text.split())
    return (SYNTH_MARK in tokens) + (SYNTH_MARK_LEFT in tokens)


def synthetic_vocab(task: str = "synthetic") -> list[str]:
    extra = [SYNTH_MARK_LEFT] if task == "synthetic_marks" else []  # the original vocabulary keeps its ids
    return ["[PAD]", "[UNK]", SYNTH_MARK] + SYNTH_VALUES + SYNTH_DISTRACTORS + extra


SYNTH_MAX_MARKS = {"synthetic": 1, "synthetic_marks": 4}


def load_synthetic(n_train: int = 8000, n_val: int = 1000, n_test: int = 10000, seq_len: int = 16, seed: int = 0,
                   task: str = "synthetic") -> TaskData:
    k = SYNTH_MAX_MARKS[task]
    what = ("synthetic marked-token task" if k == 1 else
            f"synthetic marked-token task with 1 to {k} marks ([M]: value to the right, [L]: to the left), "
            f"label = the largest marked value")
    return TaskData(
        marked_token_task(n_train, seq_len, seed * 3 + 1, k),
        marked_token_task(n_val, seq_len, seed * 3 + 2, k),
        marked_token_task(n_test, seq_len, 10_000 + seed, k),
        f"{what} (seq_len={seq_len}, 8 classes; generated, seed {seed})",
        task,
    )


# ---------------------------------------------------------------- news / DBpedia through datasets
_ENTITY = [("#39;", "'"), ("quot;", '"'), ("#36;", "$"), ("amp;", "&"), ("lt;", "<"), ("gt;", ">"), ("\\n", " "), ("\\", " ")]


def clean_text(text: str) -> str:
    """Undo AG News' escape residue (``#39;``, ``quot;``, backslash line breaks) and squeeze spaces."""
    for a, b in _ENTITY:
        text = text.replace(a, b)
    return re.sub(r"\s+", " ", text).strip()


def join_title(title, body) -> str:
    """Title and body joined by a space, as the Hub's ag_news ``text`` field does."""
    return clean_text(" ".join(p for p in (title, body) if p))


def default_data_dir() -> Path | None:
    """$BAA_DATA_DIR, else a ``shared/data`` folder beside the working directory or this checkout."""
    env = os.environ.get("BAA_DATA_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def data_available(task: str, data_dir: str | Path | None = None) -> str | None:
    """None when ``task`` can be loaded right now without the network; otherwise why not.

    Lets a caller decide before ``load_task`` falls back to the Hugging Face Hub (which, offline,
    fails only after network timeouts).
    """
    if task in SYNTH_MAX_MARKS:
        return None
    if task not in HUB_NAMES:
        return f"unknown task {task!r}"
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if folder is not None:
        try:
            _task_folder(folder, task)
            return None
        except DataError as exc:
            return str(exc)
    try:
        from huggingface_hub.constants import HF_HUB_OFFLINE
    except ImportError:  # pragma: no cover - huggingface_hub comes with datasets
        HF_HUB_OFFLINE = False
    if HF_HUB_OFFLINE or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return f"no local {task} data (set BAA_DATA_DIR or --data-dir) and the Hugging Face Hub is switched off"
    return None


def _task_folder(data_dir: Path, task: str) -> Path:
    for candidate in (data_dir / task, data_dir):
        if any((candidate / f).exists() for f in ("test.csv", "train.csv", "train_partial_desc_only.csv", "partial_content_only.csv")):
            return candidate
    raise DataError(f"no {task} CSV files found under {data_dir} (expected {data_dir / task}/test.csv ...)")


def _read_canonical_csv(files: dict[str, Path], label_names: list[str]) -> dict[str, TextDataset]:
    """The canonical AG News / DBpedia layout: no header, rows of (class index from 1, title, body).

    Read with the standard library's csv module (the same texts as ``datasets``' CSV builder, checked on
    the real files), so loading needs no ``datasets`` (a GPU host without it) and fails with a line number.
    """
    import csv

    out = {}
    for split, path in files.items():
        texts, labels = [], []
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if len(row) != 3 or not row[0].strip().lstrip("-").isdigit():
                    raise DataError(f"{path}, line {line}: expected (class index, title, body), got {len(row)} fields")
                y = int(row[0]) - 1
                if not 0 <= y < len(label_names):
                    raise DataError(f"{path}, line {line}: class indices must lie in 1..{len(label_names)}")
                labels.append(y)
                texts.append(join_title(row[1], row[2]))
        out[split] = TextDataset(texts, labels, label_names, split)
    return out


def _read_hub(task: str) -> dict[str, TextDataset]:
    import datasets

    loaded = datasets.load_dataset(HUB_NAMES[task])
    names = AG_NEWS_LABELS if task == "ag_news" else DBPEDIA_LABELS
    out = {}
    for split in ("train", "test"):
        ds = loaded[split]
        if "content" in ds.column_names:
            texts = [join_title(t, c) for t, c in zip(ds["title"], ds["content"])]
        else:
            texts = [clean_text(t) for t in ds["text"]]
        out[split] = TextDataset(texts, list(ds["label"]), names, split)
    return out


def stratified_split(ds: TextDataset, held: float | int, seed: int = SPLIT_SEED) -> tuple[TextDataset, TextDataset]:
    """(rest, held-out): ``held`` is a fraction of each class, or a count per class."""
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(ds.labels):
        by_class.setdefault(y, []).append(i)
    keep, out = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        n = int(round(held * len(idx))) if isinstance(held, float) else int(held)
        out += idx[:n]
        keep += idx[n:]
    return ds.subset(sorted(keep)), ds.subset(sorted(out))


def load_task(task: str, data_dir: str | Path | None = None, seed: int = 0, max_train: int | None = None,
              max_test: int | None = None) -> TaskData:
    """Train/val/test splits for ``synthetic``, ``ag_news`` or ``dbpedia14`` (local folder or Hub).

    ``max_train`` / ``max_test`` keep a stratified subset (quick checks); cards record it.
    """
    if task in SYNTH_MAX_MARKS:
        data = load_synthetic(n_train=max_train or 8000, n_test=max_test or 10000, seed=seed, task=task)
        data.extra.update({k: v for k, v in (("max_train", max_train), ("max_test", max_test)) if v})
        return data
    if task not in HUB_NAMES:
        raise DataError(f"unknown task {task!r}; choose one of {TASKS} or load a CSV with load_csv")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    names = AG_NEWS_LABELS if task == "ag_news" else DBPEDIA_LABELS
    extra = {}
    if data_dir is None:
        splits, source = _read_hub(task), f"{HUB_NAMES[task]} from the Hugging Face Hub"
        train_full, test = splits["train"], splits["test"]
    else:
        folder = _task_folder(data_dir, task)
        if (folder / "train.csv").exists() and (folder / "test.csv").exists():
            splits = _read_canonical_csv({"train": folder / "train.csv", "test": folder / "test.csv"}, names)
            train_full, test = splits["train"], splits["test"]
            source = f"canonical train.csv / test.csv in {folder}"
        elif task == "ag_news":
            splits = _read_canonical_csv({"train": folder / "train_partial_desc_only.csv", "test": folder / "test.csv"}, names)
            train_full, test = splits["train"], splits["test"]
            source = (f"{folder}/train_partial_desc_only.csv (11,971 genuine training rows, description only) "
                      f"for training; the canonical 7,600-row test.csv (title + description) for test")
        else:
            rows = _read_canonical_csv({"rows": folder / "partial_content_only.csv"}, names)["rows"]
            train_full, test = stratified_split(rows, 150)  # 2,100 test rows, 150 per class
            source = (f"{folder}/partial_content_only.csv (9,999 genuine rows, content only): "
                      f"a stratified 150 rows per class (2,100) held out as test, seed {SPLIT_SEED}")
    if max_train is not None and len(train_full) > max_train:
        train_full, _ = stratified_split(train_full, 1.0 - max_train / len(train_full))
        extra["max_train"] = max_train
    if max_test is not None and len(test) > max_test:
        test, _ = stratified_split(test, 1.0 - max_test / len(test))
        extra["max_test"] = max_test
    train, val = stratified_split(train_full, 0.1)
    return TaskData(train, val, test, source + "; validation: a stratified 10% of the training rows", task, extra)


MIN_ROWS_PER_CLASS = 5  # so that every class gets test rows and training rows from the stratified split
SNIFF_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}


def _root_cause(exc: BaseException) -> str:
    """The innermost message of an exception chain (datasets wraps pandas' real reason in a generic one)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def check_csv_file(path: str | Path) -> int:
    """Read a user's CSV once with Python's csv module and say, with the line number, what makes it
    unusable: not UTF-8, one column that looks like another delimiter, a line with more fields than
    the header, no rows. Returns the number of data rows."""
    import csv

    path = Path(path)
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                try:
                    line.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataError(f"{path.name} is not UTF-8 text: line {lineno} has the byte 0x{line[exc.start]:02x} at "
                                    f"column {exc.start + 1}; save the file as UTF-8 CSV") from None
    except OSError as exc:
        raise DataError(f"{path.name} cannot be read ({exc.strerror or exc})") from None
    rows = 0
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
            if not header:
                raise DataError(f"{path.name} is empty: a CSV with a header row (e.g. text,label) is needed")
            if len(header) == 1:
                for delim, what in SNIFF_DELIMITERS.items():
                    if delim in header[0]:
                        raise DataError(f"{path.name} has a single column on line 1 ({header[0][:60]!r}): it looks "
                                        f"{what}-separated; save it with commas between the columns")
            for row in reader:
                if not row:
                    continue
                if len(row) > len(header):
                    raise DataError(f"{path.name}: line {reader.line_num} has {len(row)} fields but the header has "
                                    f"{len(header)}; a text containing commas must be in double quotes")
                rows += 1
        except csv.Error as exc:
            raise DataError(f"{path.name}: line {reader.line_num} cannot be parsed as CSV ({exc})") from None
    if rows == 0:
        raise DataError(f"{path.name} has a header row but no data rows")
    return rows


def load_csv(path: str | Path, text_column: str = "text", label_column: str = "label", val_fraction: float = 0.1,
             test_fraction: float = 0.2, max_train: int | None = None, max_test: int | None = None) -> TaskData:
    """A user's CSV with a header row: one text column and one label column (names or integers).

    Rows with an empty text or an empty label are left out and counted in ``extra["warnings"]``; a
    class with fewer than MIN_ROWS_PER_CLASS rows is refused (it would get no test row, and the card
    would report a meaningless accuracy). ``max_train`` / ``max_test`` keep stratified subsets.
    """
    import datasets

    path = Path(path)
    check_csv_file(path)
    bars_were_off = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # "Generating train split": datasets' cache, not a step of ours; the caller reports progress
    try:
        ds = datasets.load_dataset("csv", data_files=str(path), keep_default_na=False)["train"]
    except Exception as exc:  # datasets raises many types for unreadable files; its own message hides the cause
        raise DataError(f"could not read {path.name} as CSV: {_root_cause(exc)}") from exc
    finally:
        if not bars_were_off:
            datasets.enable_progress_bars()
    missing = [c for c in (text_column, label_column) if c not in ds.column_names]
    if missing:
        raise DataError(f"{path.name} has columns {ds.column_names}; it needs {missing} (a text and a label column)")
    all_texts = ["" if t is None else str(t) for t in ds[text_column]]
    all_raw = ["" if v is None else str(v).strip() for v in ds[label_column]]
    no_label = sum(not v for v in all_raw)
    no_text = sum(bool(v) and not t.strip() for t, v in zip(all_texts, all_raw))
    keep = [i for i, (t, v) in enumerate(zip(all_texts, all_raw)) if v and t.strip()]
    texts, raw = [all_texts[i] for i in keep], [all_raw[i] for i in keep]
    warnings = []
    if no_label or no_text:
        parts = [f"{n} row{'s' if n != 1 else ''} with an empty {what}" for n, what in ((no_label, "label"), (no_text, "text")) if n]
        warnings.append(f"{path.name}: {' and '.join(parts)} left out ({len(texts)} of {len(all_texts)} rows kept)")
    if len(texts) < 20:
        raise DataError(f"{path.name} has {len(texts)} usable row{'' if len(texts) == 1 else 's'} (a text and a label); "
                        f"at least 20 are needed to train and evaluate")
    names = sorted(set(raw), key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v))
    if len(names) < 2:
        raise DataError(f"the label column {label_column!r} has a single value; a classifier needs two or more")
    if len(names) > 100:
        raise DataError(f"the label column {label_column!r} has {len(names)} distinct values; is it really a label?")
    counts = {v: 0 for v in names}
    for v in raw:
        counts[v] += 1
    small = [(v, n) for v, n in counts.items() if n < MIN_ROWS_PER_CLASS]
    if small:
        listed = ", ".join(f"{v[:40]!r} ({n} row{'s' if n != 1 else ''})" for v, n in small[:5]) + (" ..." if len(small) > 5 else "")
        raise DataError(f"{len(small)} class{'es have' if len(small) != 1 else ' has'} too few rows to get a test row: {listed}; "
                        f"each class needs at least {MIN_ROWS_PER_CLASS} rows (merge or remove the rare classes)")
    index = {v: i for i, v in enumerate(names)}
    full = TextDataset(texts, [index[v] for v in raw], names, path.stem)
    rest, test = stratified_split(full, test_fraction)
    train, val = stratified_split(rest, val_fraction)
    extra: dict = {}
    if max_train is not None and len(train) > max_train:
        train, _ = stratified_split(train, 1.0 - max_train / len(train))
        extra["max_train"] = max_train
    if max_test is not None and len(test) > max_test:
        test, _ = stratified_split(test, 1.0 - max_test / len(test))
        extra["max_test"] = max_test
    if warnings:
        extra["warnings"] = warnings
    limits = "".join(f"; {k.replace('_', ' ')} {v}" for k, v in extra.items() if k.startswith("max_"))
    return TaskData(train, val, test, f"{path.name}: stratified {test_fraction:.0%} test, {val_fraction:.0%} validation{limits}",
                    "csv", extra)


# ---------------------------------------------------------------- token ids and batches
@dataclass
class EncodedDataset:
    ids: list[list[int]]
    labels: torch.Tensor  # (N,)
    pad_id: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        return [len(x) for x in self.ids]


def encode(ds: TextDataset, tokenizer, max_len: int) -> EncodedDataset:
    return EncodedDataset(tokenizer.encode(ds.texts, max_len), torch.tensor(ds.labels, dtype=torch.long), tokenizer.pad_id)


def collate(ids: list[list[int]], pad_id: int, device="cpu") -> dict[str, torch.Tensor]:
    """Pad to the longest sequence in the batch (dynamic padding, so short texts stay cheap)."""
    T = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), T), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}


def iterate_batches(data: EncodedDataset, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                    device="cpu", indices: list[int] | None = None):
    order = list(range(len(data))) if indices is None else list(indices)
    if shuffle:
        perm = torch.randperm(len(order), generator=generator).tolist()
        order = [order[i] for i in perm]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = collate([data.ids[i] for i in idx], data.pad_id, device)
        batch["labels"] = data.labels[idx].to(device)
        batch["index"] = torch.tensor(idx)
        yield batch
