"""Which output layer the transformers engine uses: the registry's `lm_head_dtype` against the device,
the model's dtype and the CPU (the float16 head itself, on the real model: tests/test_transformers_runtime.py)."""

import pytest
import torch

from runtimes.transformers_head import head_dtype

X86 = ["qnnpack", "onednn", "x86", "fbgemm"]


def test_auto_is_float16_on_a_cpu_with_fbgemm_vector_kernels_for_a_float32_model() -> None:
    assert head_dtype("auto", False, torch.float32, X86, "AVX512") == "float16"
    assert head_dtype("auto", False, torch.float32, X86, "AVX2") == "float16"


def test_auto_keeps_the_models_own_layer_elsewhere() -> None:
    assert head_dtype("auto", False, torch.float32, X86, "DEFAULT") == "float32"  # x86 without AVX2
    assert head_dtype("auto", False, torch.float32, ["qnnpack"], "SVE256") == "float32"  # Arm
    assert head_dtype("auto", True, torch.float32, X86, "AVX512") == "float32"  # CUDA
    assert head_dtype("auto", False, torch.bfloat16, X86, "AVX512") == "float32"  # not a float32 model


def test_the_registry_can_say_float32_or_float16() -> None:
    assert head_dtype("float32", False, torch.float32, X86, "AVX512") == "float32"
    assert head_dtype("float16", False, torch.float32, X86, "AVX2") == "float16"
    assert head_dtype("float16", True, torch.float16, X86, "AVX512") == "float32"  # CUDA: the model's own


def test_float16_where_the_cpu_cannot_or_an_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="needs fbgemm"):
        head_dtype("float16", False, torch.float32, ["qnnpack"], "DEFAULT")
    with pytest.raises(ValueError, match="auto, float32, float16"):
        head_dtype("bfloat16", False, torch.float32, X86, "AVX512")
