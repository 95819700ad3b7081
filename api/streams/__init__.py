"""A chat job from start to end: enqueue, backpressure, worker liveness, event hub, relay, job log and status."""
