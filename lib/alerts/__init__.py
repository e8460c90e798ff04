"""Alerts: messages to people about runs that failed for good, and about recoveries.

- ``messages``: what is said and when (pure: :func:`~lib.alerts.messages.decide`);
- ``history``: what the alerts remember of a job in S3 (``_state/<app>-<env>/alerts/``);
- ``runs``: a run's outcome from its report (the error's line, ``rerun_helps``, the page);
- ``send``: apprise, to the targets of ``KNACK_ALERT_URLS`` (a secret);
- ``airflow``: the generated tasks' callbacks.

One path serves Airflow (the callbacks) and ``knack-nb run ... --alert``: :func:`notify`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from lib.alerts.history import AlertHistory
from lib.alerts.messages import FAILED, History, Message, Outcome, decide
from lib.alerts.send import alert_urls, send
from lib.clients.app_store import AppStore
from lib.errors import StoreError

logger = logging.getLogger(__name__)

__all__ = ["Message", "Outcome", "alert_urls", "notify"]


def notify(
    outcome: Outcome,
    *,
    now: dt.datetime | None = None,
    urls: list[str] | None = None,
    store: AppStore | None = None,
) -> Message | None:
    """Say what ``outcome`` calls for (``lib.alerts.messages``) to ``urls`` (default: the
    targets of ``KNACK_ALERT_URLS``; none: nothing is read, said or written); the message
    said, or None. A message that could not be sent is not recorded as said, so the next
    run says it again. Never raises for S3 or a target: an alert must not fail a run."""
    urls = alert_urls() if urls is None else urls
    if not urls:
        return None
    now = now or dt.datetime.now(dt.UTC)
    try:
        store = store or AppStore(app_name=outcome.app_name, env=outcome.env)
        history = AlertHistory(store, outcome.job, outcome.container)
    except (ValueError, StoreError) as e:
        logger.error("no alert for %s: %s", outcome.where, e)
        return None
    before = history.read()
    message, after = decide(before, outcome, now)
    sent = message is not None and send(message, urls)
    if message is not None and not sent:
        after = _unsaid(before, after, message)
    if after != before:
        try:
            history.write(after)
        except StoreError as e:
            logger.error("the alert history of %s was not kept: %s", outcome.where, e)
    return message if sent else None


def _unsaid(before: History, after: History, message: Message) -> History:
    """The history to keep when ``message`` did not reach its targets: as if not said."""
    if message.kind == FAILED:
        return dataclasses.replace(after, said_at=before.said_at, said_error=before.said_error)
    return before  # a recovery not said: still failing, the next success says it
