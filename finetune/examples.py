"""Turn QA rows into training examples in the model's own chat format, loss on the answer only."""

from collections.abc import Callable

import torch
from torch.utils.data import Dataset

from schemas.datasets import QARow
from schemas.jobs import ChatMessage

IGNORE = -100  # label id the loss skips


class ChatExamples(Dataset):
    """Each row: the prompt of a `user: instruction` turn as the model sees it when asked (template
    markup as special tokens, the text as plain text), then the output and the end-of-turn token;
    the loss is taken on the output and the end of turn only."""

    def __init__(
        self,
        rows: list[QARow],
        prompt_tokens: Callable[[list[ChatMessage]], list[int]],
        text_tokens: Callable[[str], list[int]],
        end_of_turn: int,
        max_tokens: int,
    ) -> None:
        self.items: list[dict[str, list[int]]] = []
        for qa in rows:
            prompt = prompt_tokens([ChatMessage(role="user", content=qa.instruction)])
            answer = text_tokens(qa.output) + [end_of_turn]
            ids = (prompt + answer)[:max_tokens]
            labels = ([IGNORE] * len(prompt) + answer)[:max_tokens]
            self.items.append({"input_ids": ids, "labels": labels})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.items[index]


def collate(batch: list[dict[str, list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(item["input_ids"]) for item in batch)
    ids = [item["input_ids"] + [pad_id] * (width - len(item["input_ids"])) for item in batch]
    labels = [item["labels"] + [IGNORE] * (width - len(item["labels"])) for item in batch]
    mask = [[1] * len(item["input_ids"]) + [0] * (width - len(item["input_ids"])) for item in batch]
    return {
        "input_ids": torch.tensor(ids),
        "labels": torch.tensor(labels),
        "attention_mask": torch.tensor(mask),
    }
