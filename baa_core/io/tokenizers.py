"""Text -> token ids. A word vocabulary built from training data, or a Hugging Face tokenizer.

Both expose the same small interface, so the rest of the library never asks which one it has:
``encode(texts, max_len) -> list[list[int]]``, ``tokens(ids) -> list[str]``, ``pad_id``,
``to_dict()`` (what the checkpoint stores).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PAD, UNK = "[PAD]", "[UNK]"
_WORD_RE = re.compile(r"\[[A-Z]+\]|\w+|[^\w\s]")


class WordTokenizer:
    """Lower-cased words and punctuation; ids 0 and 1 are [PAD] and [UNK]."""

    kind = "word"

    def __init__(self, vocab: list[str], lowercase: bool = True):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError("a word vocabulary starts with [PAD], [UNK]")
        self.vocab = list(vocab)
        self.lowercase = lowercase
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.unk_id = 0, 1

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int = 20000, min_freq: int = 2, lowercase: bool = True) -> "WordTokenizer":
        counts = Counter()
        for t in texts:
            counts.update(cls.split(t, lowercase))
        words = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_freq]
        return cls([PAD, UNK] + words[: max_size - 2], lowercase)

    @staticmethod
    def split(text: str, lowercase: bool = True) -> list[str]:
        return _WORD_RE.findall(text.lower() if lowercase else text)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, texts: list[str], max_len: int) -> list[list[int]]:
        out = []
        for t in texts:
            ids = [self.index.get(w, self.unk_id) for w in self.split(t, self.lowercase)][:max_len]
            out.append(ids or [self.unk_id])  # an empty text still needs one position
        return out

    def tokens(self, ids: list[int]) -> list[str]:
        return [self.vocab[i] for i in ids]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lowercase": self.lowercase, "vocab": self.vocab}


class HFTokenizer:
    """A Hugging Face tokenizer (WordPiece for BERT) behind the same interface."""

    kind = "hf"

    def __init__(self, tokenizer, source: str):
        self.tok, self.source = tokenizer, source
        self.pad_id = tokenizer.pad_token_id

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path) -> "HFTokenizer":
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=False), str(name_or_path))

    def __len__(self) -> int:
        return len(self.tok)

    def encode(self, texts: list[str], max_len: int) -> list[list[int]]:
        return self.tok(list(texts), truncation=True, max_length=max_len)["input_ids"]

    def tokens(self, ids: list[int]) -> list[str]:
        return self.tok.convert_ids_to_tokens(list(ids))

    def save(self, folder: Path) -> None:
        self.tok.save_pretrained(str(folder))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source}


def tokenizer_from_dict(data: dict, folder: Path | None = None):
    if data.get("kind") == "word":
        return WordTokenizer(data["vocab"], data.get("lowercase", True))
    if data.get("kind") == "hf":
        # Checkpoints keep a copy of the tokenizer files beside the weights, so they load offline.
        if folder is None:
            return HFTokenizer.from_pretrained(data["source"])
        from transformers import AutoTokenizer

        return HFTokenizer(AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False), data["source"])
    raise ValueError(f"unknown tokenizer kind {data.get('kind')!r}")
