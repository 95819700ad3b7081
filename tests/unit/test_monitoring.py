"""The operator's view, from the files alone: the Prometheus config is valid and scrapes what
docker-compose runs, and the Grafana dashboard has the operators' panels (that it asks only for metrics
the services export: tests/test_monitoring.py)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from settings import PROJECT_ROOT

MONITORING = PROJECT_ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "chatbot.json"
SECRET_FILE = "/run/secrets/metrics_token"


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
