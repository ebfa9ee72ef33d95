"""Mutated HTTP/2 input against the real server: it must never crash, leak or stall.

Each connection sends a well-formed start (preface, SETTINGS, requests with bodies, an extended
CONNECT carrying a WebSocket frame, WINDOW_UPDATE, RST_STREAM, SETTINGS changes) with a few bytes
overwritten at random and sometimes cut short, then reads briefly and closes, half of the time
with a TCP reset. The seeds are fixed, so every run sends the same bytes; what may differ is only
how the server's answers interleave. The server passes when, afterwards, it still serves HTTP/2
and HTTP/1.1 on the same port and exits 0 on SIGTERM with no sanitizer report (the harness
checks the latter when the server stops).

Clients: raw sockets, with hpack for the header blocks. Only 127.0.0.1; every wait is bounded.
"""

import random
import socket
import struct
import threading
import time
import unittest

import casgi_harness as h

try:
    import hpack
except ImportError:  # python3-h2 brings it; scripts/deps.sh installs it
    hpack = None

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PATHS = ["/ok", "/echo", "/big/100000", "/slow-ms/50", "/trailers", "/push", "/early-hint",
         "/fail-after-start", "/partial", "/scope", "/ws/echo", "/read-body"]
SEEDS = (1, 2, 3, 4)
CONNECTIONS_PER_SEED = 60


def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def masked_text(text):
    mask = b"\x01\x02\x03\x04"
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(text))
    return bytes([0x81, 0x80 | len(text)]) + mask + body


def connection_bytes(rng):
    enc = hpack.Encoder()
    parts = [PREFACE, frame(4, 0, 0, b"")]
    for k in range(rng.randint(1, 6)):
        sid = 1 + 2 * k
        path = rng.choice(PATHS)
        if path == "/ws/echo":
            fields = [(":method", "CONNECT"), (":protocol", "websocket"), (":path", path),
                      (":scheme", "http"), (":authority", "x"), ("sec-websocket-version", "13")]
            parts.append(frame(1, 4, sid, enc.encode(fields)))
            parts.append(frame(0, 0, sid, masked_text(b"hello")))
        else:
            fields = [(":method", "POST"), (":path", path), (":scheme", "http"),
                      (":authority", "x"), ("cookie", "a=b"), ("cookie", "c=d")]
            parts.append(frame(1, 4, sid, enc.encode(fields)))
            parts.append(frame(0, 1, sid, b"x" * rng.randint(0, 3000)))
        if rng.random() < 0.3:
            parts.append(frame(3, 0, sid, struct.pack(">I", 8)))  # RST_STREAM CANCEL
        if rng.random() < 0.3:
            parts.append(frame(8, 0, sid, struct.pack(">I", rng.randint(0, 2**31 - 1))))
        if rng.random() < 0.2:  # SETTINGS_INITIAL_WINDOW_SIZE, sometimes out of range
            parts.append(frame(4, 0, 0, struct.pack(">HI", 4, rng.randint(0, 2**31))))
    data = bytearray(b"".join(parts))
    for _ in range(rng.randint(0, 8)):
        data[rng.randint(len(PREFACE), len(data) - 1)] = rng.randint(0, 255)
    if rng.random() < 0.2:
        data = data[:rng.randint(len(PREFACE), len(data))]
    return bytes(data)


def send_one(port, data, rng):
    try:
        with socket.create_connection((h.HOST, port), timeout=h.scaled(5)) as s:
            s.sendall(data)
            s.settimeout(0.2)
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:
                try:
                    if not s.recv(65536):
                        break
                except (socket.timeout, ConnectionError):
                    break
            if rng.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (ConnectionError, socket.timeout):
        pass  # the server may drop a connection whose bytes made no sense; that is its right


def h2_get_ok(port):
    enc, dec = hpack.Encoder(), hpack.Decoder()
    fields = [(":method", "GET"), (":path", "/ok"), (":scheme", "http"), (":authority", "x")]
    with socket.create_connection((h.HOST, port), timeout=h.IO_TIMEOUT) as s:
        s.sendall(PREFACE + frame(4, 0, 0, b"") + frame(1, 5, 1, enc.encode(fields)))
        buf, status, body = b"", None, b""
        deadline = time.monotonic() + h.IO_TIMEOUT
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 9:
                length = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7fffffff
                payload, buf = buf[9:9 + length], buf[9 + length:]
                if sid == 1 and kind == 1:
                    status = dict(dec.decode(payload)).get(":status")
                elif sid == 1 and kind == 0:
                    body += payload
                if sid == 1 and flags & 1:
                    return status, body
    return status, body


@unittest.skipIf(hpack is None, "python3-h2 (hpack) is not installed")
class Mutations(h.ServerTestCase):
    def test_mutated_h2_input_leaves_the_server_serving_and_clean(self):
        srv = self.start_server("--timeout-keep-alive", "2")
        threads = []
        for seed in SEEDS:
            def run(seed=seed):
                rng = random.Random(seed)
                for _ in range(CONNECTIONS_PER_SEED):
                    send_one(srv.port, connection_bytes(rng), rng)
            threads.append(threading.Thread(target=run))
        for t in threads:
            t.start()
        for t in threads:
            t.join(h.scaled(120))
            self.assertFalse(t.is_alive(), "a client thread did not finish")
        self.assertEqual(h2_get_ok(srv.port), ("200", b"ok"), srv.describe())
        resp = h.get(srv.port, "/ok")
        self.assertResponse(resp, 200, b"ok")
        srv.stop()


if __name__ == "__main__":
    unittest.main()
