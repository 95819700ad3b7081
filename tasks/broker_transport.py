"""kombu's Redis transport, kept usable by the messages of a connection Celery has given up on, so
a worker outlives a Redis restart (`broker_transport` in celeryconfig.py).

When the broker connection drops, Celery collects it, which detaches its transport from it
(`transport.client = None`), then reconnects with a new one. The jobs still running were
delivered on the old channel (acked late): closing that channel gives their messages back, and
each one acks through it when its job ends. Both ask the old transport for the broker's address
(kombu's `_connparams` reads `transport.client.hostname`), get `AttributeError`, which is not a
connection error, and the worker process exits (Celery's "Unrecoverable error" or "Error on
stopping Hub"): its models are loaded again by a new one and the queue has no worker meanwhile.

No setting avoids it (`worker_cancel_long_running_tasks_on_connection_loss` still closes the
channel, and would stop the jobs), so this is code: the transport keeps the connection it was made
for. A Redis ack is a command like any other, so a job that ends after Redis is back acks over a
new connection and leaves nothing to be delivered again; while Redis is away, the close and the ack
fail with connection errors, which Celery ignores (the message then stays in kombu's unacked set;
a job that ended is not run again: workers/chat_job.py).
"""

from kombu.transport import redis


class Transport(redis.Transport):
    @property
    def client(self):
        return self._client

    @client.setter
    def client(self, value) -> None:
        # kombu clears it to break a reference cycle when the connection closes; the old channel's
        # messages still need the address, and the cycle is collected once they are gone.
        if value is not None:
            self._client = value
