"""Tiny Hugging Face classifiers of every supported family, built here and saved with ``save_pretrained``
(safetensors) into temp folders: no network, a few seconds on 2 cores.

Random weights are drawn wider than transformers' std-0.02 initialisation, so the logits are of order
one and an equality test at atol 1e-4 can actually fail when an adapter gets something wrong.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch


@contextlib.contextmanager
def one_thread():
    """Tiny models on a shared 2-core machine: a second intra-op thread costs far more than it gains
    (a backward pass of the tiny BERT took 2 s with two busy cores, 10 ms with one)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)

WORDS = ("the team won match a late goal in final coach praised players fans cheered win shares fell on market bank "
         "raised rates profits rose this quarter investors sold stock news today world sports business").split()
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # pad id 1, as RoBERTa's config says


def vocab(specials: list[str]) -> list[str]:
    return specials + WORDS + [str(i) for i in range(100)] + list("abcdefghijklmnopqrstuvwxyz")


def _small(**kw) -> dict:
    base = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                max_position_embeddings=40)
    base.update(kw)
    return base


def family_configs():
    """(case name, config) for every supported family, with the family's own activations and eps."""
    import transformers as T

    nb, nr = len(vocab(BERT_SPECIALS)), len(vocab(ROBERTA_SPECIALS))
    return [
        ("bert", T.BertConfig(**_small(vocab_size=nb))),
        ("bert-relu-3layers", T.BertConfig(**_small(vocab_size=nb, num_hidden_layers=3, hidden_act="relu"))),
        ("roberta", T.RobertaConfig(**_small(vocab_size=nr, layer_norm_eps=1e-5, max_position_embeddings=42))),
        ("xlm-roberta", T.XLMRobertaConfig(**_small(vocab_size=nr, layer_norm_eps=1e-5, max_position_embeddings=42))),
        ("distilbert", T.DistilBertConfig(vocab_size=nb, dim=32, n_layers=2, n_heads=4, hidden_dim=48,
                                          max_position_embeddings=40)),
        ("distilbert-relu", T.DistilBertConfig(vocab_size=nb, dim=32, n_layers=3, n_heads=4, hidden_dim=48,
                                               max_position_embeddings=40, activation="relu")),
        ("electra", T.ElectraConfig(**_small(vocab_size=nb, embedding_size=16))),
        ("electra-same-width", T.ElectraConfig(**_small(vocab_size=nb, embedding_size=32))),
        ("albert", T.AlbertConfig(**_small(vocab_size=nb, embedding_size=16, num_hidden_layers=3))),
        ("albert-2groups-2inner", T.AlbertConfig(**_small(vocab_size=nb, embedding_size=16, num_hidden_layers=4,
                                                          num_hidden_groups=2, inner_group_num=2))),
    ]


def specials_for(config) -> list[str]:
    return ROBERTA_SPECIALS if config.model_type in ("roberta", "xlm-roberta") else BERT_SPECIALS


def save_tokenizer(folder: Path, config) -> None:
    """A WordPiece tokenizer over the tiny vocabulary, with the family's special tokens (RoBERTa: pad = 1)."""
    from transformers import BertTokenizerFast

    specials = specials_for(config)
    (folder / "vocab.txt").write_text("\n".join(vocab(specials)) + "\n")
    names = dict(zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), specials))
    if specials is ROBERTA_SPECIALS:
        names = dict(cls_token="<s>", pad_token="<pad>", sep_token="</s>", unk_token="<unk>", mask_token="<mask>")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), **names).save_pretrained(str(folder))


@torch.no_grad()
def widen(model, seed: int) -> None:
    """Redraw every weight wider than the std-0.02 init (LayerNorm scales near 1), keeping padding rows."""
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if "LayerNorm" in name or "layer_norm" in name:
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def build_classifier(folder: Path, config, labels=("alpha", "beta", "gamma"), seed: int = 0):
    """A random ``AutoModelForSequenceClassification`` with named labels, saved (safetensors) with a tokenizer."""
    from transformers import AutoModelForSequenceClassification

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {v: k for k, v in enumerate(labels)}
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config)
    widen(model, seed)
    model.eval().save_pretrained(str(folder), safe_serialization=True)
    save_tokenizer(folder, config)
    return model


def padded_ids(config, n: int = 5, T: int = 11, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A right-padded batch of random ids: first token the family's [CLS] / <s>, rows of different lengths."""
    g = torch.Generator().manual_seed(seed)
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    cls = 0 if config.model_type in ("roberta", "xlm-roberta") else 2
    ids = torch.randint(5, config.vocab_size, (n, T), generator=g)
    ids[:, 0] = cls
    mask = torch.ones(n, T, dtype=torch.long)
    for i in range(1, n):
        cut = int(torch.randint(2, T - 1, (1,), generator=g))
        ids[i, cut:] = pad
        mask[i, cut:] = 0
    return ids, mask


def train_tiny_classifier(folder: Path, texts: list[str], labels: list[int], label_names: list[str], steps: int = 40,
                          seed: int = 0):
    """A BERT classifier fine-tuned for a few steps on ``texts`` (plain torch, no Trainer), saved to ``folder``."""
    import transformers as T

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = T.BertConfig(**_small(vocab_size=len(vocab(BERT_SPECIALS))))
    config.num_labels, config.id2label = len(label_names), dict(enumerate(label_names))
    config.label2id = {v: k for k, v in enumerate(label_names)}
    save_tokenizer(folder, config)
    tok = T.AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(seed)
    model = T.BertForSequenceClassification(config)
    enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
    y = torch.tensor(labels)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    with one_thread():
        for step in range(steps):
            idx = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed + step))[:16]
            out = model(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx], labels=y[idx])
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    model.eval().save_pretrained(str(folder), safe_serialization=True)
    tok.save_pretrained(str(folder))
    return model, tok
