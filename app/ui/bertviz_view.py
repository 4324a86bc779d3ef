"""bertviz head view and model view as self-contained HTML that needs no network.

bertviz's HTML loads require.js from cdnjs, and its script asks require.js for d3 5.7.0 and jQuery
from cdnjs too. Offline (a classroom, this machine) that draws nothing. Here the CDN script tag and
the ``require.config`` block are removed, d3 and jQuery are inlined from ``app/static`` (vendored
copies, licences beside them), and a five-line ``requirejs`` stand-in hands the two libraries to
bertviz's callback. The result is one HTML string for ``st.iframe``; nothing is fetched.

Inactive heads are shown as off: their attention is zeroed before bertviz sees it, so they draw no
lines (head view) and stay blank (model view); the caption on the page names them.
"""
from __future__ import annotations

import functools
import html as html_lib
import re
from pathlib import Path

import torch

STATIC = Path(__file__).resolve().parents[1] / "static"
D3 = STATIC / "d3-5.7.0.min.js"
JQUERY = STATIC / "jquery-2.2.4.min.js"
_CDN_SCRIPT = re.compile(r'<script src="https?://[^"]*"></script>')
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.S)
_SHIM = """
window.requirejs = window.require = function (deps, callback) {
  var modules = {d3: window.d3, jquery: window.jQuery};
  callback.apply(null, deps.map(function (name) { return modules[name]; }));
};
window.require.config = function () {};
"""


@functools.lru_cache(maxsize=1)
def offline_scripts() -> str:
    """d3, jQuery and the require stand-in, inlined (read once per process)."""
    d3 = D3.read_text(encoding="utf-8")
    jq = JQUERY.read_text(encoding="utf-8")
    return f"<script>{d3}</script>\n<script>{jq}</script>\n<script>{_SHIM}</script>\n"


def make_offline(bertviz_html: str, title: str = "attention") -> str:
    """bertviz's returned HTML -> a full document with the libraries inlined and no CDN reference."""
    body = _CDN_SCRIPT.sub("", bertviz_html)
    body = _REQUIRE_CONFIG.sub("", body)
    if "cdnjs" in body:
        raise RuntimeError("bertviz's HTML still refers to a CDN; the offline rewrite needs updating")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>" + html_lib.escape(title) + "</title>"
            "<style>body{margin:0;background:white;}</style>" + offline_scripts() + "</head><body>" + body + "</body></html>")


def _bertviz_input(attentions: list[torch.Tensor], active: torch.Tensor) -> list[torch.Tensor]:
    """Per layer (H, T, T) -> (1, H, T, T) with inactive heads zeroed."""
    out = []
    for layer, a in enumerate(attentions):
        keep = (active[layer] > 0).to(a.dtype).reshape(-1, 1, 1)
        out.append((a * keep).unsqueeze(0).detach().cpu())
    return out


def head_view_html(attentions: list[torch.Tensor], tokens: list[str], active: torch.Tensor, layer: int = 0) -> str:
    from bertviz import head_view

    html = head_view(_bertviz_input(attentions, active), tokens, layer=layer, html_action="return").data
    return make_offline(html, "bertviz head view")


def model_view_html(attentions: list[torch.Tensor], tokens: list[str], active: torch.Tensor) -> str:
    from bertviz import model_view

    html = model_view(_bertviz_input(attentions, active), tokens, display_mode="light", html_action="return").data
    return make_offline(html, "bertviz model view")
