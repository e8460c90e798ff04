"""Text from outside (Knack, Socrata, ArcGIS: names, labels, error messages) made safe to show.

- ``clean(text)``: for a terminal, a log line, a report's text. Escape sequences of every
  kind (CSI such as colours and cursor moves, OSC such as titles and hyperlinks, DCS, SOS,
  PM, APC, and the two-character ones such as a terminal reset) are removed, whether they
  start with ESC or with their C1 character; every other control character (C0 but newline
  and tab, DEL, C1) and the bidirectional overrides, which reorder what a reader sees, are
  shown as their escape (``\\x07``, ``\\u202e``). A CRLF line end becomes a newline.
- ``value_text(text, width)``: a record's text value as a report's table shows it: an HTML
  fragment (Knack's rich text and paragraph fields, an address's ``<br />``) as the text a
  reader sees (tags out, entities unescaped), whitespace collapsed, cut with "…" beyond
  ``width`` characters.
- ``md(text)``: for Markdown (a report's ``Note``): cleaned, on one line, and every ASCII
  punctuation character backslash-escaped, so nothing in it is markup: no link, image,
  raw HTML, entity, emphasis, heading or autolinked URL; it renders as the text itself.

``KnackNbError`` messages, log lines (``lib.redact.RedactFilter``), what the command line
prints, report headers, tables and notes go through them: one rule wherever the text shows.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["clean", "md", "plain", "value_text"]

# ESC or its C1 form, then the rest of the sequence (ECMA-48); a sequence cut short by the
# end of the text, a newline or CAN/SUB (which abort one in a terminal) ends there
_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]?          # CSI: colours, moves
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])                        # OSC, DCS, SOS, PM, APC
      [^\x07\x9c\x1b\x18\x1a\n]* (?:\x07|\x9c|\x1b\\)?               # ... up to BEL or ST
    | \x1b [\x20-\x2f]* [\x30-\x7e]?                                 # nF, Fp, Fe, Fs; lone ESC
    """,
    re.VERBOSE,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # ASCII punctuation: CommonMark escapes it
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])|[*`]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(text: str) -> str:
    """``text`` with no control character a terminal or a page would act on (see above)."""
    if not text:
        return text
    text = _SEQUENCE.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub(_escape, text)


def md(text: object) -> str:
    """``text`` (``str()`` of any value) as Markdown that shows exactly it, on one line."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(clean(str(text)).split()))


def plain(markdown: str) -> str:
    """The text a reader sees of Markdown built with ``md``: escapes undone, the ``**`` and
    backticks of the markup dropped (a report's text/plain form of a ``Note``)."""
    return _ESCAPED.sub(lambda m: m.group(1) or "", markdown)


# a tag (<p>, </p>, <br />, <a href=...>) or a comment: what makes a value an HTML fragment
_TAG = re.compile(r"<(?:/?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?|!--.*?--)>", re.DOTALL)
_SKIPPED = frozenset({"script", "style", "head", "title"})  # their content is not text
# tags inside a line of text: no space where they were ("<b>bo</b>ld" reads "bold")
_INLINE = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "data",
        "dfn",
        "em",
        "font",
        "i",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "time",
        "u",
        "var",
    ]
)


class _TextOf(HTMLParser):
    """The text of an HTML fragment, a space where a block's tag was (``<p>a</p><p>b</p>``
    and ``a<br>b``: "a b")."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skipping += tag in _SKIPPED
        if tag not in _INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.skipping -= tag in _SKIPPED and self.skipping > 0
        if tag not in _INLINE:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(text: str) -> str:
    """The text a reader sees of ``text`` when it is an HTML fragment (tags out, entities
    unescaped); other text as it is ("a < b & c" stays)."""
    if not _TAG.search(text):
        return text
    parser = _TextOf()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def value_text(text: str, width: int) -> str:
    """A record's text value as a table cell shows it (see above), at most ``width``
    characters."""
    shown = " ".join(clean(html_text(text)).split())
    return shown if len(shown) <= width else shown[: width - 1].rstrip() + "…"
