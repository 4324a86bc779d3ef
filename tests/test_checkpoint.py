import json
import os

import pytest
import torch

from baa_core.io.checkpoint import CheckpointError, check_files, load_checkpoint, save_checkpoint
from baa_core.io.tokenizers import WordTokenizer

from .conftest import padded_batch, tiny_config
from baa_core.model.encoder import BudgetedClassifier


@pytest.fixture
def saved(tmp_path, tiny_model):
    tok = WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(48)])
    folder = save_checkpoint(tmp_path / "ckpt", tiny_model, tok, {"name": "tiny", "sweeps": {}})
    return folder, tiny_model


def test_round_trip_gives_identical_outputs(saved):
    folder, model = saved
    ckpt = load_checkpoint(folder)
    ids, am = padded_batch()
    for budget in (0.3, 0.7):
        torch.testing.assert_close(ckpt.model(ids, am, budget=budget, hard=True).logits,
                                   model(ids, am, budget=budget, hard=True).logits)
    assert ckpt.config == model.config
    assert ckpt.card["name"] == "tiny"
    assert ckpt.tokenizer.encode(["w3 w4 nope"], 10) == [[5, 6, 1]]


def test_corrupt_weights_are_one_clear_error(saved):
    folder, _ = saved
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[: 200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(folder)


def test_quick_file_check_finds_what_a_model_list_must_flag(saved):
    folder, _ = saved
    assert check_files(folder) is None
    path = folder / "model.safetensors"
    good = path.read_bytes()
    path.write_bytes(os.urandom(4096))
    assert "corrupt or truncated" in check_files(folder)
    path.write_bytes(good)
    (folder / "vocab.json").unlink()
    assert "vocab.json is missing" in check_files(folder)


def test_garbage_config_is_reported(saved):
    folder, _ = saved
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(folder)


def test_mismatched_shapes_are_reported(saved):
    folder, _ = saved
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["d_ffn"] = 64
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match its config.json"):
        load_checkpoint(folder)


def test_pickle_weights_are_refused(tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    torch.save({"x": torch.ones(1)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(folder)


def test_missing_folder_and_missing_files(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_checkpoint(tmp_path / "empty")


def test_failed_write_leaves_previous_checkpoint_intact(saved, monkeypatch):
    folder, model = saved
    before = (folder / "model.safetensors").read_bytes()

    class Boom(Exception):
        pass

    def explode(*a, **k):
        raise Boom()

    import baa_core.io.checkpoint as C

    monkeypatch.setattr(C, "_write_json", explode)
    with pytest.raises(Boom):
        save_checkpoint(folder, model, WordTokenizer(["[PAD]", "[UNK]"]), {"name": "new"}, overwrite=True)
    assert (folder / "model.safetensors").read_bytes() == before
    assert not [p for p in os.listdir(folder.parent) if p.startswith(".")], "a temporary folder was left behind"
    load_checkpoint(folder)


def test_overwrite_replaces_whole_checkpoint(saved):
    folder, _ = saved
    other = BudgetedClassifier(tiny_config(gating="dense", d_ffn=40))
    save_checkpoint(folder, other, WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(48)]), {"name": "other"},
                    overwrite=True)
    ckpt = load_checkpoint(folder)
    assert ckpt.config.d_ffn == 40 and ckpt.card["name"] == "other"


def test_float16_storage_round_trips_closely(tmp_path, tiny_model):
    tok = WordTokenizer(["[PAD]", "[UNK]"] + [f"w{i}" for i in range(48)])
    folder = save_checkpoint(tmp_path / "half", tiny_model, tok, {}, dtype="float16")
    ckpt = load_checkpoint(folder)
    assert ckpt.model.blocks[0].attention.query.weight.dtype == torch.float32
    ids, am = padded_batch()
    torch.testing.assert_close(ckpt.model(ids, am).logits, tiny_model(ids, am).logits, rtol=2e-2, atol=2e-3)
