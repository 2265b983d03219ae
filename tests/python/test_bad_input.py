"""Bad input on the wire: garbage bytes, oversize messages, a client vanishing mid-COPY,
too many connections. The server must survive and nothing half-written may appear."""

import socket
import struct
import time

import psycopg
import pytest


def raw_connect(server):
    s = socket.create_connection((server.host, server.port), timeout=5)
    return s


def startup_packet():
    params = b"user\0tester\0database\0streamhouse\0\0"
    body = struct.pack("!I", 196608) + params
    return struct.pack("!I", len(body) + 4) + body


def read_until_ready(s):
    data = b""
    deadline = time.time() + 5
    while b"Z\0\0\0\x05" not in data and time.time() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def assert_server_alive(server):
    with server.connect() as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def drain_until_closed(s):
    """Reads until the server closes the connection; True if it did within 5 s."""
    s.settimeout(5)
    closed = False
    try:
        while s.recv(4096):
            pass
        closed = True
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        pass
    s.close()
    return closed


def test_garbage_bytes_close_the_connection_not_the_server(server):
    s = raw_connect(server)
    s.sendall(b"\x16\x03\x01 this is not postgres at all \xff\xfe" * 10)
    assert drain_until_closed(s), "the server closes a connection that speaks garbage"
    assert_server_alive(server)


def test_garbage_after_startup(server):
    s = raw_connect(server)
    s.sendall(startup_packet())
    assert b"Z" in read_until_ready(s)
    s.sendall(b"\x00\x01\x02garbage" * 100)
    assert drain_until_closed(s), "the server closes a connection that speaks garbage"
    assert_server_alive(server)


def test_oversize_message_is_refused(server):
    s = raw_connect(server)
    s.sendall(startup_packet())
    read_until_ready(s)
    # A Query message claiming 2 GiB.
    s.sendall(b"Q" + struct.pack("!I", 0x7FFFFFF0) + b"SELECT 1")
    assert drain_until_closed(s), "an oversize message ends the connection instead of being buffered"
    assert_server_alive(server)


def test_client_vanishing_mid_copy_leaves_nothing(server):
    with server.connect() as c:
        c.execute("CREATE TABLE mc (id INT)")
    s = raw_connect(server)
    s.sendall(startup_packet())
    read_until_ready(s)
    q = b"COPY mc FROM STDIN\0"
    s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
    time.sleep(0.2)
    data = b"".join(f"{i}\n".encode() for i in range(1000))
    s.sendall(b"d" + struct.pack("!I", len(data) + 4) + data)
    s.close()  # vanish without CopyDone
    time.sleep(0.5)
    with server.connect() as c:
        assert c.execute("SELECT count(*) FROM mc").fetchone() == (0,)


def test_copy_fail_from_client_leaves_nothing(server):
    with server.connect() as c:
        c.execute("CREATE TABLE cf (id INT)")
        with pytest.raises(RuntimeError):
            with c.cursor().copy("COPY cf FROM STDIN") as copy:
                copy.write("1\n2\n")
                raise RuntimeError("client gives up")
        assert c.execute("SELECT count(*) FROM cf").fetchone() == (0,)


def test_connection_limit(tmp_path):
    from conftest import Server
    s = Server(tmp_path / "lim", ["--max-connections", "2"]).start()
    try:
        a = s.connect()
        b = s.connect()
        with pytest.raises(psycopg.OperationalError) as e:
            s.connect()
        assert "too many clients" in str(e.value)
        a.close()
        time.sleep(0.3)
        with s.connect() as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
        b.close()
    finally:
        s.stop(9)
