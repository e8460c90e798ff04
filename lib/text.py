"""Text from outside (Knack, Socrata, ArcGIS: names, labels, error messages) made safe to show.

- ``clean(text)``: for a terminal, a log line, a report's text. Escape sequences of every
  kind (CSI such as colours and cursor moves, OSC such as titles and hyperlinks, DCS, SOS,
  PM, APC, and the two-character ones such as a terminal reset) are removed, whether they
  start with ESC or with their C1 character; every other control character (C0 but newline
  and tab, DEL, C1) and the bidirectional overrides, which reorder what a reader sees, are
  shown as their escape (``\\x07``, ``\\u202e``). A CRLF line end becomes a newline.
- ``md(text)``: for Markdown (a report's ``Note``): cleaned, on one line, and every ASCII
  punctuation character backslash-escaped, so nothing in it is markup: no link, image,
  raw HTML, entity, emphasis, heading or autolinked URL; it renders as the text itself.

``KnackNbError`` messages, log lines (``lib.redact.RedactFilter``), what the command line
prints, report headers, tables and notes go through them: one rule wherever the text shows.
"""

from __future__ import annotations

import re

__all__ = ["clean", "md", "plain"]

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
