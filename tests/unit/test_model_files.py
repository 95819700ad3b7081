"""Weights are checked against the registry's SHA-256 before any model is loaded."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_registry import ModelSpec, get_registry
from runtimes.model_files import ModelFileError, verified_weights
from settings import PROJECT_ROOT


def spec_for(path: Path, sha256: str) -> ModelSpec:
    return ModelSpec(name="tiny", runtime="llama_cpp", weights=str(path), sha256=sha256)


def test_weights_matching_the_registry_digest_are_accepted(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF and some tensors")

    accepted = verified_weights(spec_for(weights, hashlib.sha256(weights.read_bytes()).hexdigest()), tmp_path)

    assert accepted == weights


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF and some tensors")
    expected = hashlib.sha256(b"GGUF and other tensors").hexdigest()

    with pytest.raises(ModelFileError, match="refusing to load"):
        verified_weights(spec_for(weights, expected), tmp_path)


def test_a_missing_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        verified_weights(spec_for(tmp_path / "absent.gguf", "0" * 64), tmp_path)


def test_embedded_default_assembles_the_real_gemma_gguf(tmp_path: Path) -> None:
    spec = get_registry()["lumimaid"]

    path = verified_weights(spec, tmp_path)

    assert path.read_bytes()[:4] == b"GGUF"


def test_worker_with_a_bad_digest_refuses_to_start_with_a_clear_message() -> None:
    env = {**os.environ, "MODEL__LUMIMAID__SHA256": "0" * 64, "REDIS_URL": "redis://127.0.0.1:1/0"}

    result = subprocess.run(
        [sys.executable, "-m", "workers", "--queue", "cpu"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 3
    assert "refusing to start" in result.stderr
    assert "lumimaid" in result.stderr
