#!/usr/bin/python3
"""Server memory per idle WebSocket.

    ws_idle.py PORT PID [CONNECTIONS] [--deflate] [--path PATH] [--size BYTES]

Opens CONNECTIONS (default 10,000) WebSockets to ws://127.0.0.1:PORT/PATH (the server must echo
binary messages, like apps/ws_echo.so), and on each, once the handshake is done, sends one
binary message of BYTES (default 128) and reads its echo, so every connection has carried a
message both ways and is now idle. With --deflate the handshake offers permessage-deflate
(`Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits`); where the server
accepts it the message goes out compressed and the echo may come back compressed, so both of the
server's zlib streams have been used. Prints one line of tab-separated fields:

    rss_before_kib  rss_after_kib  connections_open  bytes_per_connection  deflate_accepted

where RSS is the sum of VmRSS over PID and its descendants (bench/idle.py), read after a warm-up
(20 WebSockets opened, used and closed the same way) and again once all connections are idle;
deflate_accepted counts the connections on which the server agreed to permessage-deflate.
Connections the server closed before the second reading are not counted. Pings from the server
are answered while the connections are open. At the end every connection is closed with a close
frame (1000). Needs a file-descriptor limit above CONNECTIONS (raised to the hard limit here).
"""

import argparse
import base64
import hashlib
import os
import resource
import selectors
import socket
import struct
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idle import rss_kib  # noqa: E402  (the same RSS reading as the keep-alive figure)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WINDOW = 256  # connections in their handshake or first echo at a time
OPEN_TIMEOUT = 180  # seconds for all CONNECTIONS to be open and echoed

HANDSHAKE, ECHO, IDLE, CLOSED = range(4)


def mask(payload):
    key = os.urandom(4)
    n = len(payload)
    k = int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return key + (int.from_bytes(payload, "big") ^ k).to_bytes(n, "big") if n else key


