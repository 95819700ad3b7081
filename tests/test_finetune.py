"""A LoRA run of a few steps on the Korean sample, on the CPU, with the real Gemma model."""

import pytest

from finetune.trainer import FinetuneConfig, FinetuneResult, base_runtime, run_finetune
from model_registry import get_registry
from mongo.connection import connect_mongo
from qa_datasets import service
from qa_datasets.rows import ColumnMapping, read_rows
from runtimes.llama_cpp import LlamaCppRuntime
from runtimes.model_files import verified_weights
from runtimes.transformers import TransformersRuntime
from schemas.jobs import ChatMessage, SamplingParams
from settings import get_settings
from tests.support.samples import SAMPLE
from tests.support.waiting import wait_until

PROMPT = [ChatMessage(role="user", content="은하시의 시장은 누구인가요?")]


@pytest.fixture(scope="module")
def trained(stack, tmp_path_factory: pytest.TempPathFactory) -> FinetuneResult:
    connect_mongo(stack.mongo_uri, stack.config.extra_env["MONGO_DB"])
    rows = read_rows(SAMPLE.read_bytes(), "jsonl")
    assert len(rows) == 26
    service.import_dataset(
        "lora_sample", SAMPLE.read_bytes(), "jsonl", ColumnMapping(), 4000, eval_fraction=0.2
    )
    config = FinetuneConfig(
        dataset="lora_sample", output_dir=tmp_path_factory.mktemp("lora"), steps=12, learning_rate=2e-3
    )
    return run_finetune(config, get_settings())


def greedy_text(runtime: TransformersRuntime | LlamaCppRuntime) -> str:
    pieces: list[str] = []
    runtime.generate(PROMPT, SamplingParams(max_tokens=16, temperature=0), lambda t: pieces.append(t) or True)
    return "".join(pieces)


def test_training_lowers_the_loss(trained: FinetuneResult) -> None:
    assert trained.train_loss_last < trained.train_loss_first
    assert trained.eval_loss_after < trained.eval_loss_before


def test_the_saved_adapter_loads_and_changes_the_greedy_answer(trained: FinetuneResult) -> None:
    settings = get_settings()
    spec = get_registry()["llama"]
    adapted_spec = spec.model_copy(update={"params": {**spec.params, "adapter": trained.adapter_dir}})

    base = greedy_text(base_runtime(spec, settings))
    adapted = greedy_text(
        TransformersRuntime(
            adapted_spec, verified_weights(spec, settings.model_cache_dir), settings.model_cache_dir
        )
    )

    assert adapted != base


def test_the_adapter_is_exported_as_a_gguf_lora_that_llama_cpp_serves(trained: FinetuneResult) -> None:
    settings = get_settings()
    spec = get_registry()["lumimaid"]
    adapted_spec = spec.model_copy(update={"params": {**spec.params, "lora_path": trained.gguf_adapter}})
    weights = verified_weights(spec, settings.model_cache_dir)

    base = greedy_text(LlamaCppRuntime(spec, weights))
    adapted = greedy_text(LlamaCppRuntime(adapted_spec, weights))

    assert trained.gguf_adapter.endswith("adapter.gguf")
    assert adapted != base


def test_api_runs_a_finetune_on_the_training_queue_and_registers_the_adapter(api, admin_headers) -> None:
    api.post("/datasets/queue_sample?eval_fraction=0.2", content=SAMPLE.read_bytes(), headers=admin_headers)
    body = {"dataset": "queue_sample", "name": "queue-lora", "steps": 3, "learning_rate": 0.002}

    started = api.post("/finetune", json=body, headers=admin_headers)
    run_id = started.json()["run_id"]
    status = wait_until(
        lambda: api.get(f"/finetune/{run_id}", headers=admin_headers).json(),
        lambda status: status.get("state") in ("done", "error"),
        what=f"fine-tune run {run_id} to end",
        timeout_s=300,
        every_s=1,
    )
    adapters = api.get("/adapters", headers=admin_headers).json()["adapters"]

    assert started.status_code == 202
    assert status["state"] == "done", status
    assert status["step"] == status["total_steps"] == 3
    assert status["result"]["eval_loss_after"] < status["result"]["eval_loss_before"]
    assert any(a["name"] == "queue-lora" and a["dataset"] == "queue_sample" for a in adapters)


def test_finetune_of_an_unknown_dataset_is_404(api, admin_headers) -> None:
    response = api.post("/finetune", json={"dataset": "nope", "name": "x"}, headers=admin_headers)

    assert response.status_code == 404


def test_a_rerun_resumes_from_the_last_checkpoint(trained: FinetuneResult, tmp_path) -> None:
    from transformers import TrainerCallback

    class StepsSeen(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs) -> None:
            self.steps.append(state.global_step)

    first, second = StepsSeen(), StepsSeen()
    config = FinetuneConfig(dataset="lora_sample", output_dir=tmp_path, steps=2, learning_rate=2e-3)
    run_finetune(config, get_settings(), callbacks=[first])
    config.steps = 4
    run_finetune(config, get_settings(), callbacks=[second])

    assert first.steps == [1, 2]
    assert second.steps == [3, 4]
