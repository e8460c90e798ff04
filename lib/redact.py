"""Keep credentials out of every message, log line and report.

``redact(text)`` replaces with ``***``:

- the password of a URL's userinfo (``https://user:pass@host`` → ``https://user:***@host``);
- the values of the credential environment variables (``CREDENTIAL_VARIABLES`` and every
  app's own key, ``KNACK_API_KEY_<APP>``), and the
  password of any ``*_URL`` variable's userinfo, wherever they appear (raw or URL-encoded),
  when they are long enough not to be ordinary words (``MIN_SECRET_LENGTH``);
- the alert targets of ``KNACK_ALERT_URLS`` (apprise URLs, whose tokens sit in the path:
  ``slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ``): each URL whole, its userinfo,
  and each path segment or query value that looks like a token (``_token_like``);
- signing material: ``Credential=``, ``Signature=`` (AWS SigV4 and presigned URLs), the
  signature botocore logs at debug level, and the values of credential-bearing headers,
  query parameters and JSON members (``Authorization``, ``X-Amz-Security-Token``, ``token``...).

It is applied where text leaves the process: ``KnackNbError`` messages (lib/errors.py), the
logging handlers ``lib.notebook.setup`` and ``knack-nb`` install (``RedactFilter``), the
notebook's exception display and the CLI's printed errors. ``RedactFilter`` also cleans each
log line of terminal escape sequences and control characters (``lib.text.clean``): a line
may quote a service.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import urllib.parse

from lib.text import clean

__all__ = ["CREDENTIAL_VARIABLES", "MASK", "MIN_SECRET_LENGTH", "RedactFilter", "redact"]

MASK = "***"
# DESIGN.md's credentials (and the Airflow API's); usernames too: half of a login
CREDENTIAL_VARIABLES = (
    "KNACK_API_KEY",
    "SOCRATA_APP_TOKEN",
    "SOCRATA_API_KEY_ID",
    "SOCRATA_API_KEY_SECRET",
    "AGOL_USERNAME",
    "AGOL_PASSWORD",
    "KNACK_POSTGRES_URL",  # a libpq URL: user, password, host, all of it
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AIRFLOW_API_TOKEN",
    "AIRFLOW_USERNAME",
    "AIRFLOW_PASSWORD",
)
ALERT_URLS_VARIABLE = "KNACK_ALERT_URLS"  # apprise URLs: lib/alerts
APP_KEY_PREFIX = "KNACK_API_KEY_"  # each app's own REST API key (KNACK_API_KEY_<APP>)
MIN_SECRET_LENGTH = 8  # shorter values could be ordinary words ("dev", "testing")

# scheme://user:password@ (the password runs to the last @ of the authority)
_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@'\"<>]*:)"
    r"(?P<secret>[^\s/'\"<>]*)(?=@)"
)
_SIGNING = re.compile(
    r"(?P<head>\b(?:Credential|Signature)=)(?P<secret>[^\s,&'\"]+)"
    r"|(?P<head2>\bSignature:\s*)(?P<secret2>[0-9a-fA-F]{32,})",  # botocore.auth's debug line
)
_HEADERS = (
    r"Authorization|Proxy-Authorization|X-Amz-Security-Token|X-Amz-Credential"
    r"|X-Amz-Signature|X-Knack-REST-API-KEY|X-App-Token"
)
_SCHEMES = r"Basic|Bearer|Token|Digest|OAuth|AWS4-HMAC-SHA256"  # kept: they say what it was
# 'Authorization': b'...'  or  "X-App-Token": "..."  (a dict's repr, JSON)
_QUOTED_HEADER = re.compile(
    rf"(?P<head>(?P<q>['\"])(?:{_HEADERS})(?P=q)\s*:\s*b?(?P<v>['\"])(?:(?:{_SCHEMES})\s+)?)"
    r"(?P<secret>.*?)(?=(?P=v))",
    re.IGNORECASE,
)
# Authorization: Basic abc  /  x-amz-security-token:abc  /  X-Amz-Security-Token=abc
_BARE_HEADER = re.compile(
    rf"(?P<head>\b(?:{_HEADERS})\s*[:=]\s*(?:(?:{_SCHEMES})\s+)?)"
    rf"(?P<secret>(?!\*\*\*)(?!(?:{_SCHEMES})\s)[^\s,&'\"]+)",
    re.IGNORECASE,
)
_SECRET_NAMES = r"token|access_token|refresh_token|password|client_secret|api_key|apikey"
_QUERY = re.compile(rf"(?P<head>[?&](?:{_SECRET_NAMES})=)(?P<secret>[^\s&'\"#]+)", re.IGNORECASE)
_JSON = re.compile(
    rf"(?P<head>(?P<q>['\"])(?:{_SECRET_NAMES})(?P=q)\s*:\s*b?(?P<v>['\"]))(?P<secret>[^'\"]+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` without credentials (see the module's docstring); idempotent."""
    if not text:
        return text
    values = _secret_values()
    if values:
        text = _values_pattern(values).sub(MASK, text)
    text = _USERINFO.sub(_mask, text)
    text = _SIGNING.sub(_mask, text)
    text = _QUOTED_HEADER.sub(_mask, text)
    text = _BARE_HEADER.sub(_mask, text)
    text = _QUERY.sub(_mask, text)
    return _JSON.sub(_mask, text)


