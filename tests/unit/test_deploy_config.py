"""docker-compose.yml and the Dockerfile cannot run here; they are read as what they declare."""

import re

import yaml

from settings import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()


def test_every_image_is_pinned_to_a_version() -> None:
    images = [service["image"] for service in SERVICES.values()]
    images += re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.MULTILINE)

    for image in images:
        assert re.search(r":v?\d+(\.\d+)+", image), f"{image} is not pinned to a version"


def test_redis_needs_its_password_and_the_app_uses_it() -> None:
    assert "--requirepass" in SERVICES["redis"]["command"]
    assert SERVICES["api"]["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD")


def test_the_app_connects_to_mongodb_as_its_own_user_not_root() -> None:
    uri = SERVICES["api"]["environment"]["MONGO_URI"]
    mounts = SERVICES["mongo"]["volumes"]
    init_script = (PROJECT_ROOT / "deploy" / "mongo-init" / "create-app-user.js").read_text()

    assert "MONGO_APP_USER" in uri and "MONGO_ADMIN" not in uri
    assert "./deploy/mongo-init:/docker-entrypoint-initdb.d:ro" in mounts
    assert 'role: "readWrite", db: database' in init_script


def test_flower_needs_a_password_and_listens_on_loopback_only() -> None:
    flower = SERVICES["flower"]

    assert "FLOWER_BASIC_AUTH" in flower["environment"]
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])


def test_the_image_runs_as_a_non_root_user_on_a_cuda_runtime_base() -> None:
    final_stage = DOCKERFILE.split("\nFROM ")[-1]

    assert final_stage.startswith("nvidia/cuda:") and "-runtime-" in final_stage.splitlines()[0]
    assert re.search(r"^USER (?!root)\w+", final_stage, flags=re.MULTILINE)
    assert "--no-proxy-headers" in final_stage
