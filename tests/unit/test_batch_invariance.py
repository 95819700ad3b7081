"""The registry's say on weight repacking: auto (the runtime probes the CPU at load) unless it says true
or false (the probe on the real model: tests/test_batch_invariance.py)."""

import pytest

from runtimes.llama_cpp import repack_setting


def test_repack_is_auto_unless_the_registry_says_true_or_false() -> None:
    assert repack_setting({}) is None
    assert repack_setting({"repack": "auto"}) is None
    assert repack_setting({"repack": True}) is True
    assert repack_setting({"repack": False}) is False
    with pytest.raises(ValueError, match="true, false or auto"):
        repack_setting({"repack": "yes"})
