"""The kinds of background job: their queue, how often they are tried, their back-off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matcher.jobs.settings import JobSettings

MATCHING, WEBHOOKS, MAINTENANCE = "matching", "webhooks", "maintenance"


class RetryLater(Exception):
    """The job did not get its work done this time; the queue runs it again after back-off."""


@dataclass(frozen=True)
class Run:
    """One run of a job: which try it is (1, 2, …) out of how many."""

    attempt: int
    max_attempts: int

    @property
    def last(self) -> bool:
        return self.attempt >= self.max_attempts


@dataclass(frozen=True)
class Kind:
    """A kind of job: its queue, tries and back-off base (seconds) from the settings."""

    name: str
    queue: str
    attempts: Callable[[JobSettings], int]
    backoff_s: Callable[[JobSettings], float]


def _matching(name: str) -> Kind:
    return Kind(name, MATCHING, lambda s: s.match_attempts, lambda s: s.match_backoff_s)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        _matching("match_need"),
        _matching("match_technology"),
        _matching("route_unrouted"),
        Kind(
            "deliver_webhook",
            WEBHOOKS,
            lambda s: s.webhook_attempts,
            lambda s: s.webhook_backoff_s,
        ),
        # e-mail to submitters shares the outbound queue with webhooks
        Kind("send_email", WEBHOOKS, lambda s: s.mail_attempts, lambda s: s.mail_backoff_s),
    )
}
