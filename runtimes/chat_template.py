"""Render chat messages into prompt segments that keep template markup apart from message text.

The template (from the GGUF metadata when it has one, else a configured format) is rendered with a
sentinel in place of each message's content; splitting on the sentinels gives the markup, which is
tokenized with special tokens on, and the contents, which are tokenized as plain text. So a user who
types `<end_of_turn>` or `<|eot_id|>` gets those characters, never the control token.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.jobs import ChatMessage

# System text has no role of its own in Gemma: it opens the first user turn.
GEMMA = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message.role == 'system' %}<start_of_turn>user\n{{ message.content }}<end_of_turn>\n"
    "{% elif message.role == 'user' %}<start_of_turn>user\n{{ message.content }}<end_of_turn>\n"
    "{% else %}<start_of_turn>model\n{{ message.content }}<end_of_turn>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n{{ message.content }}<|eot_id|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

CHATML = (
    "{% for message in messages %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CHAT_FORMATS = {"gemma": GEMMA, "llama3": LLAMA3, "chatml": CHATML}

_SENTINEL = "\ue000{}\ue001"
_SENTINEL_SPLIT = re.compile("\ue000(\\d+)\ue001")
_SENTINEL_CHARS = str.maketrans({"\ue000": "\ufffd", "\ue001": "\ufffd"})


@dataclass(frozen=True)
class Segment:
    text: str
    is_markup: bool


class ChatTemplate:
    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_template_error
        self._template = env.from_string(source)
        self._bos_token = bos_token
        self._eos_token = eos_token

    @classmethod
    def for_model(
        cls, metadata: dict[str, str], chat_format: str, bos_token: str, eos_token: str
    ) -> "ChatTemplate":
        """The GGUF's own template when it has one, else the configured format."""
        source = metadata.get("tokenizer.chat_template")
        if not source:
            if chat_format not in CHAT_FORMATS:
                raise ValueError(f"unknown chat_format {chat_format!r}; known: {', '.join(CHAT_FORMATS)}")
            source = CHAT_FORMATS[chat_format]
        return cls(source, bos_token, eos_token)

    def segments(self, messages: list[ChatMessage], add_generation_prompt: bool = True) -> list[Segment]:
        """A last message marked `prefill` is left open: no turn opened after it, its end markup cut.
        A `raw` message (a text completion's prompt) is the whole prompt, after the BOS (unless it
        starts with it), read as markup: its writer chose its control tokens."""
        if messages and messages[0].raw:
            text = messages[0].content
            bos = "" if text.startswith(self._bos_token) else self._bos_token
            return [Segment(bos + text, is_markup=True)] if bos + text else []
        continuing = bool(messages) and messages[-1].prefill
        contents = [message.content.translate(_SENTINEL_CHARS) for message in messages]
        rendered = self._template.render(
            messages=[
                {"role": message.role, "content": _SENTINEL.format(i)} for i, message in enumerate(messages)
            ],
            add_generation_prompt=add_generation_prompt and not continuing,
            bos_token=self._bos_token,
            eos_token=self._eos_token,
        )
        segments: list[Segment] = []
        for position, part in enumerate(_SENTINEL_SPLIT.split(rendered)):
            if position % 2 == 1:
                segments.append(Segment(contents[int(part)], is_markup=False))
            elif part:
                segments.append(Segment(part, is_markup=True))
        while continuing and segments and segments[-1].is_markup:
            segments.pop()
        return segments

    def tokens(self, messages: list[ChatMessage], encode: Callable[[str, bool], list[int]]) -> list[int]:
        """The prompt's token ids: each segment through `encode(text, is_markup)`."""
        tokens: list[int] = []
        for segment in self.segments(messages):
            tokens += encode(segment.text, segment.is_markup)
        return tokens


def _raise_template_error(message: str) -> None:
    raise ValueError(f"chat template: {message}")
