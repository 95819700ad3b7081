"""The OpenAI-compatible chat API: requests into chat jobs, events into completions, OpenAI-shaped errors."""
