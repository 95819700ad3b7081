"""A fine-tuning run as the training worker executes it: progress written to MongoDB as it trains,
the adapter registered when it is done, the error kept when it fails."""

import logging
from dataclasses import asdict

from transformers import TrainerCallback

from finetune.claim import claimed
from finetune.trainer import FinetuneConfig, run_finetune
from mongo.adapters import register_adapter
from mongo.finetune_runs import update_run
from schemas.finetune import FinetuneRequest
from settings import Settings

log = logging.getLogger(__name__)


class RecordProgress(TrainerCallback):
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def on_log(self, args, state, control, logs=None, **kwargs) -> None:
        if logs and "loss" in logs:
            update_run(
                self.run_id, step=state.global_step, total_steps=state.max_steps, loss=float(logs["loss"])
            )


def execute_run(run_id: str, request: FinetuneRequest, settings: Settings) -> None:
    """Train the run unless it has ended or another worker is training it (a redelivered job)."""
    with claimed(run_id, settings.finetune_claim_ttl_s) as ours:
        if ours:
            _train(run_id, request, settings)


def _train(run_id: str, request: FinetuneRequest, settings: Settings) -> None:
    config = FinetuneConfig(
        dataset=request.dataset,
        output_dir=settings.adapters_dir / request.name,
        model=request.model,
        steps=request.steps,
        batch_size=request.batch_size,
        learning_rate=request.learning_rate,
        lora_r=request.lora_r,
    )
    try:
        result = run_finetune(config, settings, callbacks=[RecordProgress(run_id)])
    except Exception as exc:
        log.exception("fine-tuning run %s failed", run_id)
        update_run(run_id, state="error", error=str(exc))
        return
    register_adapter(request.name, request.model, request.dataset, result.adapter_dir, asdict(result))
    update_run(run_id, state="done", result=asdict(result))
