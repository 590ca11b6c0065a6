"""The annotation app in a real headless Chromium: three blind comparisons made by keyboard."""

from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from tuneloop.annotate import AnnotationStore, create_app, shown_left

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    import uvicorn

    store = AnnotationStore(tmp_path / "ann.db")
    # Priorities fix the order the items are served in: item 0 first.
    ids = [store.add_pair(f"Question {i}?", f"first answer {i}", f"second answer {i}", priority=3 - i)
           for i in range(3)]  # fmt: skip
    # The first seed that shows at least one item with its canonical b on the left.
    seed = next(s for s in range(100) if "b" in {shown_left(s, i, "alice") for i in ids})
    app = create_app(store, seed=seed)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, ids, app
    srv.should_exit = True
    thread.join(timeout=10)


def test_keyboard_judgements_are_stored_in_canonical_order(server):
    from playwright.sync_api import expect, sync_playwright

    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("no chromium on PATH: install chromium (make test does it)")
    base, store, ids, app = server
    sides = [app.state.shown_left(i, "alice") for i in ids]
    assert "b" in sides
    keys = ["a", "b", "t"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/compare?annotator=alice")
            for k, key in enumerate(keys):
                expect(page.locator("#progress")).to_have_text(f"{k} / 3")
                page.keyboard.press(key)
                expect(page.locator("#progress")).to_have_text(f"{k + 1} / 3")
            expect(page.locator("#done")).to_have_text("All done")
        finally:
            browser.close()
    other = {"a": "b", "b": "a"}
    expected = [sides[0], other[sides[1]], "tie"]  # a = left, b = right, t = tie
    got = {j.item_id: (j.verdict, j.shown_left) for j in store.judgements()}
    assert got == {i: (v, s) for i, v, s in zip(ids, expected, sides, strict=True)}
