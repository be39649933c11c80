"""``limbo-ses-worker``: sends queued mail through AWS SES v2."""

from __future__ import annotations

from limbo_shared.config import load_settings
from limbo_shared.logs import get_logger, setup_logging
from limbo_shared.worker import WorkerSettings, run_worker

from .provider import SesProvider, SesSettings

log = get_logger("limbo.worker")


def build_provider(settings: WorkerSettings) -> SesProvider:
    ses_settings = load_settings(SesSettings)
    provider = SesProvider(ses_settings, max_connections=settings.concurrency)
    # The runtime sets logging up after building the provider; these lines come first.
    setup_logging(ses_settings.log_format, ses_settings.log_level)
    if ses_settings.sessource is not None:
        log.warning(
            "SESSOURCE is deprecated and unused: mail goes out from the client's own "
            "address, as SENDER_DOMAINS allows it at the API"
        )
    unverified = provider.unverified_domains()
    if unverified:
        # SES refuses (MessageRejected) every From in a domain it has not verified.
        log.warning(
            "sender domains without a verified SES identity; mail from them is rejected",
            domains=unverified,
        )
    return provider


def main() -> None:
    run_worker("limbo-ses-worker", build_provider)


if __name__ == "__main__":
    main()
