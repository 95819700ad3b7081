"""Prompt assembly for characters (API side) and fitting a prompt into the context window (worker side)."""
