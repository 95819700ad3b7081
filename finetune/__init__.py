"""LoRA fine-tuning of a registry model on a stored QA dataset, and its export to a GGUF LoRA."""