def _mask(m: re.Match[str]) -> str:
    head = m.group("head2") if m.re is _SIGNING and m.group("head2") else m.group("head")
    return head + MASK


def _secret_values() -> tuple[str, ...]:
    """The credentials in the environment now (it may change between calls)."""
    found: set[str] = set()
    for name in CREDENTIAL_VARIABLES:
        value = os.environ.get(name)
        if value:
            found.add(value)
    found.update(_alert_url_secrets(os.environ.get(ALERT_URLS_VARIABLE) or ""))
    for name, value in os.environ.items():
        if name.startswith(APP_KEY_PREFIX) and value:  # one app's key: KNACK_API_KEY_<APP>
            found.add(value)
        if name.endswith("_URL") and "@" in value:
            try:
                password = urllib.parse.urlsplit(value).password
            except ValueError:
                continue
            if password:
                found.update({password, urllib.parse.unquote(password)})
    variants = set()
    for value in found:
        if len(value) >= MIN_SECRET_LENGTH:
            variants.update(
                {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
            )
    return tuple(sorted(variants))


def _alert_url_secrets(value: str) -> set[str]:
    """What of ``KNACK_ALERT_URLS`` is secret: each URL, its userinfo, and its host (apprise
    puts tokens there: ``slack://TOKEN/...``), path segments and query values that look like
    tokens (host names and words like ``services`` stay)."""
    found: set[str] = set()
    for url in re.split(r"[\s,]+", value):
        if not url:
            continue
        found.add(url)
        try:
            parts = urllib.parse.urlsplit(url)
            userinfo = [parts.username or "", parts.password or ""]
        except ValueError:
            continue
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]  # as written: hostname lowers it
        pieces = [*userinfo, host, *parts.path.split("/")]
        pieces += [v for _, v in urllib.parse.parse_qsl(parts.query)]
        found.update(p for p in pieces if _token_like(p))
    return found


def _token_like(piece: str) -> bool:
    """A token rather than a word or a host name: long, or letters and digits mixed, and no
    dot (``hooks.slack.com``, ``127.0.0.1`` stay)."""
    if len(piece) < MIN_SECRET_LENGTH or "." in piece:
        return False
    mixed = any(c.isdigit() for c in piece) and any(c.isalpha() for c in piece)
    return mixed or len(piece) >= 20


@functools.lru_cache(maxsize=8)
def _values_pattern(values: tuple[str, ...]) -> re.Pattern[str]:
    # longest first, so a value containing another is masked whole
    return re.compile("|".join(re.escape(v) for v in sorted(values, key=len, reverse=True)))


class RedactFilter(logging.Filter):
    """A handler filter that redacts (and cleans, ``lib.text.clean``) each record's message,
    traceback and stack in place.

    On a handler it sees the records of every logger that propagates there (botocore and
    urllib3 included); the record is changed in place, so handlers after it get it clean too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: logging reports it later
            return True
        record.msg, record.args = redact(clean(message)), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(clean(record.exc_text))
        if record.stack_info:
            record.stack_info = redact(clean(record.stack_info))
        record._redacted = True
        return True


def install_filter(handler: logging.Handler) -> None:
    """Add a ``RedactFilter`` to ``handler`` unless it has one."""
    if not any(isinstance(f, RedactFilter) for f in handler.filters):
        handler.addFilter(RedactFilter())
