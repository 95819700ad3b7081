"""The operator's view on a running stack: the Grafana dashboard asks only for metrics that the API and
the workers really export (the config files alone: tests/unit/test_monitoring.py)."""

import json
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from settings import PROJECT_ROOT
from tests.support.clients import METRICS_TOKEN, bearer

DASHBOARD = PROJECT_ROOT / "monitoring" / "grafana" / "dashboards" / "chatbot.json"
# The prefix-cache panel waits for these counters (no runtime reports cache hits yet).
PENDING_METRICS = {"chatbot_worker_prefix_cache_hit_tokens_total", "chatbot_worker_prompt_tokens_total"}
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def exported_names(text: str) -> set[str]:
    """Every series name a scrape can return, also for labelled metrics with no sample yet."""
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in SUFFIXES.get(family.type, [""])
    }


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_dashboard_asks_only_for_metrics_the_service_exports(stack) -> None:
    # Asked the way Prometheus asks: with the scrape token.
    exported = exported_names(httpx.get(f"{stack.api_url}/metrics", headers=bearer(METRICS_TOKEN)).text)
    for port in stack.worker_metrics_ports.values():
        exported |= exported_names(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    asked = {name for query in dashboard_queries() for name in re.findall(r"\bchatbot_\w+", query)}

    assert asked - exported <= PENDING_METRICS, asked - exported
    assert asked & exported  # the names really come from the scrapes
