"""The chart's Grafana dashboard and PrometheusRule: off by default, valid, and reading
only metrics limbo's code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import CHART, ROOT, Rendered, render_error, rendered
from .metrics import exported_series, metric_names, parse
from .schemas import validate_prometheus_rule

DEFAULT = CHART / "ci" / "default-values.yaml"
RUNBOOK = "https://git.example.com/limbo/blob/main/README.md"
BOTH = ("dashboards.enabled=true", "alerts.enabled=true", f"alerts.runbookUrl={RUNBOOK}")


def _observability() -> Rendered:
    return rendered(DEFAULT, sets=BOTH)


def _dashboard(r: Rendered) -> dict[str, Any]:
    (config,) = [
        c for c in r.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    ]
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    (text,) = config["data"].values()
    return json.loads(text)  # type: ignore[no-any-return]


def _queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _rules(r: Rendered) -> list[dict[str, Any]]:
    (rule,) = r.of_kind("PrometheusRule")
    return [item for group in rule["spec"]["groups"] for item in group["rules"]]


def _github_anchors(readme: Path) -> set[str]:
    anchors = set()
    for line in readme.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_neither_is_rendered_by_default() -> None:
    r = rendered(DEFAULT)
    assert r.of_kind("PrometheusRule") == []
    assert not any("grafana_dashboard" in c["metadata"]["labels"] for c in r.of_kind("ConfigMap"))


def test_the_code_exports_the_metrics_this_test_looks_for() -> None:
    """The collector itself works: it finds a counter, a histogram and a gauge."""
    series = exported_series()
    assert "limbo_api_requests_total" in series
    assert "limbo_worker_time_in_queue_seconds_bucket" in series
    assert "limbo_worker_queue_messages" in series
    assert "limbo_api_requests" not in series


def test_the_dashboard_queries_parse_and_read_only_exported_metrics() -> None:
    dashboard = _dashboard(_observability())
    queries = _queries(dashboard)
    assert len(queries) >= 10
    used: set[str] = set()
    for query in queries:
        names = metric_names(query)
        assert names, query
        assert names <= exported_series(), f"{query!r} reads {names - exported_series()}"
        used |= names
    # The panels the chart promises: API, queues, sends by provider and outcome.
    assert {
        "limbo_api_requests_total",
        "limbo_api_request_duration_seconds_bucket",
        "limbo_worker_queue_messages",
        "limbo_worker_time_in_queue_seconds_bucket",
        "limbo_worker_messages_total",
        "limbo_worker_paused",
        "limbo_worker_rate_limit_wait_seconds_bucket",
        "limbo_worker_send_rate_limit",
        "limbo_worker_provider_active",
        "limbo_worker_routing_switches_total",
    } <= used


def test_a_renamed_metric_fails_the_name_check() -> None:
    assert not metric_names("rate(limbo_worker_messages_sent_total[5m])") <= exported_series()
    with pytest.raises(ValueError):
        parse("sum by (provider (rate(limbo_worker_messages_total[5m]))")


def test_the_rule_validates_and_its_alerts_parse_read_exported_metrics_and_link_a_runbook() -> None:
    r = _observability()
    (rule,) = r.of_kind("PrometheusRule")
    validate_prometheus_rule(rule)
    anchors = _github_anchors(ROOT / "README.md")
    alerts = _rules(r)
    assert {a["alert"] for a in alerts} >= {
        "LimboDeadLetterQueueNotEmpty",
        "LimboMessagesWaitingTooLong",
        "LimboBacklogNotDraining",
        "LimboProviderPaused",
        "LimboFailoverActive",
        "LimboSendErrorRate",
        "LimboApiServerErrors",
    }
    for alert in alerts:
        names = metric_names(alert["expr"])
        assert names and names <= exported_series(), alert["alert"]
        url, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert url == RUNBOOK
        assert anchor == alert["alert"].lower() and anchor in anchors, alert["alert"]


def test_the_thresholds_come_from_values(tmp_path: Path) -> None:
    # A file, not --set: helm's --set turns 0.2 into a string, which the schema refuses.
    thresholds = tmp_path / "thresholds-values.yaml"
    thresholds.write_text("alerts:\n  oldestMessageMinutes: 7\n  api5xxRatio: 0.2\n")
    r = rendered(DEFAULT, thresholds, sets=BOTH)
    alerts = {a["alert"]: a for a in _rules(r)}
    assert alerts["LimboMessagesWaitingTooLong"]["expr"].rstrip().endswith("> 420")
    assert alerts["LimboBacklogNotDraining"]["for"] == "7m"
    assert alerts["LimboApiServerErrors"]["expr"].rstrip().endswith("> 0.2")


def test_alerts_without_a_runbook_address_are_refused() -> None:
    assert "alerts.runbookUrl" in render_error([DEFAULT], ["alerts.enabled=true"])


def test_the_rule_validator_rejects_an_unknown_field() -> None:
    (rule,) = _observability().of_kind("PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    with pytest.raises(AssertionError, match="expresion"):
        validate_prometheus_rule(rule)
