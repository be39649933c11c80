"""Schemathesis hooks for the fuzz test (loaded through SCHEMATHESIS_HOOKS by test_fuzz.py).

- The rules of the API JSON Schema cannot state: the API refuses more than 50
  recipients across to, cc and bcc together (SES's limit); the schema can only cap each
  list. And `scheduled_at` must be at most MAX_SCHEDULE_HOURS ahead (a rule of the
  clock, not of the text). A generated schema-valid body over either is brought within
  it, so the positive-data check tests the rules the schema does state; batches get
  the same per email.
- The rule of webhook URLs the schema cannot state either: the host must be public
  (no loopback, private or metadata addresses, no credentials in the URL). A
  schema-valid registration whose URL limbo refuses gets a public one instead, so the
  positive-data check tests the rest of the body; schema-invalid URLs stay as they are.
- No targeted search. Schemathesis's fuzzing phase calls ``hypothesis.target()`` on
  every case (to lean towards accepted inputs), which makes Hypothesis run its
  optimise phase after generating: a hill climb that redraws and re-sends variations of
  the best case for as long as it improves. Against this API that phase cost several
  minutes of CPU per run and found nothing the generated cases do not already reach;
  the cases still come from the same seed and cover the same schema.
"""

from __future__ import annotations

import time
from typing import Any

import hypothesis
import schemathesis

from limbo_shared.scheduling import parse_rfc3339
from limbo_shared.schema import MAX_RECIPIENTS
from limbo_shared.webhooks import DestinationSettings, Refused
from limbo_shared.webhooks.destinations import MAX_URL_LENGTH

_DESTINATIONS = DestinationSettings().destinations

MAX_SCHEDULE_HOURS = 72  # the API's default, which the fuzzed API runs with


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    # map_case (unlike map_body) also reaches the coverage phase's cases.
    if case.operation.path == "/v1/webhooks" and case.method.upper() == "POST":
        case.body = _public_url(case.body)
    elif isinstance(case.body, list):
        case.body = [_within_schedule_window(_within_recipient_limit(b)) for b in case.body]
    else:
        case.body = _within_schedule_window(_within_recipient_limit(case.body))
    return case


def _public_url(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    url = body.get("url")
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL_LENGTH:
        return body  # invalid by the schema: the API must refuse it as it is
    try:
        _DESTINATIONS.check_url(url)
    except Refused:
        return {**body, "url": "https://hooks.example.com/fuzz"}
    return body


def _within_schedule_window(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("scheduled_at"), str):
        return body
    try:
        due = parse_rfc3339(body["scheduled_at"]).timestamp()
    except ValueError:
        return body  # the API refuses it, as the schema's date-time format does
    # A minute of margin for the time between generating and sending the case.
    if due - time.time() <= MAX_SCHEDULE_HOURS * 3600 - 60:
        return body
    return {**body, "scheduled_at": None}


def _within_recipient_limit(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    lists = [key for key in ("to", "cc", "bcc") if isinstance(body.get(key), list)]
    total = sum(len(body[key]) for key in lists)
    if total <= MAX_RECIPIENTS:
        return body
    trimmed = dict(body)
    excess = total - MAX_RECIPIENTS
    for key in reversed(lists):  # bcc first, then cc: `to` keeps its required minimum
        keep = max(len(trimmed[key]) - excess, 1 if key == "to" else 0)
        excess -= len(trimmed[key]) - keep
        trimmed[key] = trimmed[key][:keep]
    return trimmed


def _no_target(observation: int | float, *, label: str = "") -> int | float:
    return observation


hypothesis.target = _no_target
