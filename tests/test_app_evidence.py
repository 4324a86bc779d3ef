"""The app with a card made under the rules of evidence: controls at cost 0, equal-epoch dense, intervals."""
import pytest
from streamlit.testing.v1 import AppTest

from .test_app_pages import MAIN, assert_clean


@pytest.fixture(scope="module")
def evidence_dirs(tmp_path_factory):
    from baa_core.cli import main

    root = tmp_path_factory.mktemp("evidence_models")
    (root / "pretrained").mkdir()
    (root / "user_models").mkdir()
    assert main(["train", "--task", "synthetic", "--method", "baa", "--out", str(root / "pretrained" / "rules-baa"),
                 "--dense-epochs", "0.2", "--budget-epochs", "0.2", "--hard-epochs", "0.1", "--latency-batches", "1",
                 "--budgets", "0.25,0.5,1.0", "--max-train", "300", "--max-test", "200", "--controls"]) == 0
    return root


@pytest.mark.parametrize("page", [None, "budget_explorer", "paper"])
def test_pages_open_a_card_with_controls_and_intervals(evidence_dirs, monkeypatch, page):
    monkeypatch.setenv("BAA_PRETRAINED_DIR", str(evidence_dirs / "pretrained"))
    monkeypatch.setenv("BAA_USER_MODELS", str(evidence_dirs / "user_models"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BAA_DATA_DIR", str(evidence_dirs / "no-data-here"))
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.selectbox(key="model_id").set_value("shipped/rules-baa").run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    assert_clean(at)
    if page is None:  # the Overview says the kept head sets are not nested
        assert any("not nested" in m.value for m in at.markdown)
    if page == "paper":
        assert any("what each task gives without attention" in s.value for s in at.subheader)
