"""The embedded datastores are closed to other local users: Redis answers nothing without its
password (which is on no command line), and FerretDB, which has no authentication, has no TCP
port, only a Unix socket in an owner-only directory, with its data owner-only too."""

import stat
from pathlib import Path

import psutil
import pytest
import redis

from embedded.stack import EmbeddedStack


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_redis_refuses_a_command_without_the_password(stack: EmbeddedStack) -> None:
    port = stack.config.redis_port
    for password in (None, "not-the-password"):
        with pytest.raises(redis.AuthenticationError), redis.Redis(port=port, password=password) as client:
            client.ping()
    with redis.Redis.from_url(stack.redis_url) as client:
        assert client.ping()
    command_lines = [" ".join(psutil.Process(p.pid).cmdline()) for p in stack.processes.values()]
    assert [line for line in command_lines if stack.config.redis_password in line] == []
    assert mode(stack.config.data_dir / "redis") == 0o700


def test_ferretdb_has_no_tcp_port_only_a_socket_in_an_owner_only_directory(stack: EmbeddedStack, db) -> None:
    if stack.config.mongo_uri:
        pytest.skip("MONGO_URI names a MongoDB server: no embedded FerretDB")
    ferretdb = psutil.Process(stack.processes["ferretdb"].pid)

    listening = [c for c in ferretdb.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]

    assert listening == []
    assert stack.mongo_socket.is_socket()
    assert mode(stack.mongo_socket.parent) == 0o700
    assert mode(stack.config.data_dir / "ferretdb") == 0o700
    assert db.command("ping")["ok"] == 1  # reached through the socket
