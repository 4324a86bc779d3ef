"""User strings shown as text, never as markup: the one escaping helper every page uses.

Strings a user controls reach many screens: CSV texts, labels and column names, card fields, folder
names, the Hub-name field, messages that quote any of these. Streamlit renders Markdown (links,
images that load from any server, directives) in captions, metrics, progress text and tooltips, and
Plotly renders a subset of HTML (``<b>``, live ``<a href>``) in labels. So:

* ``md(value)`` escapes a value for Markdown: every ASCII punctuation character gets a backslash
  (CommonMark makes each one literal then), and line breaks become spaces, so a value can neither
  start a block nor form a link, an image, a directive or formula;
* ``code(value)`` puts a value in a code span that nothing inside it can close;
* ``plot(value)`` escapes a value for Plotly labels (its pseudo-HTML shows as the characters typed).
"""
from __future__ import annotations

import html
import re
import string

_PUNCTUATION = frozenset(string.punctuation)


def flat(value, max_chars: int | None = None) -> str:
    """``value`` as one line of text (whitespace runs, line breaks included, become one space)."""
    text = " ".join(str(value).split())
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars] + "…"
    return text


def md(value, max_chars: int | None = None) -> str:
    """``value`` as Markdown that renders as exactly its characters (on one line)."""
    return "".join("\\" + c if c in _PUNCTUATION else c for c in flat(value, max_chars))


def code(value, max_chars: int | None = None) -> str:
    """``value`` in an inline code span (monospace, no Markdown inside), fenced so it cannot end early."""
    text = flat(value, max_chars)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if text else ""


def plot(value) -> str:
    """``value`` for a Plotly label, tick, legend entry or hover text: HTML-like tags shown, not applied."""
    return html.escape(str(value), quote=False)


def message(exc: BaseException, max_chars: int = 300) -> str:
    """An exception's first line, escaped for Markdown (messages quote file names, labels, paths)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return md(text, max_chars)
