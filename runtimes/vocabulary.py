"""A model's vocabulary without its weights: a prompt's tokens counted as its runtime counts them,
so the API can refuse a prompt that cannot fit the context window before it is enqueued.

A GGUF (served by llama.cpp, or converted from it for transformers) is opened by llama.cpp with
`vocab_only`: its tokenizer and metadata, no tensors. A transformers model from the hub or a
directory is counted with its `tokenizer.json` through the `tokenizers` library (importing
transformers would load torch into the API). The prompt goes through the same chat template, markup
and text apart, as on the worker.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_registry import ModelSpec
from runtimes.chat_template import ChatTemplate
from runtimes.model_files import is_weights_file, verified_weights
from schemas.jobs import ChatMessage

log = logging.getLogger(__name__)

# What the runtimes use when the registry gives no n_ctx (llama-cpp-python's and our transformers').
DEFAULT_N_CTX = {"llama_cpp": 512, "transformers": 2048}


@dataclass(frozen=True)
class Vocabulary:
    n_ctx: int
    template: ChatTemplate
    encode: Callable[[str, bool], list[int]]  # (text, is_markup) -> token ids, without a BOS
    longest_token_bytes: int  # no token stands for more bytes of text than this
    decode: Callable[[list[int]], str]  # token ids (each below n_vocab) -> text, control tokens included
    n_vocab: int

    def prompt_tokens(self, messages: list[ChatMessage]) -> list[int]:
        return self.template.tokens(messages, self.encode)


def _gguf(spec: ModelSpec, n_ctx: int, cache_dir: Path) -> Vocabulary:
    from llama_cpp import Llama

    llm = Llama(model_path=str(verified_weights(spec, cache_dir)), vocab_only=True, verbose=False)

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    template = ChatTemplate.for_model(
        llm.metadata, spec.chat_format, bos_token=text(llm.token_bos()), eos_token=text(llm.token_eos())
    )
    return Vocabulary(
        n_ctx,
        template,
        lambda text, markup: llm.tokenize(text.encode("utf-8"), add_bos=False, special=markup),
        max(len(llm.detokenize([token])) for token in range(llm.n_vocab())),
        lambda tokens: llm.detokenize(tokens, special=True).decode("utf-8", errors="replace"),
        llm.n_vocab(),
    )


def _token_text(value: object) -> str:
    """A special token as tokenizer_config.json writes it: a string, or an AddedToken's dict."""
    return value.get("content", "") if isinstance(value, dict) else str(value or "")


def _tokenizer_files(weights: str) -> tuple[Path, Path]:
    """tokenizer.json and tokenizer_config.json of a local directory, else of a hub model (cached)."""
    if Path(weights).is_dir():
        return Path(weights) / "tokenizer.json", Path(weights) / "tokenizer_config.json"
    from huggingface_hub import hf_hub_download

    return (
        Path(hf_hub_download(weights, "tokenizer.json")),
        Path(hf_hub_download(weights, "tokenizer_config.json")),
    )


def _tokenizer_json(spec: ModelSpec, n_ctx: int, cache_dir: Path) -> Vocabulary:
    from tokenizers import Tokenizer

    tokenizer_file, config_file = _tokenizer_files(spec.weights)
    config = json.loads(config_file.read_text(encoding="utf-8"))
    markup = Tokenizer.from_file(str(tokenizer_file))
    plain = Tokenizer.from_file(str(tokenizer_file))
    plain.encode_special_tokens = True  # typed control tokens stay text, as on the worker
    template = ChatTemplate.for_model(
        {"tokenizer.chat_template": config.get("chat_template") or ""},
        spec.chat_format,
        bos_token=_token_text(config.get("bos_token")),
        eos_token=_token_text(config.get("eos_token")),
    )
    # A token's written form is never shorter than the text it stands for (byte-level and
    # SentencePiece vocabularies spell a space in 2-3 bytes): a safe, slightly loose bound.
    longest = max(len((markup.id_to_token(i) or "").encode()) for i in range(markup.get_vocab_size()))
    return Vocabulary(
        n_ctx,
        template,
        lambda text, is_markup: (markup if is_markup else plain).encode(text, add_special_tokens=False).ids,
        longest,
        lambda tokens: markup.decode(tokens, skip_special_tokens=False),
        markup.get_vocab_size(),
    )


def load_vocabulary(spec: ModelSpec, cache_dir: Path) -> Vocabulary | None:
    """The model's vocabulary, or None when there is none to count with (a synthetic runtime, an
    n_ctx taken from the model file, a load that failed): the worker still refuses a long prompt."""
    n_ctx = int(spec.params.get("n_ctx", DEFAULT_N_CTX.get(spec.runtime, 0)))
    if spec.runtime not in DEFAULT_N_CTX or n_ctx <= 0:
        return None
    loader = _gguf if is_weights_file(spec) else _tokenizer_json
    try:
        vocabulary = loader(spec, n_ctx, cache_dir)
    except Exception:
        log.exception("model %s: no vocabulary, prompts are counted by the worker alone", spec.name)
        return None
    log.info(
        "model %s: vocabulary loaded (longest token %d bytes)", spec.name, vocabulary.longest_token_bytes
    )
    return vocabulary
