"""What a chat request becomes: the messages, sampling and chat job, next turns, batch items, grounding."""
