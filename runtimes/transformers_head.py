"""The transformers engine's output layer on the CPU in float16: the same logits at a fraction of the cost.

Gemma 3 270M's output layer (262,144 x 640, tied to the embeddings) is most of a float32 decode
step on the CPU and scales badly with rows (MKL's float32 product: 27 / 56 / 90 ms for 1 / 4 / 8
rows on this machine). fbgemm's float16 product (`quantized::linear_dynamic_fp16`: float16 weights
widened on the fly, float32 inputs, sums and outputs) takes 16 / 21 / 27 ms, gives each row the
same bits whatever the rows beside it (measured for 1 to 8 rows: what keeps greedy replies the same
batched and alone), and its logits differ from float32's by ~0.003. A bfloat16 product was tried
and left: as fast, but its logits come back rounded to bfloat16 (steps of 1/32 near 5, so near
ties become ties) and a row's logits differ by up to 0.03 between 1 and 8 rows (README: "Many
streams at once: the transformers engine").

The model itself is left as it is (its embedding float32, its own `lm_head` for training and
saving): the engine runs the model's decoder and applies this copy to the last position.
"""

import logging

import torch

log = logging.getLogger(__name__)

HEAD_DTYPES = ("auto", "float32", "float16")
# Largest difference from the model's own logits that the start-up check accepts: float16 weights
# move Gemma's logits by ~0.003; a model whose forward does more than `lm_head` (+ soft-capping)
# misses by far more.
TOLERANCE = 0.05


def head_dtype(choice: str, cuda: bool, model_dtype: torch.dtype, engines: list[str], capability: str) -> str:
    """The output layer's dtype for the registry's `lm_head_dtype` (`choice`): `float32` means the
    model's own layer. float16 only on the CPU, for a float32 model, with fbgemm's vector kernels
    (`engines`: torch's quantized engines; `capability`: torch's CPU capability); `auto` picks it
    wherever those hold."""
    if choice not in HEAD_DTYPES:
        raise ValueError(f"lm_head_dtype must be one of {', '.join(HEAD_DTYPES)}, not {choice!r}")
    possible = not cuda and model_dtype == torch.float32
    fast = "fbgemm" in engines and capability in ("AVX2", "AVX512")
    if choice == "float16" and possible and not fast:
        raise ValueError(f"lm_head_dtype float16 needs fbgemm with AVX2 on the CPU (this one: {capability})")
    if choice == "float32" or not possible:
        return "float32"
    return "float16" if fast else "float32"


def cpu_head_dtype(choice: str, cuda: bool, model_dtype: torch.dtype) -> str:
    """`head_dtype` on this machine."""
    engines = list(torch.backends.quantized.supported_engines)
    return head_dtype(choice, cuda, model_dtype, engines, torch.backends.cpu.get_cpu_capability())


class Float16Head:
    """A float16 copy of a causal LM's output layer, and the decoder it follows."""

    def __init__(self, model) -> None:
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._base = base
        self._layer = base.get_output_embeddings()
        self.decoder = base.get_decoder()
        weight = self._layer.weight.detach().float()
        bias = None if self._layer.bias is None else self._layer.bias.detach().float()
        self._packed = torch.ops.quantized.linear_prepack_fp16(weight, bias)
        self._softcap = getattr(base.config.get_text_config(), "final_logit_softcapping", None)

    def current(self) -> bool:
        """False once the model's output layer is another module (a LoRA adapter wrapped it): this
        copy would miss the adapter."""
        return self._base.get_output_embeddings() is self._layer

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits in float32 of `hidden` ([rows, hidden size], the decoder's last position)."""
        logits = torch.ops.quantized.linear_dynamic_fp16(hidden.float().contiguous(), self._packed)
        if self._softcap is not None:
            logits = torch.tanh(logits / self._softcap) * self._softcap
        return logits
