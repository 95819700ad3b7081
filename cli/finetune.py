"""`chatbot finetune`: train a LoRA adapter on a stored dataset, register it, list adapters."""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cli.shared import connect, database_options
from mongo.adapters import list_adapters, register_adapter
from settings import get_settings

app = typer.Typer(
    help="LoRA fine-tuning: train an adapter on a stored dataset, register it, list adapters.",
    no_args_is_help=True,
    callback=database_options,
)


@app.command()
def run(
    dataset: Annotated[str, typer.Option(help="a dataset imported with `chatbot datasets import`")],
    name: Annotated[str, typer.Option(help="the adapter's name")],
    model: Annotated[str, typer.Option(help="registry model (transformers runtime)")] = "llama",
    steps: int = 30,
    batch_size: int = 4,
    learning_rate: float = 1e-3,
    lora_r: int = 8,
    out: Annotated[Path | None, typer.Option(help="default: data/adapters/<name>")] = None,
) -> None:
    """Train (resuming from the last checkpoint in the output directory), evaluate, save, register."""
    from finetune.trainer import FinetuneConfig, run_finetune  # torch: only when training

    connect()
    settings = get_settings()
    output_dir = out or settings.adapters_dir / name
    config = FinetuneConfig(dataset=dataset, output_dir=output_dir, model=model, steps=steps,
                            batch_size=batch_size, learning_rate=learning_rate, lora_r=lora_r)  # fmt: skip
    result = run_finetune(config, settings)
    register_adapter(name, model, dataset, result.adapter_dir, asdict(result))
    typer.echo(json.dumps(asdict(result), indent=2))
    typer.echo(f"serve it with transformers: MODEL__{model.upper()}__PARAMS__ADAPTER={result.adapter_dir}")
    if result.gguf_adapter:
        typer.echo(f"serve it with llama.cpp:    MODEL__<NAME>__PARAMS__LORA_PATH={result.gguf_adapter}")


@app.command(name="list")
def list_names() -> None:
    """The registered adapters with their eval loss before and after."""
    connect()
    for adapter in list_adapters():
        metrics = adapter.metrics
        typer.echo(
            f"{adapter.name}\t{adapter.base_model}\t{adapter.dataset}\t"
            f"eval loss {metrics.get('eval_loss_before', 0):.3f} -> {metrics.get('eval_loss_after', 0):.3f}\t{adapter.path}"
        )
