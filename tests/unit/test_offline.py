"""lib/offline.py: the offline page fetches nothing from elsewhere and runs no address."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from lib.reports.offline import offline

PAGE = """<html><head><base href="http://evil.example/">
<meta http-equiv="Refresh" content="0;url=http://evil.example/">
<style>body{background:url( "http://evil.example/a.png" )}
.x{background:url(data:image/png;base64,AA)} @import 'https://evil.example/x.css'; a<b</style>
<script>var s = "<img src=http://x.example>"; if (a<b) {}</script></head><body>
<a href="java&#x09;script:alert(1)">x</a> <a href="  JavaScript:alert(1)">y</a>
<a href="https://ok.example/">ok</a> <a href="#here">here</a> <a href="data:text/html,x">d</a>
<img src="http://evil.example/p.png" alt="a"> <img src='data:image/png;base64,AAAA'/>
<img src=//evil.example/x.png> <img src="/\\evil.example/x.png"> <img src="local.png">
<img srcset="a.png 1x, https://evil.example/b.png 2x">
<p style="background-image:url('https://evil.example/x')">t</p>
<iframe src="data:text/html,<script>1</script>"></iframe>
<svg><image href="https://evil.example/i.png"/><a xlink:href="javascript:1">s</a></svg>
<form action="javascript:1"><button formaction="vbscript:x">b</button></form>
<video poster="https://evil.example/p.jpg" src="https://evil.example/v.mp4"></video>
<object data="http://evil.example/o.swf"></object>
<iframe srcdoc="&lt;p&gt;hi&lt;/p&gt;" sandbox="allow-scripts"></iframe>
<p>shown as text: http://evil.example/p.png javascript:alert(1)</p>
</body></html>"""


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.css: list[str] = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._style = tag == "style"

    def handle_data(self, data):
        if self._style:
            self.css.append(data)
            self._style = False


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_nothing_remote_and_no_script_address_is_left():
    page, dropped = offline(PAGE)
    tags = parsed(page)
    names = [t for t, _ in tags.tags]
    assert "base" not in names and "meta" not in names
    for tag, attrs in tags.tags:
        for name, value in attrs.items():
            address = re.sub(r"\s+", "", value or "").lower().replace("\\", "/")
            assert not address.startswith(("javascript:", "vbscript:")), (tag, name, value)
            if name in ("src", "srcset", "poster", "data", "style") or (
                tag in ("image", "link") and name == "href"
            ):
                assert "evil.example" not in address, (tag, name, value)
    assert "evil.example" not in "".join(tags.css) and "data:image/png" in "".join(tags.css)
    assert dropped == 20


def test_what_is_safe_stays_as_it_was():
    page, _ = offline(PAGE)
    for kept in (
        '<a href="https://ok.example/">ok</a>',
        '<a href="#here">here</a>',
        "<img src='data:image/png;base64,AAAA'/>",
        '<img src="local.png">',
        '<script>var s = "<img src=http://x.example>"; if (a<b) {}</script>',
        '<iframe srcdoc="&lt;p&gt;hi&lt;/p&gt;" sandbox="allow-scripts"></iframe>',
        "<p>shown as text: http://evil.example/p.png javascript:alert(1)</p>",
        '<img alt="a">',
    ):
        assert kept in page, kept
    assert offline(page) == (page, 0)  # idempotent
    assert offline("<p>plain</p>") == ("<p>plain</p>", 0)
