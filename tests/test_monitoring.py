"""The operator's view: the Prometheus config is valid, scrapes what docker-compose runs, and the
Grafana dashboard asks only for metrics that the API and the workers really export."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from settings import PROJECT_ROOT
from tests.support.clients import METRICS_TOKEN, bearer

MONITORING = PROJECT_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "chatbot.json"
SECRET_FILE = "/run/secrets/metrics_token"
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


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: scripts/setup.sh installs it with apt"
)
def test_promtool_accepts_the_prometheus_config(tmp_path: Path) -> None:
    # The scrape token is a compose secret under /run/secrets; promtool checks that the file exists.
    token = tmp_path / "metrics_token"
    token.write_text("a-token")
    config = tmp_path / "prometheus.yml"
    config.write_text((MONITORING / "prometheus.yml").read_text().replace(SECRET_FILE, str(token)))
    checked = subprocess.run(["promtool", "check", "config", str(config)], capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_the_services_of_docker_compose() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    scrape = yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]
    targets = [target for job in scrape for group in job["static_configs"] for target in group["targets"]]
    worker_port = compose["x-app"]["environment"]["WORKER_METRICS_PORT"]

    for target in targets:
        host, port = target.split(":")
        assert host in services, target
        assert port == ("8000" if host == "api" else worker_port), target
    assert {s for s in services if s.startswith("worker-")} <= {t.split(":")[0] for t in targets}
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]


def test_the_dashboard_has_the_operators_panels() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}

    assert titles >= {
        "Time to first token", "Tokens per second", "Queue wait", "Queue depth", "Live workers",
        "Stream errors by code", "Prefix-cache hit rate",
    }  # fmt: skip


def test_the_dashboard_asks_only_for_metrics_the_service_exports(stack) -> None:
    # Asked the way Prometheus asks: with the scrape token.
    exported = exported_names(httpx.get(f"{stack.api_url}/metrics", headers=bearer(METRICS_TOKEN)).text)
    for port in stack.worker_metrics_ports.values():
        exported |= exported_names(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    asked = {name for query in dashboard_queries() for name in re.findall(r"\bchatbot_\w+", query)}

    assert asked - exported <= PENDING_METRICS, asked - exported
    assert asked & exported  # the names really come from the scrapes
