"""The GGUF LoRA converter is llama.cpp code run on the training worker: it is taken only from the
llama-cpp-python sdist whose SHA-256 is pinned, never from whatever the index serves."""

from importlib.metadata import version
from pathlib import Path

import pytest

from finetune import gguf_lora
from finetune.gguf_lora import GgufConversionError, converter_dir


def test_an_sdist_that_is_not_the_pinned_one_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(gguf_lora.SDIST_SHA256, version("llama-cpp-python"), "0" * 64)

    with pytest.raises(GgufConversionError, match="Expected sha256"):
        converter_dir(tmp_path)

    assert not any(tmp_path.iterdir())  # nothing of it was extracted


def test_a_version_without_a_pinned_digest_is_refused_before_any_download(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delitem(gguf_lora.SDIST_SHA256, version("llama-cpp-python"))

    with pytest.raises(GgufConversionError, match="no pinned sdist SHA-256"):
        converter_dir(tmp_path)
