"""BERT-family models: weights read from a Hugging Face BertModel, gated and sliced by this project.

A tiny random BertConfig saved with save_pretrained stands in for a real checkpoint (no network)."""
import pytest
import torch

transformers = pytest.importorskip("transformers")

from baa_core.io.pretrained import load_pretrained  # noqa: E402
from baa_core.io.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from baa_core.model.gates import topk_head_mask  # noqa: E402
from baa_core.model.surgery import with_gating  # noqa: E402
from baa_core.model.surgery import slice_heads  # noqa: E402


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(60)] + list("abcdefghij")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                                  intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                  attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    hf = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    hf.save_pretrained(folder)
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder, hf


def _batch(tok):
    texts = ["w1 w2 w3 w4 w5 w6 w7 w8", "w9 w10", "a b c d e", "w3"]
    ids = tok.encode(texts, 16)
    T = max(map(len, ids))
    input_ids = torch.tensor([x + [0] * (T - len(x)) for x in ids])
    mask = torch.tensor([[1] * len(x) + [0] * (T - len(x)) for x in ids])
    return input_ids, mask


def test_hidden_states_equal_transformers_bert_on_padded_batches(tiny_bert):
    folder, hf = tiny_bert
    model, tok = load_pretrained(str(folder), n_classes=3, freeze_word_embeddings=False)
    model.eval()
    ids, mask = _batch(tok)
    expected = hf(input_ids=ids, attention_mask=mask).last_hidden_state
    from baa_core.model.attention import attention_bias

    x = model.embeddings(ids)
    for block in model.blocks:
        x, _ = block(x, attention_bias(mask, x.dtype))
    keep = mask.bool()
    torch.testing.assert_close(x[keep], expected[keep], rtol=1e-4, atol=1e-5)


def test_frozen_word_embeddings_are_used_at_their_stored_precision(tiny_bert):
    """Checkpoints leave the frozen embeddings to their base and carry it in float16 to a GPU host:
    every load rounds them the same way, so training there and evaluating here agree exactly."""
    folder, hf = tiny_bert
    model, _ = load_pretrained(str(folder), n_classes=3)
    emb = model.embeddings.word_embeddings.weight
    assert not emb.requires_grad
    torch.testing.assert_close(emb, hf.embeddings.word_embeddings.weight.half().float(), rtol=0, atol=0)


def test_sliced_equals_gated_on_padded_batches(tiny_bert):
    folder, _ = tiny_bert
    model, tok = load_pretrained(str(folder), n_classes=3)
    model = with_gating(model, "baa").eval()
    ids, mask = _batch(tok)
    for budget in (0.3, 0.5, 0.8):
        hard = model.gate.hard(budget)
        gated = model(ids, mask, budget=budget, hard=True).logits
        sliced = slice_heads(model, hard)(ids, mask).logits
        torch.testing.assert_close(sliced, gated, rtol=1e-5, atol=1e-5)
    g = torch.Generator().manual_seed(1)
    mask_h = topk_head_mask(torch.rand(3, 4, generator=g), 5)
    torch.testing.assert_close(slice_heads(model, mask_h)(ids, mask).logits, model(ids, mask, head_mask=mask_h).logits,
                               rtol=1e-5, atol=1e-5)


def test_checkpoint_leaves_out_frozen_embeddings_and_restores_them(tiny_bert, tmp_path):
    folder, _ = tiny_bert
    model, tok = load_pretrained(str(folder), n_classes=3)
    tok.source = str(folder)  # the "base" the checkpoint depends on
    assert not model.embeddings.word_embeddings.weight.requires_grad
    model = with_gating(model, "baa").eval()
    out = save_checkpoint(tmp_path / "ck", model, tok, {"name": "tiny"}, dtype="float16",
                          external={"source": str(folder), "tensors": ["embeddings.word_embeddings.weight"]})
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as f:
        assert "embeddings.word_embeddings.weight" not in f.keys()
    ckpt = load_checkpoint(out)
    torch.testing.assert_close(ckpt.model.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
    ids, mask = _batch(ckpt.tokenizer)
    torch.testing.assert_close(ckpt.model(ids, mask, budget=0.5, hard=True).logits,
                               model(ids, mask, budget=0.5, hard=True).logits, rtol=2e-2, atol=2e-3)


def test_non_bert_architectures_are_refused():
    from baa_core.model.families.bert import config_from_hf

    with pytest.raises(ValueError, match="BERT"):
        config_from_hf(transformers.GPT2Config(), 2)
