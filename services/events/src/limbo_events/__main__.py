"""``limbo-events``: apply delivery events from the events queue until SIGTERM.

The shared consumer runtime (``run_consumer``) does the receiving, settling, retries,
pausing on a sick store, metrics and the SIGTERM drain; this package is the handler.
"""

from __future__ import annotations

from limbo_shared.config import ConfigError
from limbo_shared.events import EventSource, MailgunEventSource, SesEventSource, SnsVerifier
from limbo_shared.logs import get_logger
from limbo_shared.store import DeliveryOutcomes, MessageStore, Suppressions, open_table
from limbo_shared.webhooks import open_notifier
from limbo_shared.worker import run_consumer

from .handler import EventsHandler
from .settings import EventsSettings

PROGRAM = "limbo-events"
log = get_logger("limbo.events")


def sources(settings: EventsSettings) -> dict[str, EventSource]:
    found: dict[str, EventSource] = {"mailgun": MailgunEventSource()}
    if settings.ses_events_topic_arn is not None:
        verifier = SnsVerifier(
            settings.ses_events_topic_arn, verify_signatures=settings.sns_verify_signatures
        )
        found["ses"] = SesEventSource(verifier)
    return found


def build_handler(settings: EventsSettings) -> EventsHandler:
    if settings.status_table is None:
        raise ConfigError("STATUS_TABLE is not set: events are applied to the status table")
    if settings.ses_events_topic_arn is None:
        log.warning("SES_EVENTS_TOPIC_ARN is unset: SES events are refused")
    elif not settings.sns_verify_signatures:
        log.warning("SNS signatures are not verified (SNS_VERIFY_SIGNATURES=false)")
    table = open_table(
        settings.status_table,
        region=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        threads=min(32, settings.concurrency),
    )
    return EventsHandler(
        queue_name=settings.queue_name,
        sources=sources(settings),
        messages=MessageStore(table, ttl_days=settings.status_ttl_days),
        outcomes=DeliveryOutcomes(table, ttl_days=settings.status_ttl_days),
        suppressions=Suppressions(table),
        retry_seconds=settings.retry_seconds,
        notifier=open_notifier(
            settings, table, region=settings.region, endpoint_url=settings.aws_endpoint_url
        ),
    )


def main() -> None:
    run_consumer(PROGRAM, build_handler, EventsSettings)


if __name__ == "__main__":
    main()
