"""The Attention page's bertviz views: the data the page's component draws, and bertviz's own HTML for export.

``view_payload`` packs one input's attention under one head layout for ``app/static/attention_views.js``
(a port of bertviz's head view and model view drawing on canvas; see that file for why): one byte per
token pair, round(255 w), base64 per head, and nothing for heads that are off. MiniLM's 6 x 12 heads
over 64 tokens take ~0.4 MB instead of bertviz's ~7 MB of JSON per view.

The export buttons still offer bertviz's own HTML (``head_view_html`` / ``model_view_html``), built on
click. bertviz's HTML loads require.js from cdnjs, and its script asks require.js for d3 5.7.0 and jQuery
from cdnjs too. Offline (a classroom, this machine) that draws nothing. Here the CDN script tag and
the ``require.config`` block are removed, d3 and jQuery are inlined from ``app/static`` (vendored
copies, licences beside them), and a five-line ``requirejs`` stand-in hands the two libraries to
bertviz's callback. The result is one HTML file that opens offline; nothing is fetched. In it,
inactive heads are zeroed before bertviz sees them (no lines, blank thumbnails), and the head view
starts with only the heads of its first layer that run switched on.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html as html_lib
import re
from pathlib import Path

import numpy as np
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

    on = [h for h in range(active.shape[1]) if active[layer, h] > 0] or None
    html = head_view(_bertviz_input(attentions, active), tokens, layer=layer, heads=on, html_action="return").data
    return make_offline(html, "bertviz head view")


def model_view_html(attentions: list[torch.Tensor], tokens: list[str], active: torch.Tensor) -> str:
    from bertviz import model_view

    html = model_view(_bertviz_input(attentions, active), tokens, display_mode="light", html_action="return").data
    return make_offline(html, "bertviz model view")


def layout_weights(attentions: list[torch.Tensor], active: torch.Tensor) -> list[list[str | None]]:
    """Per layer (H, T, T) weights -> per layer, per head: T*T bytes round(255 w), row = from-token, base64;
    None for a head that is off (it carries no attention). The part of the views' data that depends on the
    head layout only, so the page caches it per layout."""
    out = []
    for layer, a in enumerate(attentions):
        q = np.rint(np.clip(a.detach().float().cpu().numpy(), 0.0, 1.0) * 255).astype(np.uint8)  # (H, T, T)
        out.append([base64.b64encode(q[h].tobytes()).decode("ascii") if active[layer, h] > 0 else None
                    for h in range(q.shape[0])])
    return out


def view_payload(weights: list[list[str | None]], tokens: list[str], active: torch.Tensor,
                 notes: list[list[str]] | None = None) -> dict:
    """The component's data: tokens, the on/off layout (L, H), the weights from ``layout_weights`` and a note
    per head (its gate or score, shown on hover). ``id`` changes whenever anything drawn changes."""
    data = {"tokens": list(tokens), "active": (active > 0).int().tolist(), "weights": weights, "notes": notes}
    digest = hashlib.sha1(repr((data["tokens"], data["active"], notes)).encode())
    for row in weights:
        for w in row:
            digest.update((w or "-").encode())
    return {"id": digest.hexdigest()[:16], **data}
