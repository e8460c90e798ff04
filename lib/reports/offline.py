"""A report's HTML page made to load nothing from elsewhere and run no link as script.

``knack-nb reports --html`` renders a report with nbconvert; text from services is escaped
where the report shows it (lib/text.py), and this is the page's second line of defence,
whatever an output or a later nbconvert puts in it:

- scripts and stylesheets from another host are removed (``<script src>``, ``<link href>``),
  and so are ``<base>`` (it would send every relative address elsewhere) and
  ``<meta http-equiv="refresh">``;
- an attribute that makes the browser fetch what it names while the page loads (``src``,
  ``srcset``, ``poster``, ``background``, ``data``, SVG's ``href``...) is removed when that
  is not in the page itself (a ``data:`` URL, a relative path or a fragment);
- a ``javascript:`` or ``vbscript:`` address (or ``data:`` as a link) is removed from every
  attribute that takes one (``href``, ``action``, ``formaction``...), however it is spelled
  (entities, case, tabs);
- CSS ``url(...)`` and ``@import`` of another host, in ``<style>`` and ``style=""``, become
  ``none``.

Links to web pages (``<a href="https://...">``) stay: following one is the reader's choice.
The map of a report (lib/maps.py) is a document of its own in an ``<iframe srcdoc>``; its
tiles are loaded by its script in the reader's browser, as that module says.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

__all__ = ["offline"]

# attributes whose address the browser fetches as the page loads (on any element)
_FETCHED = frozenset(
    {
        "src",
        "srcset",
        "poster",
        "background",
        "lowsrc",
        "dynsrc",
        "manifest",
        "codebase",
        "archive",
        "longdesc",
        "data",
        "imagesrcset",
    }
)
# elements whose href is fetched (SVG images, uses, filters; a stylesheet)
_FETCHED_HREF = frozenset({"image", "use", "feimage", "link", "script"})
_HREF = frozenset({"href", "xlink:href"})
# attributes holding an address a click or a submit follows: no script, no data: document
_FOLLOWED = frozenset({"href", "xlink:href", "action", "formaction", "cite"})
_SCRIPT_SCHEMES = ("javascript:", "vbscript:")
# elements whose src or data is a document: a data: URL there is a page that runs script
_DOCUMENTS = frozenset({"iframe", "frame", "object", "embed"})
_DROPPED_TAGS = frozenset({"base"})
_LOCAL_SCHEMES = ("data:", "about:")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")  # what a browser strips from an address
# url(...) or @import "..." in CSS, with the address it names
_CSS_URL = re.compile(
    r"""url\(\s*(?P<q>['"]?)(?P<u>.*?)(?P=q)\s*\)|@import\s+(?P<q2>['"])(?P<u2>.*?)(?P=q2)""",
    re.IGNORECASE | re.DOTALL,
)


def _address(value: str) -> str:
    """An address as a browser reads it: entities decoded, no whitespace or controls,
    backslashes as slashes, lower case."""
    return _INVISIBLE.sub("", html.unescape(value)).replace("\\", "/").lower()


def _remote(value: str) -> bool:
    """Whether loading ``value`` fetches from outside the page (another host, any scheme
    but ``data:``/``about:``)."""
    address = _address(value)
    if address.startswith("//"):
        return True
    return bool(_SCHEME.match(address)) and not address.startswith(_LOCAL_SCHEMES)


def _runs_script(value: str, *, data: bool = False) -> bool:
    """Whether following ``value`` runs script (``data``: a data: document counts)."""
    return _address(value).startswith(_SCRIPT_SCHEMES + (("data:",) if data else ()))


def _unsafe(tag: str, name: str, value: str) -> bool:
    """Whether the attribute must go: it fetches from elsewhere, or it runs script."""
    if name == "srcset" or name == "imagesrcset":
        return any(
            _remote(part.split()[0]) or _runs_script(part.split()[0])
            for part in value.split(",")
            if part.split()
        )
    if name in _FETCHED or (name in _HREF and tag in _FETCHED_HREF):
        return _remote(value) or _runs_script(value, data=tag in _DOCUMENTS)
    return name in _FOLLOWED and _runs_script(value, data=True)


def _css(text: str) -> tuple[str, int]:
    """CSS without remote ``url()`` or ``@import``; and how many it had."""
    dropped = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal dropped
        address = match.group("u") if match.group("u") is not None else match.group("u2")
        if not _remote(address) and not _runs_script(address):
            return match.group()
        dropped += 1
        return "none" if match.group("u") is not None else "@import none"

    return _CSS_URL.sub(replace, text), dropped


class _Finder(HTMLParser):
    """Finds what must change: (start, end, replacement) spans of the page."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=False)
        self.page = page
        self.lines = [0] + [m.end() for m in re.finditer("\n", page)]
        self.edits: list[tuple[int, int, str]] = []
        self.dropped = 0
        self._style = False

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, self.get_starttag_text() or "")
        self._style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            css, dropped = _css(data)
            if dropped:
                start = self._offset()
                self.edits.append((start, start + len(data), css))
                self.dropped += dropped

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], text: str) -> None:
        start = self._offset()
        if tag in _DROPPED_TAGS or (
            tag == "meta"
            and any(n == "http-equiv" and (v or "").lower() == "refresh" for n, v in attrs)
        ):
            self.edits.append((start, start + len(text), ""))
            self.dropped += 1
            return
        kept: list[tuple[str, str | None]] = []
        dropped = 0
        for name, value in attrs:
            if value is not None and _unsafe(tag, name, value):
                dropped += 1
                continue
            if value is not None and name == "style":
                value, n = _css(value)
                dropped += n
            kept.append((name, value))
        if dropped:
            end = "/>" if text.rstrip().endswith("/>") else ">"
            rebuilt = (
                f"<{tag}"
                + "".join(
                    f" {n}" if v is None else f' {n}="{html.escape(v, quote=True)}"'
                    for n, v in kept
                )
                + end
            )
            self.edits.append((start, start + len(text), rebuilt))
            self.dropped += dropped


def offline(page: str) -> tuple[str, int]:
    """``page`` that loads nothing from elsewhere and runs no address as script (see the
    module's docstring); and how many tags, attributes and CSS addresses were removed."""
    finder = _Finder(page)
    finder.feed(page)
    finder.close()
    out, at = [], 0
    for start, end, replacement in sorted(finder.edits):
        out += [page[at:start], replacement]
        at = end
    out.append(page[at:])
    return "".join(out), finder.dropped
