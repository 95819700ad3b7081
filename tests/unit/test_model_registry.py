"""The registry file and its environment overrides."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from model_registry import load_registry
from settings import PROJECT_ROOT

REGISTRY = PROJECT_ROOT / "models.yaml"


def test_embedded_profile_serves_both_models_from_the_cpu_queue() -> None:
    models = load_registry(REGISTRY, "embedded", environ={})

    assert {name: spec.queue for name, spec in models.items()} == {"lumimaid": "cpu", "llama": "cpu"}


def test_production_profile_puts_each_model_on_its_own_gpu_queue() -> None:
    models = load_registry(REGISTRY, "production", environ={})

    assert (models["lumimaid"].device, models["lumimaid"].queue) == ("cuda:1", "cuda1")
    assert models["lumimaid"].params == {
        "n_gpu_layers": 50,
        "n_ctx": 2048,
        "n_batch": 512,
        "offload_kqv": True,
    }
    assert (models["llama"].runtime, models["llama"].queue) == ("transformers", "cuda0")


def test_environment_overrides_fields_and_params() -> None:
    environ = {"MODEL__LUMIMAID__DEVICE": "cuda:3", "MODEL__LUMIMAID__PARAMS__N_CTX": "4096"}

    spec = load_registry(REGISTRY, "embedded", environ=environ)["lumimaid"]

    assert (spec.device, spec.queue, spec.params["n_ctx"]) == ("cuda:3", "cuda3", 4096)


def test_a_bad_device_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="device"):
        load_registry(REGISTRY, "embedded", environ={"MODEL__LLAMA__DEVICE": "tpu"})


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="not in"):
        load_registry(REGISTRY, "staging", environ={})
