"""PEFT LoRA fine-tuning of a registry model (transformers runtime) on a stored QA dataset.

Hugging Face's Trainer gives the progress bar (steps, loss, eta), periodic checkpoints and resuming
from the last one; the loss is measured on the eval split before and after training.
"""

import json
import logging
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from peft import LoraConfig
from transformers import Trainer, TrainingArguments
from transformers.trainer_utils import get_last_checkpoint

from finetune.examples import ChatExamples, collate
from finetune.gguf_lora import convert_adapter
from model_registry import ModelSpec, get_registry
from mongo import datasets as dataset_store
from runtimes.model_files import is_weights_file, verified_weights
from runtimes.transformers import TransformersRuntime
from settings import Settings

log = logging.getLogger(__name__)


@dataclass
class FinetuneConfig:
    dataset: str
    output_dir: Path
    model: str = "llama"
    steps: int = 30
    batch_size: int = 4
    learning_rate: float = 1e-3
    lora_r: int = 8
    lora_alpha: int = 16
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    max_tokens: int = 256
    seed: int = 0


@dataclass
class FinetuneResult:
    adapter_dir: str
    gguf_adapter: str | None
    base_model: str
    dataset: str
    steps: int
    train_loss_first: float
    train_loss_last: float
    eval_loss_before: float
    eval_loss_after: float


def base_runtime(spec: ModelSpec, settings: Settings) -> TransformersRuntime:
    if spec.runtime != "transformers":
        raise ValueError(
            f"model {spec.name!r} runs on {spec.runtime}; LoRA training needs the transformers runtime"
        )
    base = spec.model_copy(update={"params": {k: v for k, v in spec.params.items() if k != "adapter"}})
    weights = verified_weights(base, settings.model_cache_dir) if is_weights_file(base) else None
    return TransformersRuntime(base, weights, settings.model_cache_dir)


def _examples(runtime: TransformersRuntime, dataset: str, split: str, max_tokens: int) -> ChatExamples:
    rows = dataset_store.dataset_rows(dataset, split)
    if not rows:
        raise ValueError(f"dataset {dataset!r} has no {split} rows (import it, then split it)")
    return ChatExamples(rows, runtime.prompt_tokens, runtime.text_tokens, runtime.end_of_turn, max_tokens)


def run_finetune(config: FinetuneConfig, settings: Settings, callbacks: list | None = None) -> FinetuneResult:
    spec = get_registry()[config.model]
    runtime = base_runtime(spec, settings)
    train = _examples(runtime, config.dataset, "train", config.max_tokens)
    evaluation = _examples(runtime, config.dataset, "eval", config.max_tokens)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, target_modules=config.target_modules,
                      lora_dropout=0.0, task_type="CAUSAL_LM")  # fmt: skip
    model = runtime.lora_model(lora)
    checkpoints = config.output_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(checkpoints),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant",
        logging_steps=1,
        save_steps=max(1, config.steps // 3),
        save_total_limit=2,
        report_to=[],
        seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation, callbacks=callbacks,
                      data_collator=partial(collate, pad_id=runtime.pad_token_id or 0))  # fmt: skip
    before = trainer.evaluate()["eval_loss"]
    resume = get_last_checkpoint(str(checkpoints)) if checkpoints.exists() else None
    if resume:
        log.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    after = trainer.evaluate()["eval_loss"]
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]

    adapter_dir = config.output_dir / "adapter"
    model.save_pretrained(str(adapter_dir))
    gguf = None
    if runtime.gguf_base_dir is not None:  # the base came from a GGUF: llama.cpp can serve the adapter too
        gguf = str(
            convert_adapter(adapter_dir, runtime.gguf_base_dir, settings.model_cache_dir.parent / "cache")
        )
    result = FinetuneResult(
        adapter_dir=str(adapter_dir.resolve()),
        gguf_adapter=gguf,
        base_model=config.model,
        dataset=config.dataset,
        steps=config.steps,
        train_loss_first=losses[0] if losses else float("nan"),
        train_loss_last=losses[-1] if losses else float("nan"),
        eval_loss_before=before,
        eval_loss_after=after,
    )
    (adapter_dir / "metrics.json").write_text(json.dumps(asdict(result), indent=2))
    return result
