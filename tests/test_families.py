"""Every supported Hugging Face family, read into the project's gated encoder with its trained head.

Tiny random configs of each family are saved with ``save_pretrained`` (safetensors) into temp folders
(no network). With every gate open the logits must equal ``AutoModelForSequenceClassification``'s on
padded batches (atol 1e-4, eval mode); sliced execution must equal masked execution for random head
sets; other families, pickle-only folders and offline Hub names are refused in one sentence.
"""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from baa_core.io.hf_classifier import (ModelSourceError, UnsupportedModel, align_labels, label_mapping,  # noqa: E402
                                       load_classifier)
from baa_core.model.gates import topk_head_mask  # noqa: E402
from baa_core.model.surgery import slice_heads, with_gating  # noqa: E402
from tests.hf_fixtures import build_classifier, family_configs, one_thread, padded_ids  # noqa: E402

CASES = family_configs()


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module", params=CASES, ids=[name for name, _ in CASES])
def saved(request, tmp_path_factory):
    name, config = request.param
    folder = tmp_path_factory.mktemp(name)
    build_classifier(folder, config, seed=len(name))
    hf = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder), use_safetensors=True).eval()
    return name, folder, hf, load_classifier(str(folder))


def test_all_heads_open_equals_transformers_on_padded_batches(saved):
    name, folder, hf, loaded = saved
    assert loaded.trained_head and loaded.labels == ["alpha", "beta", "gamma"]
    assert loaded.family == hf.config.model_type and loaded.model.config.family == hf.config.model_type
    for seed in (0, 1):
        ids, mask = padded_ids(hf.config, seed=seed)
        with torch.no_grad():
            expected = hf(input_ids=ids, attention_mask=mask).logits
            got = loaded.model(ids, mask).logits
        assert expected.abs().max() > 0.05, "logits too small for the comparison to mean anything"
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_sliced_equals_masked_for_random_head_sets(saved):
    name, _, hf, loaded = saved
    model = with_gating(loaded.model, "baa").eval()
    cfg = model.config
    ids, mask = padded_ids(hf.config, seed=3)
    g = torch.Generator().manual_seed(7)
    for k in (cfg.n_layers, cfg.total_heads // 2, cfg.total_heads - 1):
        heads = topk_head_mask(torch.rand(cfg.n_layers, cfg.n_heads, generator=g), k)
        with torch.no_grad():
            masked = model(ids, mask, head_mask=heads).logits
            sliced = slice_heads(model, heads)(ids, mask).logits
        torch.testing.assert_close(sliced, masked, atol=1e-5, rtol=1e-5)


def test_albert_layers_are_unshared_copies(tmp_path):
    config = dict(family_configs())["albert-2groups-2inner"]
    build_classifier(tmp_path, config)
    model = load_classifier(str(tmp_path)).model
    # 4 passes x 2 inner layers = 8 blocks; passes 0-1 run group 0, passes 2-3 group 1
    assert model.config.n_layers == 8
    q = [b.attention.query.weight for b in model.blocks]
    assert torch.equal(q[0], q[2]) and torch.equal(q[4], q[6]) and not torch.equal(q[0], q[1])
    assert not torch.equal(q[0], q[4])
    assert q[0].data_ptr() != q[2].data_ptr()  # own storage: slicing or training one layer leaves the others alone


def test_bare_encoder_gets_a_fresh_head_or_is_refused(tmp_path):
    config = dict(family_configs())["bert"]
    torch.manual_seed(0)
    transformers.BertModel(config).save_pretrained(str(tmp_path))
    from tests.hf_fixtures import save_tokenizer

    save_tokenizer(tmp_path, config)
    fresh = load_classifier(str(tmp_path), fresh_labels=["neg", "pos"])
    assert not fresh.trained_head and fresh.labels == ["neg", "pos"] and fresh.model.config.n_classes == 2
    with pytest.raises(ModelSourceError, match="no trained classification head"):
        load_classifier(str(tmp_path), require_trained_head=True)
    # each training seed draws its own classifier, and the bare encoder's pretrained pooler is kept
    import dataclasses

    from baa_core.pipeline import prepare

    prep = dataclasses.replace(prepare("synthetic", max_train=8, max_test=4), init_model=fresh.model, trained_head=False)
    a, b = prep.new_model(1), prep.new_model(2)
    assert not torch.equal(a.classifier.weight, b.classifier.weight)
    hf = transformers.BertModel.from_pretrained(str(tmp_path), use_safetensors=True)
    for m in (a, b):
        assert torch.equal(m.pre_classifier.weight, hf.pooler.dense.weight)


def test_refusals_are_one_sentence(tmp_path):
    deberta = tmp_path / "deberta"
    transformers.DebertaV2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=32,
                                 vocab_size=50).save_pretrained(str(deberta))
    (deberta / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="disentangled attention"):
        load_classifier(str(deberta))
    gpt2 = tmp_path / "gpt2"
    transformers.GPT2Config(n_layer=1, n_embd=32, n_head=4).save_pretrained(str(gpt2))
    (gpt2 / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="'gpt2' model, which is refused \\(not implemented here\\)"):
        load_classifier(str(gpt2))
    relative = tmp_path / "relative"
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                            position_embedding_type="relative_key").save_pretrained(str(relative))
    (relative / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="refused: only absolute position embeddings"):
        load_classifier(str(relative))
    quick = tmp_path / "quick-gelu"
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                            hidden_act="quick_gelu").save_pretrained(str(quick))
    (quick / "model.safetensors").write_bytes(b"")
    with pytest.raises(UnsupportedModel, match="hidden activation 'quick_gelu'"):
        load_classifier(str(quick))
    pickled = tmp_path / "pickled"
    transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4).save_pretrained(str(pickled))
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelSourceError, match="no safetensors weights \\(only pytorch_model.bin"):
        load_classifier(str(pickled))
    with pytest.raises(ModelSourceError, match="no config.json"):
        load_classifier(str(tmp_path))


