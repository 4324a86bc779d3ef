"""The app's server side: one ASGI middleware, so that a direct link to a page loads without console errors.

Opened at ``/attention`` (a link, a bookmark, a reload), Streamlit's frontend does not know where the
server's root is: it first asks ``/attention/_stcore/health`` and ``/attention/_stcore/host-config``,
gets two 404s (Chromium logs each as a console error), then falls back to ``/`` (Streamlit issue
#7074). The frontend skips that guess when the page defines ``window.__streamlit.BACKEND_BASE_URL``, so
this middleware adds that one line to the HTML document the server returns for page URLs. Nothing else
changes; assets, websocket and API requests pass straight through.

``app/main.py`` declares ``app = st.App(__file__, middleware=[...])``, which ``streamlit run app/main.py``
picks up and serves (Streamlit's own Starlette server, with this middleware in front).
"""
from __future__ import annotations

import json

# requests under these never return the app's HTML document
_PASS = ("/_stcore/", "/static/", "/media/", "/component/", "/app/static/", "/favicon", "/manifest.json")


def backend_base_url_script(base_path: str) -> bytes:
    """The line added to the page's <head>: the server's root, this origin plus ``server.baseUrlPath``."""
    path = "/" + base_path.strip("/")
    return ("<script>window.__streamlit = Object.assign({BACKEND_BASE_URL: window.location.origin + "
            f"{json.dumps(path)}}}, window.__streamlit || {{}});</script>").encode()


class BackendBaseUrl:
    """ASGI middleware: HTML documents get ``backend_base_url_script`` after their ``<head>``."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        path, verb = scope.get("path", ""), scope.get("method")
        if scope["type"] != "http" or verb != "GET" or any(p in path for p in _PASS):
            await self.app(scope, receive, send)
            return
        from streamlit import config

        # the document is small: ask for it uncompressed so that it can be edited
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() != b"accept-encoding"])
        start: dict = {}
        body: list[bytes] = []

        async def edit(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            headers = {k.lower(): v for k, v in start.get("headers", [])}
            if not headers.get(b"content-type", b"").startswith(b"text/html"):
                await send(start)
                start.clear()
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body"):
                return
            html = b"".join(body)
            if b"<head>" in html and b"__streamlit" not in html:
                html = html.replace(b"<head>", b"<head>" + backend_base_url_script(config.get_option("server.baseUrlPath") or ""), 1)
            out = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send(dict(start, headers=out + [(b"content-length", str(len(html)).encode())]))
            await send({"type": "http.response.body", "body": html, "more_body": False})
            start.clear()

        await self.app(scope, receive, edit)
