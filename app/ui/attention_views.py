"""The Attention page's two bertviz views (head view, model view) as one Streamlit Components v2 component.

The drawing is ``app/static/attention_views.js``; its data comes from ``bertviz_view.view_payload``. The
component stays mounted across reruns: a budget step sends the new layout's bytes and the browser
redraws in place (no iframe to reload, no libraries to parse again).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

JS = (Path(__file__).resolve().parents[1] / "static" / "attention_views.js").read_text(encoding="utf-8")
CSS = """
.baa-av { display: flex; flex-wrap: wrap; gap: 24px 48px; align-items: flex-start; color: black; background: white;
  font-family: 'Helvetica Neue', Helvetica, Arial, sans-serif; }
.baa-av-title { font-weight: 600; font-size: 15px; margin-bottom: 4px; }
.baa-av-layer { display: block; margin-bottom: 6px; font-size: 14px; user-select: none; }
.baa-av-layer select { font-size: 14px; }
.baa-av-stage { position: relative; }
.baa-av-canvas, .baa-av-svg { position: absolute; left: 0; top: 0; }
.baa-av-svg { overflow: visible; }
.baa-av-token { cursor: default; user-select: none; }
.baa-av-detail { position: absolute; background: white; border: 1.5px solid; box-sizing: content-box; }
"""

_component = st.components.v2.component("baa_attention_views", js=JS, css=CSS, isolate_styles=False)


def show(payload: dict, key: str = "attention_views") -> None:
    """Mount (or update) the views; ``payload`` from ``bertviz_view.view_payload``."""
    _component(key=key, data=payload, height="content")