def frame(opcode, payload, rsv1=False):
    b0 = 0x80 | opcode | (0x40 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return head + mask(payload)


def parse_frame(buf):
    """(fin, rsv1, opcode, payload, bytes used) of the first whole frame in buf, or None."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, off = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, off = struct.unpack_from("!Q", buf, 2)[0], 10
    if b1 & 0x80:  # a server must not mask; take the key anyway
        off += 4
    if len(buf) < off + n:
        return None
    payload = bytes(buf[off:off + n])
    if b1 & 0x80:
        payload = bytes(b ^ buf[off - 4 + i % 4] for i, b in enumerate(payload))
    return bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload, off + n


class Conn:
    __slots__ = ("sock", "state", "buf", "accept", "deflate", "client_bits", "parts")

    def __init__(self, sock, accept):
        self.sock = sock
        self.state = HANDSHAKE
        self.buf = bytearray()
        self.accept = accept
        self.deflate = False
        self.client_bits = 15
        self.parts = []


class Client:
    def __init__(self, port, path, deflate, message):
        self.port = port
        self.path = path
        self.offer = deflate
        self.message = message
        self.sel = selectors.DefaultSelector()
        self.conns = []
        self.busy = 0  # connections in HANDSHAKE or ECHO
        self.failed = 0
        self.failures = []
        self.compressed = {}  # window bits -> the message compressed for them

    def open_one(self):
        key = base64.b64encode(os.urandom(16))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        request = (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n")
        if self.offer:
            request += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        sock.sendall((request + "\r\n").encode())
        sock.setblocking(False)
        c = Conn(sock, accept)
        self.sel.register(sock, selectors.EVENT_READ, c)
        self.conns.append(c)
        self.busy += 1
        return c

    def fail(self, c, why):
        if c.state != CLOSED:
            self.failed += 1
            if len(self.failures) < 5:
                self.failures.append(why)
        self.drop(c)

    def drop(self, c):
        if c.state in (HANDSHAKE, ECHO):
            self.busy -= 1
        c.state = CLOSED
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()

    def send(self, c, data):
        try:
            c.sock.sendall(data)  # small frames: the socket buffer takes them whole
        except OSError as e:
            self.fail(c, f"send: {e}")

    def send_message(self, c):
        if c.deflate:
            bits = max(c.client_bits, 9)  # zlib's raw deflate has no 8-bit window
            if bits not in self.compressed:
                z = zlib.compressobj(6, zlib.DEFLATED, -bits)
                data = z.compress(self.message) + z.flush(zlib.Z_SYNC_FLUSH)
                self.compressed[bits] = data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data
            self.send(c, frame(0x2, self.compressed[bits], rsv1=True))
        else:
            self.send(c, frame(0x2, self.message))

    def on_handshake(self, c):
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(c.buf) > 16384:
                self.fail(c, "handshake response too long")
            return
        head = c.buf[:end].decode("latin-1").split("\r\n")
        del c.buf[:end + 4]
        if not head[0].startswith("HTTP/1.1 101"):
            self.fail(c, f"handshake answered {head[0]!r}")
            return
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("sec-websocket-accept") != c.accept:
            self.fail(c, "wrong Sec-WebSocket-Accept")
            return
        ext = headers.get("sec-websocket-extensions", "")
        if ext:
            params = [p.strip() for p in ext.split(";")]
            if not self.offer or params[0] != "permessage-deflate":
                self.fail(c, f"unexpected extension {ext!r}")
                return
            c.deflate = True
            for p in params[1:]:
                name, _, value = p.partition("=")
                if name.strip() == "client_max_window_bits" and value:
                    c.client_bits = int(value.strip().strip('"'))
        c.state = ECHO
        self.send_message(c)

    def on_frames(self, c):
        while c.state != CLOSED:
            f = parse_frame(c.buf)
            if f is None:
                return
            fin, rsv1, opcode, payload, used = f
            del c.buf[:used]
            if opcode == 0x9:  # ping
                self.send(c, frame(0xA, payload))
            elif opcode == 0xA:
                pass
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if c.state == IDLE:
                    self.send(c, frame(0x8, payload[:2]))
                    self.fail(c, f"the server closed the WebSocket (code {code})")
                else:
                    self.fail(c, f"the server closed the WebSocket (code {code}) before the echo")
            elif c.state != ECHO:
                self.fail(c, f"unexpected message (opcode {opcode}) on an idle connection")
            else:
                c.parts.append((rsv1, payload))
                if fin:
                    self.on_echo(c)

    def on_echo(self, c):
        compressed = c.parts[0][0]
        data = b"".join(p for _, p in c.parts)
        c.parts = []
        if compressed:
            if not c.deflate:
                self.fail(c, "compressed echo without permessage-deflate")
                return
            try:
                data = zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff")
            except zlib.error as e:
                self.fail(c, f"bad compressed echo: {e}")
                return
        if data != self.message:
            self.fail(c, "the echo differs from the message")
            return
        c.state = IDLE
        self.busy -= 1

    def on_readable(self, c):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.fail(c, f"recv: {e}")
            return
        if not data:
            self.fail(c, "the server closed the connection")
            return
        c.buf += data
        if c.state == HANDSHAKE:
            self.on_handshake(c)
        if c.state != HANDSHAKE:
            self.on_frames(c)

    def service(self, timeout):
        for key, _ in self.sel.select(timeout=timeout):
            self.on_readable(key.data)

    def run(self, n, deadline):
        opened = 0
        while (opened < n or self.busy) and time.monotonic() < deadline:
            while opened < n and self.busy < WINDOW:
                try:
                    self.open_one()
                except OSError as e:
                    self.failed += 1
                    if len(self.failures) < 5:
                        self.failures.append(f"connect: {e}")
                opened += 1
            self.service(0.05 if opened < n else 0.5)
        for c in self.conns:
            if c.state in (HANDSHAKE, ECHO):
                self.fail(c, "not open and echoed in time")

    def settle(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.service(max(0.0, end - time.monotonic()))

    def idle_count(self):
        return sum(1 for c in self.conns if c.state == IDLE)

    def close_all(self):
        """A close frame on every connection, the server's answers for up to 2 s, then close."""
        closing = [c for c in self.conns if c.state == IDLE]
        for c in closing:
            try:
                c.sock.sendall(frame(0x8, struct.pack("!H", 1000)))
            except OSError:
                pass
        end = time.monotonic() + 2
        while time.monotonic() < end and any(c.state != CLOSED for c in closing):
            for key, _ in self.sel.select(timeout=0.2):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    self.drop(c)
        for c in self.conns:
            if c.state != CLOSED:
                self.drop(c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("connections", type=int, nargs="?", default=10000)
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    ap.add_argument("--path", default="/")
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Compressible, like most real traffic, so that compression has something to do.
    message = (b'{"type":"chat","user":"bench","text":"hello, idle websocket"} ' *
               (args.size // 60 + 1))[:args.size]

    # Warm-up: the first WebSockets make the server allocate what every later one shares.
    warm = Client(args.port, args.path, args.deflate, message)
    warm.run(20, time.monotonic() + 30)
    if warm.idle_count() != 20:
        print(f"ws_idle: warm-up failed: {'; '.join(warm.failures) or 'no echo'}",
              file=sys.stderr)
        return 1
    warm.close_all()
    time.sleep(0.3)
    before = rss_kib(args.pid)

    client = Client(args.port, args.path, args.deflate, message)
    client.run(args.connections, time.monotonic() + OPEN_TIMEOUT)
    client.settle(0.5)
    after = rss_kib(args.pid)
    client.settle(0.1)  # a close that raced the reading
    open_count = client.idle_count()
    deflated = sum(1 for c in client.conns if c.state == IDLE and c.deflate)
    per = (after - before) * 1024 / open_count if open_count else float("nan")
    print(f"{before}\t{after}\t{open_count}\t{per:.0f}\t{deflated}")
    if client.failed:
        print(f"ws_idle: {client.failed} connections failed: {'; '.join(client.failures)}",
              file=sys.stderr)
    client.close_all()
    return 0 if open_count else 1


if __name__ == "__main__":
    sys.exit(main())
