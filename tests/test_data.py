import csv

import pytest

from baa_core.io.data import (
    DataError,
    clean_text,
    data_available,
    encode,
    iterate_batches,
    load_csv,
    load_task,
    marked_token_task,
    stratified_split,
)
from baa_core.io.tokenizers import WordTokenizer


def _write_canonical(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerows(rows)


@pytest.fixture
def ag_dir(tmp_path):
    folder = tmp_path / "ag_news"
    folder.mkdir()
    words = {1: "election minister", 2: "match goal", 3: "stocks profit", 4: "software chip"}
    train = [(str(c), "", f"{words[c]} story {i} #39;s quot;q quot;") for i in range(40) for c in (1, 2, 3, 4)]
    test = [(str(c), f"Title {i}", f"{words[c]} news {i}") for i in range(10) for c in (1, 2, 3, 4)]
    _write_canonical(folder / "train_partial_desc_only.csv", train)
    _write_canonical(folder / "test.csv", test)
    return tmp_path


def test_synthetic_label_is_token_after_marker():
    ds = marked_token_task(50, 16, seed=3)
    for text, y in zip(ds.texts, ds.labels):
        toks = text.split()
        assert len(toks) == 16
        assert toks[toks.index("[M]") + 1] == ds.label_names[y]
    assert marked_token_task(5, 16, seed=3).texts == ds.texts[:5]


def test_local_canonical_csv(ag_dir):
    task = load_task("ag_news", ag_dir)
    assert len(task.test) == 40 and len(task.train) + len(task.val) == 160
    assert task.test.texts[0].startswith("Title 0 ")  # title + description, as on the Hub
    assert "#39;" not in task.train.texts[0] and "'s" in task.train.texts[0]
    assert set(task.train.labels) == {0, 1, 2, 3}
    assert task.label_names[0] == "World"
    # deterministic validation split
    assert load_task("ag_news", ag_dir).val.texts == task.val.texts


def test_a_malformed_canonical_row_is_named_by_its_line(ag_dir):
    path = ag_dir / "ag_news" / "test.csv"
    path.write_text(path.read_text() + '"9","title","body"\n')
    with pytest.raises(DataError, match=r"test.csv, line 41: class indices must lie in 1..4"):
        load_task("ag_news", ag_dir)
    path.write_text('"1","only two fields"\n')
    with pytest.raises(DataError, match=r"line 1: expected \(class index, title, body\), got 2 fields"):
        load_task("ag_news", ag_dir)


def test_dbpedia_partial_file_is_split_into_test(tmp_path):
    folder = tmp_path / "dbpedia14"
    folder.mkdir()
    rows = [(str(c), "", f"text {c} {i}") for c in range(1, 15) for i in range(160)]
    _write_canonical(folder / "partial_content_only.csv", rows)
    task = load_task("dbpedia14", tmp_path)
    assert len(task.test) == 14 * 150
    assert not set(task.test.texts) & set(task.train.texts + task.val.texts)


def test_missing_files_explain_the_layout(tmp_path):
    with pytest.raises(DataError, match="expected"):
        load_task("ag_news", tmp_path)


def test_data_available_says_why_before_any_download(ag_dir, tmp_path, monkeypatch):
    assert data_available("ag_news", ag_dir) is None
    assert data_available("synthetic") is None
    assert "expected" in data_available("ag_news", tmp_path / "nothing")
    assert "unknown task" in data_available("imdb", ag_dir)
    monkeypatch.setenv("BAA_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    reason = data_available("dbpedia14")
    assert reason is not None and "dbpedia14" in reason


def test_user_csv_with_wrong_columns(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("sentence,target\nhello,1\n")
    with pytest.raises(DataError, match=r"needs \['text', 'label'\]"):
        load_csv(p)


def test_user_csv_with_string_labels(tmp_path, capfd):
    p = tmp_path / "mine.csv"
    lines = ["text,label"] + [f"good thing {i},pos" for i in range(15)] + [f"bad thing {i},neg" for i in range(15)]
    p.write_text("\n".join(lines))
    task = load_csv(p)
    assert task.label_names == ["neg", "pos"]
    assert len(task.train) + len(task.val) + len(task.test) == 30
    assert "Generating" not in capfd.readouterr().err  # datasets' cache bar is not a step the user needs to see
    import datasets

    assert not datasets.are_progress_bars_disabled()  # and the setting is as it was


def test_a_one_row_csv_is_refused_in_a_sentence(tmp_path):
    p = tmp_path / "one.csv"
    p.write_text("text,label\nhello,a\n")
    with pytest.raises(DataError, match="has 1 usable row "):
        load_csv(p)


def test_user_csv_that_is_not_csv(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(DataError):
        load_csv(p)


def test_stratified_split_keeps_classes():
    ds = marked_token_task(400, 10, seed=0)
    rest, held = stratified_split(ds, 0.25)
    assert len(rest) + len(held) == 400
    assert set(held.labels) == set(ds.labels)


def test_word_tokenizer_and_batches():
    tok = WordTokenizer.build(["a b c", "a b", "a"], min_freq=1)
    assert tok.vocab[:3] == ["[PAD]", "[UNK]", "a"]
    enc = encode(marked_token_task(10, 9, 0), tok, 5)
    assert all(1 <= len(x) <= 5 for x in enc.ids)
    assert tok.encode([""], 5) == [[1]]  # empty text still has one position
    b = next(iterate_batches(enc, 4))
    assert b["input_ids"].shape[0] == 4 and b["attention_mask"].sum(1).tolist() == [len(x) for x in enc.ids[:4]]


def test_clean_text():
    assert clean_text("It#39;s  a \\ quot;testquot;") == 'It\'s a "test"'