def test_an_offline_hub_name_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSourceError, match="not a local folder, the Hugging Face Hub is switched off"):
        load_classifier("someone/some-model-that-is-not-cached")
    with pytest.raises(ModelSourceError, match="neither a folder nor a Hugging Face model name"):
        load_classifier("../no such folder")


def test_labels_follow_the_head_by_name_id_or_position():
    assert label_mapping(["negative", "positive"], ["POSITIVE", "NEGATIVE"]) == ([1, 0], "by name")
    assert label_mapping(["0", "1", "2"], ["a", "b", "c"])[0] == [0, 1, 2]
    assert label_mapping(["x", "y"], ["LABEL_0", "LABEL_1"])[1].startswith("by position")
    with pytest.raises(ModelSourceError, match="do not match the model's"):
        label_mapping(["x", "y"], ["cat", "dog"])
    from baa_core.io.data import TaskData, TextDataset

    ds = lambda: TextDataset(["a", "b"], [0, 1], ["negative", "positive"])  # noqa: E731
    aligned = align_labels(TaskData(ds(), ds(), ds(), "test"), ["POSITIVE", "NEGATIVE"])
    assert aligned.test.labels == [1, 0] and aligned.label_names == ["POSITIVE", "NEGATIVE"]


def test_a_loaded_classifier_is_a_dense_model_and_its_ranking_is_posthoc(saved):
    """The registry names a dense model ``dense`` (not ``recovery``, also dense-gated) and a ranked one ``posthoc``."""
    from baa_core.methods import method_for_model

    model = saved[3].model
    assert method_for_model(model).name == "dense" and not method_for_model(model).has_budget
    ranked = with_gating(model, "posthoc")
    assert method_for_model(ranked).name == "posthoc" and method_for_model(ranked).slides
