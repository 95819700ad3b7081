"""The model library: runtime protocol and runtimes, chat templates, verified weights, resident models."""
