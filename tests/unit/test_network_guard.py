"""The conftest guard: tests cannot reach the network, loopback still works."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import NetworkAccessError


def test_non_loopback_connection_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        with pytest.raises(NetworkAccessError):
            s.connect(("93.184.216.34", 80))


def test_name_resolution_is_refused():
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("example.org", 443)


def test_loopback_connection_works():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(server.accept()[0]))
    t.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        t.join(5)
    assert accepted
    accepted[0].close()
    server.close()
