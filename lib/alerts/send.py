"""Sending a message to people, through apprise, to the targets in ``KNACK_ALERT_URLS``.

``KNACK_ALERT_URLS`` holds apprise URLs (``slack://...``, ``msteams://...``,
``mailtos://...``, ``json://host/path`` for any webhook), separated by spaces or commas. It
is a secret (its URLs hold the targets' tokens): it is read here, when a message is sent,
never printed or logged (``lib.redact`` masks its tokens), never a parameter. None set: no
alerts, and nothing is sent or recorded.

Every message is redacted (``lib.redact``) and cleaned of control characters
(``lib.text.clean``) before it leaves, whatever it quotes.
"""

from __future__ import annotations

import logging
import os
import re

from lib.alerts.messages import FAILED, Message
from lib.redact import redact
from lib.text import clean

logger = logging.getLogger(__name__)

VARIABLE = "KNACK_ALERT_URLS"
_SEPARATORS = re.compile(r"[\s,]+")


def alert_urls() -> list[str]:
    """The apprise URLs of ``KNACK_ALERT_URLS`` (empty: no alerts)."""
    return [u for u in _SEPARATORS.split(os.environ.get(VARIABLE) or "") if u]


def safe(text: str) -> str:
    """``text`` as it may leave the process: redacted, control characters out."""
    return redact(clean(text))


def send(message: Message, urls: list[str]) -> bool:
    """Send ``message`` to every URL; whether every target took it. A URL apprise does not
    take is logged by its scheme only (the rest of it may be a token)."""
    import apprise  # here: only a run that has something to say pays its import

    notifier = apprise.Apprise()
    taken = 0
    for url in urls:
        if notifier.add(url):
            taken += 1
        else:
            scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
            logger.error(
                "%s holds a URL apprise does not take (scheme %s): check the variable",
                VARIABLE,
                scheme,
            )
    if not taken:
        return False
    kind = apprise.NotifyType.FAILURE if message.kind == FAILED else apprise.NotifyType.SUCCESS
    sent = notifier.notify(
        title=safe(message.title),
        body=safe(message.body),
        notify_type=kind,
        body_format=apprise.NotifyFormat.TEXT,
    )
    if not sent:
        logger.error("an alert could not be sent to every target of %s", VARIABLE)
    return bool(sent) and taken == len(urls)
