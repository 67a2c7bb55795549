"""The offline page the static-page tests use counts what it blocks and the errors it sees (so their "0 blocked, 0
errors" can fail): a page asking for an outside image and throwing an error."""

from __future__ import annotations

from pathlib import Path

from offline_browser import needs_chromium, offline_page


@needs_chromium
def test_outside_requests_are_blocked_and_counted_and_errors_collected(tmp_path: Path) -> None:
    page_file = tmp_path / "p.html"
    page_file.write_text("<!doctype html><img src='http://example.invalid/x.png'><img src='data:image/gif;base64,"
                         "R0lGODlhAQABAAAAACw='><script>throw new Error('planted')</script>", encoding="utf-8")
    with offline_page() as seen:
        seen.page.goto(page_file.as_uri())
        seen.page.wait_for_load_state("load")
    assert seen.blocked == ["http://example.invalid/x.png"]
    assert any("planted" in e for e in seen.errors)


@needs_chromium
def test_loopback_is_let_through_only_when_asked(tmp_path: Path) -> None:
    page_file = tmp_path / "p.html"
    page_file.write_text("<!doctype html><img src='http://127.0.0.1:9/a.png'><img src='http://example.invalid/b.png'>",
                         encoding="utf-8")
    for loopback, expected in ((True, ["http://example.invalid/b.png"]),
                               (False, ["http://127.0.0.1:9/a.png", "http://example.invalid/b.png"])):
        with offline_page(console=False, loopback=loopback) as seen:
            seen.page.goto(page_file.as_uri())
            seen.page.wait_for_load_state("load")
        assert sorted(seen.blocked) == expected
