"""A refused upload (bad token, bad parameter) is answered after its bounded body has arrived,
so that clients which write the body after the headers (node, Postman) read the answer instead
of a connection reset."""

from __future__ import annotations

import socket

import pytest

from tests.live import TOKEN, LiveServer, make_settings, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> LiveServer:
    live = start_server(make_settings(data_dir=str(tmp_path_factory.mktemp("var"))))
    yield live
    live.stop()


def request_head(path: str, token: str | None, length: int) -> bytes:
    auth = f"Authorization: {token}\r\n" if token else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {length}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("path", "token", "status", "code"),
    [
        ("/upload", None, 401, "missing_token"),
        ("/upload", "wrong-token-000000", 403, "invalid_token"),
        ("/upload?images=bogus", TOKEN, 400, "bad_parameter"),
        ("/uploads?max_yaw=-1", TOKEN, 400, "bad_parameter"),
    ],
)
def test_refusal_waits_for_the_body(server, path, token, status, code):
    body = b"--b\r\n" + b"x" * 200_000 + b"\r\n--b--\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_head(path, token, len(body)))
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing yet: the server reads the body first
        sock.settimeout(10)
        sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].startswith(f"HTTP/1.1 {status} ".encode())
    assert f'"code": "{code}"'.encode() in payload or f'"code":"{code}"'.encode() in payload
