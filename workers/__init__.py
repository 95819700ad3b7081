"""The worker process: Celery entry, chat and batch jobs, event publisher, heartbeat, metrics, state."""
