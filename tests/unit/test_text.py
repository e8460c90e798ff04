"""lib/text.py: text from services made safe for a terminal, a log line and Markdown."""

from __future__ import annotations

import html
import re

import pytest

from lib.text import clean, md, plain

EVIL = "[x](javascript:alert(1)) ![](http://evil.example/p.png)"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain text, kept: é ü 中文 — “quotes”", "plain text, kept: é ü 中文 — “quotes”"),
        ("lines\nand\ttabs stay", "lines\nand\ttabs stay"),
        ("\x1b[31mred\x1b[0m \x1b[1;38;5;196mbold\x1b[m", "red bold"),  # SGR colours
        ("a\x1b[2J\x1b[Hb\x1b[?25lc", "abc"),  # clear screen, home, hide cursor
        ("\x1b]0;a title\x07x", "x"),  # OSC window title, BEL-terminated
        ("\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink
        ("\x1bP1$r0m\x1b\\x", "x"),  # DCS
        ("\x1b_apc\x1b\\\x1bXsos\x1b\\\x1b^pm\x1b\\x", "x"),
        ("\x1bcreset \x1b7saved\x1b8 \x1b(Bcharset \x1b#8", "reset saved charset "),
        ("\x9b31mC1 CSI\x9b0m \x9d0;title\x9cz", "C1 CSI z"),  # 8-bit forms
        ("cut \x1b]0;unterminated", "cut "),
        ("cut \x1b]0;title\nnext line", "cut \nnext line"),
        ("lone ESC \x1b", "lone ESC "),
        ("bell\x07 nul\x00 bs\x08 del\x7f nel\x85", "bell\\x07 nul\\x00 bs\\x08 del\\x7f nel\\x85"),
        ("crlf\r\nline, cr\roverwrite", "crlf\nline, cr\\x0doverwrite"),
        ("bidi \u202eevil\u202c \u2066x\u2069", "bidi \\u202eevil\\u202c \\u2066x\\u2069"),
    ],
)
def test_clean(raw, shown):
    assert clean(raw) == shown
    assert not CONTROL.search(clean(raw).replace("\n", "").replace("\t", ""))
    assert clean(clean(raw)) == clean(raw)


def test_clean_keeps_empty_values():
    assert clean("") == "" and clean(None) is None  # type: ignore[arg-type]


def rendered(markdown: str) -> str:
    """What nbconvert's HTML export (the offline page) makes of ``markdown``."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(markdown)


@pytest.mark.parametrize(
    "text",
    [
        EVIL,
        "<img src=http://evil.example/p.png onerror=alert(1)><script>alert(1)</script>",
        "**bold** _em_ `code` # heading\n- item\n\n> quote | a | b |\n---",
        "&amp; &lt;b&gt; &#106;avascript: www.evil.example http://evil.example/x",
        "<http://evil.example> [ref]: http://evil.example\n\n[ref]",
        "$\\alpha$ \\*already\\* escaped\\ ~~strike~~ ==mark== [^1]",
        "\x1b[31mred\x1b[0m\x07",
    ],
)
def test_md_renders_as_the_text_itself(text):
    page = rendered(f"before {md(text)} after")
    assert "<a " not in page and "<img" not in page and "<script" not in page
    assert "<strong" not in page and "<em" not in page and "<code" not in page
    assert "<h1" not in page and "<li" not in page and "<blockquote" not in page
    shown = html.unescape(re.sub(r"<[^>]+>", "", page)).strip()
    assert shown == f"before {' '.join(clean(text).split())} after"
    assert plain(md(text)) == " ".join(clean(text).split())


def test_plain_drops_only_the_markup():
    note = f"**full run** of `object_1`: app {md(EVIL)}, `{md('a*b')}`"
    assert plain(note) == f"full run of object_1: app {EVIL}, a*b"


def test_every_place_that_shows_service_text_cleans_it():
    """Errors, log lines, tables, notes and headers: one rule (``clean``)."""
    import logging

    from lib.errors import KnackAPIError
    from lib.header import Header
    from lib.redact import RedactFilter
    from lib.table import Note, Table

    raw = "refused \x1b[31mred\x1b[0m\x07"
    assert str(KnackAPIError(raw)) == "refused red\\x07"
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "said %s", (raw,), None)
    RedactFilter().filter(record)
    assert record.getMessage() == "said refused red\\x07"
    table = Table([{"why": raw}], caption=raw)
    assert "\x1b" not in repr(table) and "\x1b" not in table._repr_html_()
    assert "refused red\\x07" in table._repr_html_()
    header = Header("n", {})
    header.fail(raw)
    assert "\x1b" not in repr(header) and "\x1b" not in header._repr_html_()
    note = Note(f"**app** {md(raw)}")
    assert repr(note) == "app refused red\\x07" and "\x1b" not in note._repr_markdown_()
