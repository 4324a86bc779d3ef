"""Sliced execution must equal masked execution: the speed claims rest on it."""
import pytest
import torch

from baa_core.measure.cost import flop_speedup, heads_per_layer, layer_flops
from baa_core.model.surgery import slice_heads
from baa_core.model.gates import topk_head_mask

from .conftest import padded_batch


@pytest.mark.parametrize("seed", range(6))
def test_sliced_equals_masked_for_random_head_sets(tiny_model, seed):
    g = torch.Generator().manual_seed(seed)
    L, H = tiny_model.config.n_layers, tiny_model.config.n_heads
    k = int(torch.randint(L, L * H + 1, (1,), generator=g))
    mask = topk_head_mask(torch.rand(L, H, generator=g), k)
    ids, am = padded_batch(seed=seed)
    masked = tiny_model(ids, am, head_mask=mask).logits
    sliced_model = slice_heads(tiny_model, mask)
    assert sliced_model.config.heads_per_layer == heads_per_layer(mask)
    sliced = sliced_model(ids, am).logits
    torch.testing.assert_close(sliced, masked, rtol=1e-5, atol=1e-5)


def test_sliced_equals_soft_gated_when_gates_are_folded(tiny_model):
    torch.manual_seed(3)
    gates = torch.rand(3, 4)
    gates[:, 0] = 0.0  # head 0 closed everywhere
    mask = (gates > 0).float()
    ids, am = padded_batch()
    soft = tiny_model(ids, am, head_mask=gates).logits
    sliced = slice_heads(tiny_model, mask, gate_values=gates)(ids, am).logits
    torch.testing.assert_close(sliced, soft, rtol=1e-5, atol=1e-5)


def test_sliced_model_is_physically_smaller(tiny_model):
    mask = torch.zeros(3, 4)
    mask[:, 1] = 1
    small = slice_heads(tiny_model, mask)
    big_n = sum(p.numel() for n, p in tiny_model.named_parameters() if ".attention." in n)
    small_n = sum(p.numel() for n, p in small.named_parameters() if ".attention." in n)
    assert small.blocks[0].attention.query.weight.shape == (8, 32)
    assert small_n < big_n / 2


def test_a_layer_without_heads_cannot_be_sliced(tiny_model):
    mask = torch.ones(3, 4)
    mask[1] = 0
    with pytest.raises(ValueError, match="at least one head"):
        slice_heads(tiny_model, mask)


def test_padding_does_not_change_unpadded_rows(tiny_model):
    ids, am = padded_batch(B=3, T=10)
    full = tiny_model(ids, am, budget=0.5, hard=True).logits
    for i in range(3):
        n = int(am[i].sum())
        alone = tiny_model(ids[i : i + 1, :n], am[i : i + 1, :n], budget=0.5, hard=True).logits
        torch.testing.assert_close(alone[0], full[i], rtol=1e-5, atol=1e-5)


def test_attention_weights_path_equals_sdpa_path(tiny_model):
    ids, am = padded_batch()
    a = tiny_model(ids, am, budget=0.4).logits
    out = tiny_model(ids, am, budget=0.4, output_attentions=True)
    torch.testing.assert_close(out.logits, a, rtol=1e-5, atol=1e-5)
    assert len(out.attentions) == 3 and out.attentions[0].shape == (5, 4, 12, 12)
    # padding keys get no attention
    probs = out.attentions[0].detach()
    assert float(probs[am[:, None, None, :].expand_as(probs) == 0].abs().max()) < 1e-6


def test_flop_model_matches_methods_md_figures():
    # METHODS.md: d=384, 12 heads, 6 layers, ffn=4d, n=64, 6 of 12 heads -> FLOP bound 1.21x
    from baa_core.model.config import ModelConfig

    cfg = ModelConfig(vocab_size=10, n_classes=2, d_model=384, n_heads=12, n_layers=6, d_ffn=1536)
    assert flop_speedup(cfg, [6] * 6, [64]) == pytest.approx(1.21, abs=0.005)
    cfg = ModelConfig(vocab_size=10, n_classes=2, d_model=128, n_heads=8, n_layers=2, d_ffn=256)
    assert flop_speedup(cfg, [4, 4], [128]) == pytest.approx(1.43, abs=0.005)
    f = layer_flops(128, 8, 16, 256, 10)
    assert f.qkv == 6 * 128 * 128 * 10 and f.scores == 4 * 100 * 128 and f.ffn == 4 * 128 * 256 * 10


def test_latency_comparison_pairs_every_model_with_the_reference(tiny_model):
    from baa_core.measure.latency import compare_latency

    ids, mask = padded_batch()
    batch = {"input_ids": ids, "attention_mask": mask}
    L, H = tiny_model.config.n_layers, tiny_model.config.n_heads
    half = slice_heads(tiny_model, topk_head_mask(torch.rand(L, H), L * H // 2))
    full = slice_heads(tiny_model, torch.ones(L, H))
    c = compare_latency({"dense": full, "half": half}, [batch], rounds=3)
    assert c.speedup["dense"] == 1.0 and c.speedup["half"] > 0
    assert set(c.median_ms) == {"dense", "half"} and all(v > 0 for v in c.median_ms.values())
    with pytest.raises(ValueError, match="reference"):
        compare_latency({"half": half}, [batch], rounds=1)
