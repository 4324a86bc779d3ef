"""The explorer's "Export this budget": one click exports the sliced model at the current budget and offers a zip."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

from app.ui.export_view import RESULT_KEY, export_name
from tests.test_app_pages import assert_clean, new_app
from tests.test_app_pages import env, model_dirs  # noqa: F401  (pytest fixtures used by name)


def test_export_button_offers_the_sliced_model_at_the_current_budget(env):  # noqa: F811
    from app.ui.state import BUDGET_KEY

    at = new_app("shipped/tiny-baa", "budget_explorer")
    at.session_state[BUDGET_KEY] = 0.25  # what the live panel's release commits for the page
    at.run()
    at.button(key="export_button").click().run()
    assert_clean(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.startswith("Download tiny-baa-b0.25.zip") for label in labels), labels
    card = at.session_state[RESULT_KEY]["card"]
    assert card["export"]["budget"] == 0.25 and card["export"]["active_heads"] == 2
    assert card["export"]["accuracy_n"] > 0 and card["sweeps"]["baa"][0]["accuracy"] is not None  # the live sample


def test_export_without_data_times_random_tokens_and_says_so(env):  # noqa: F811
    at = new_app("shipped/tiny-agnews", "budget_explorer")  # its AG News data is not on hand in the tests
    at.button(key="export_button").click().run()
    assert_clean(at)
    card = at.session_state[RESULT_KEY]["card"]
    assert card["export"]["accuracy_n"] == 0 and "random token" in card["latency"]["inputs"]
    assert card["export"]["accuracy_data"] == "no test data on this machine"


def test_export_name_is_safe_on_any_filesystem():
    assert export_name("my model/v2", 0.5) == "my-model-v2-b0.50"
    assert export_name("///", 1.0) == "model-b1.00"
