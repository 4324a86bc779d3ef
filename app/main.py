"""Budgeted Attention Explorer: `streamlit run app/main.py`.

The page set-up, the model picker every page shares (sidebar), and the pages. Each page lives in
app/app_pages/ and reads like a description of its screen; figures come from app/ui/figures.py,
numbers from baa_core (measured now) or from the model's card (measured when it was made).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

if __name__ != "__main__":
    # Imported (not run) by `streamlit run app/main.py`, which finds this st.App and serves the app through it:
    # the same Streamlit server, with one middleware so that direct links to a page load cleanly (app/ui/server.py),
    # and a start-up hook that begins the server's own work before the first session arrives.
    import contextlib
    import threading

    from starlette.middleware import Middleware

    from app.ui.server import BackendBaseUrl

    def _server_start() -> None:
        from app.ui import warmup

        warmup.server_start()

    @contextlib.asynccontextmanager
    async def warm_at_start(_app):
        """At server start (the runtime is up, no session yet): clean leftovers, check the Hub, warm the caches
        (``warmup.server_start``), in a thread, so the port opens at once and a class arriving together finds the
        work already under way."""
        threading.Thread(target=_server_start, name="baa-server-start", daemon=True).start()
        yield

    app = st.App(__file__, middleware=[Middleware(BackendBaseUrl)], lifespan=warm_at_start)
else:
    from app.ui import state, warmup

    st.set_page_config(page_title="Budgeted Attention Explorer", page_icon=str(ROOT / "app" / "static" / "icon.png"), layout="wide")

    PAGES = [
        st.Page("app_pages/overview.py", title="Overview", icon=":material/home:", default=True),
        st.Page("app_pages/budget_explorer.py", title="Budget explorer", icon=":material/tune:"),
        st.Page("app_pages/inspector.py", title="Per-input inspector", icon=":material/search:"),
        st.Page("app_pages/attention.py", title="Attention", icon=":material/visibility:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/paper.py", title="Paper vs here", icon=":material/article:"),
    ]

    page = st.navigation(PAGES)
    warmup.server_start()  # done already when the server started it; AppTest and bare runs start it here (once)
    state.model_picker()
    page.run()
