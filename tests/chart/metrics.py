"""The metric names limbo's code defines, and the metric names a PromQL expression reads.

Names are collected from the prometheus_client constructors in the source (so renaming a
metric in the code fails the chart's dashboard and alert tests), expanded to the series
Prometheus actually stores (a counter's ``_total``, a histogram's ``_bucket``...).
"""

from __future__ import annotations

import ast
import functools
import re

import promql_parser

from .conftest import ROOT

_SOURCES = [ROOT / "shared" / "src", *sorted((ROOT / "services").glob("*/src"))]
_SERIES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("", "_sum", "_count", "_created"),
}
# Grafana's interval variables are not PromQL; give them a duration before parsing.
_GRAFANA_VARIABLES = re.compile(r"\$__(rate_interval|interval|range)")


@functools.cache
def exported_series() -> frozenset[str]:
    names: set[str] = set()
    for source in _SOURCES:
        for path in source.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                kind = getattr(node.func, "id", getattr(node.func, "attr", None))
                first = node.args[0]
                if kind in _SERIES and isinstance(first, ast.Constant):
                    base = str(first.value).removesuffix("_total")
                    names.update(base + suffix for suffix in _SERIES[kind])
    return frozenset(names)


def parse(expression: str) -> object:
    """The expression's syntax tree; a syntax error raises."""
    return promql_parser.parse(_GRAFANA_VARIABLES.sub("5m", expression))


def metric_names(expression: str) -> set[str]:
    """Every metric name a selector in the expression names."""
    found: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expression!r}"
            found.add(node.name)
            return
        for attribute in ("lhs", "rhs", "expr", "param", "vector_selector", "args"):
            child = getattr(node, attribute, None)
            if child is not None and not isinstance(child, (str, int, float)):
                visit(child)

    visit(parse(expression))
    return found
