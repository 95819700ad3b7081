"""The fine-tuning task, on the training queue: a thin shell around finetune.runs."""

from schemas.finetune import FINETUNE_TASK, FinetuneRequest
from settings import get_settings
from tasks.app import app


@app.task(name=FINETUNE_TASK)
def finetune(run_id: str, request: dict) -> None:
    from finetune.runs import execute_run  # torch and transformers load only on the training worker

    execute_run(run_id, FinetuneRequest.model_validate(request), get_settings())
