"""The health check's counts (lib/health/rules.py) with a destination that has no count of
its own: another Knack app, whose params key ``knack`` is also the name of Knack's count."""

from __future__ import annotations

from lib.health.rules import Destination, Facts


def test_a_knack_destination_never_hides_knacks_own_count():
    facts = Facts(
        "object_3",
        s3=25,
        knack=25,
        destinations={"knack": Destination("the other Knack app", written_since_publish=0)},
    )
    # before: {"s3": 25}: the destination's None replaced Knack's count, so a drop of
    # Knack's records went unseen
    assert facts.counts() == {"knack": 25, "s3": 25}
