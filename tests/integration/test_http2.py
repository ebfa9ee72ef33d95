"""HTTP/2 (h2c) of the real runner as a user checks it: prior knowledge and Upgrade: h2c on the
same port as HTTP/1.1, the scope, many streams on one connection, flow control that follows the
app, trailers, early hints, server push, the failure policy per stream, client resets, limits,
rapid reset, graceful shutdown with GOAWAY, idle and request-header timeouts.

Clients: curl (--http2-prior-knowledge, --http2), h2load, python-h2 (H2Client below) for streams
and flow control, and a small frame-level client (RawH2 below, hpack for the header blocks) for
what python-h2 hides or refuses: frame order and flags, several GOAWAYs, frames after a GOAWAY.
Frame-level RFC conformance is test_h2_conformance.py's; this file is about behaviour.

Only 127.0.0.1; every wait is bounded; each server is stopped and checked for sanitizer reports.
"""

import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import time
import unittest

from casgi_harness import (rss_kib, CASGI_EEVENT, CASGI_EHEADER, CASGI_ELENGTH, CASGI_ESTATE,
                           CASGI_ESTATUS, HOST, IO_TIMEOUT, SCALE, Conn, ServerTestCase, app_log,
                           build_request, chunked, curl, fnv1a, get, parse_codes,
                           parse_scope, scaled, wait_log)

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import hpack
    HAVE_H2 = True
except ImportError:  # pragma: no cover - reported as skips
    HAVE_H2 = False

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FRAME_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
               "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# Error codes (RFC 9113 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR = 0x0, 0x1, 0x2
CANCEL, ENHANCE_YOUR_CALM = 0x8, 0xb

EXT_PUSH = 1 << 3  # CASGI_EXT_HTTP_RESPONSE_PUSH

# A valid HTTP2-Settings header (curl's): MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE
# 33554432, ENABLE_PUSH 0.
H2_SETTINGS_B64 = "AAMAAABkAAQCAAAAAAIAAAAA"


def require_h2():
    if not HAVE_H2:
        raise unittest.SkipTest("python3-h2 (h2, hpack) not installed")


def request_headers(port, method, path, extra=(), authority=None):
    """The pseudo-header fields of a request (with :authority unless authority is False)."""
    hs = [(":method", method), (":scheme", "http")]
    if authority is not False:
        hs.append((":authority", authority or f"127.0.0.1:{port}"))
    hs.append((":path", path))
    return hs + list(extra)


# ---------------------------------------------------------------------------------------------
# A frame-level client
# ---------------------------------------------------------------------------------------------

class Frame:
    def __init__(self, ftype, flags, stream, payload):
        self.type, self.flags, self.stream, self.payload = ftype, flags, stream, payload
        self.headers = None   # HEADERS / PUSH_PROMISE: decoded [(name, value)] as latin-1 str
        self.promised = None  # PUSH_PROMISE: the promised stream id

    @property
    def end_stream(self):
        return self.type in (DATA, HEADERS) and bool(self.flags & FLAG_END_STREAM)

    @property
    def error_code(self):
        if self.type == RST_STREAM:
            return struct.unpack("!I", self.payload[:4])[0]
        if self.type == GOAWAY:
            return struct.unpack("!I", self.payload[4:8])[0]
        return None

    @property
    def last_stream_id(self):
        return struct.unpack("!I", self.payload[:4])[0] & 0x7FFFFFFF

    def header(self, name):
        for k, v in self.headers or ():
            if k == name:
                return v
        return None

    def __repr__(self):
        name = FRAME_NAMES[self.type] if self.type < len(FRAME_NAMES) else str(self.type)
        extra = ""
        if self.headers is not None:
            extra = f" {self.headers}"
        elif self.type in (RST_STREAM, GOAWAY):
            extra = f" error={self.error_code:#x}"
            if self.type == GOAWAY:
                extra += f" last_stream={self.last_stream_id}"
        elif self.type == DATA:
            extra = f" len={len(self.payload)} {bytes(self.payload[:40])!r}"
        return f"<{name} stream={self.stream} flags={self.flags:#x}{extra}>"


def frame_bytes(ftype, flags, stream, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack("!I", stream & 0x7FFFFFFF) + payload


def parse_frames(data):
    """The frames in `data` (complete ones only) as (type, flags, stream, payload)."""
    out, pos = [], 0
    while pos + 9 <= len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        if pos + 9 + n > len(data):
            break
        out.append((data[pos + 3], data[pos + 4],
                    int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF,
                    bytes(data[pos + 9:pos + 9 + n])))
        pos += 9 + n
    return out


class RawH2:
    """HTTP/2 by hand: sends the frames it is told to (header blocks through hpack), reads frames
    one by one, joins CONTINUATIONs to their HEADERS/PUSH_PROMISE and decodes the block. SETTINGS
    and PING from the server are acknowledged. `sock`/`buf`: take over a connection (after a
    101 Switching Protocols)."""

    def __init__(self, port=None, settings=(), timeout=IO_TIMEOUT, sock=None, buf=b"",
                 preface=True):
        require_h2()
        if sock is None:
            sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock = sock
        self.port = port
        self.timeout = timeout
        self.buf = bytearray(buf)
        self.eof = False
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 20
        self.frames = []  # everything read so far
        self._block = None  # (first frame, [fragments]) while a header block continues
        if preface:
            payload = b"".join(struct.pack("!HI", k, v) for k, v in settings)
            self.send(PREFACE + frame_bytes(SETTINGS, 0, 0, payload))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, ftype, flags, stream, payload=b""):
        self.send(frame_bytes(ftype, flags, stream, payload))

    def headers_frame(self, stream, headers, end_stream=True, end_headers=True):
        flags = (FLAG_END_STREAM if end_stream else 0) | (FLAG_END_HEADERS if end_headers else 0)
        return frame_bytes(HEADERS, flags, stream, self.enc.encode(headers))

    def send_headers(self, stream, headers, end_stream=True, end_headers=True):
        self.send(self.headers_frame(stream, headers, end_stream, end_headers))

    def send_data(self, stream, data, end_stream=False):
        self.send_frame(DATA, FLAG_END_STREAM if end_stream else 0, stream, data)

    def send_rst(self, stream, code=CANCEL):
        self.send_frame(RST_STREAM, 0, stream, struct.pack("!I", code))

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
        self.buf += data

    def _decode(self, first, block):
        data = bytes(block)
        if first.type == PUSH_PROMISE:
            first.promised = int.from_bytes(data[:4], "big") & 0x7FFFFFFF
            data = data[4:]
        first.headers = [(k.decode("latin-1"), v.decode("latin-1"))
                         for k, v in self.dec.decode(data, raw=True)]
        first.flags |= FLAG_END_HEADERS
        return first

    def _strip(self, f):
        """A HEADERS/PUSH_PROMISE payload without padding and priority fields."""
        p = f.payload
        pad = 0
        if f.flags & FLAG_PADDED:
            pad, p = p[0], p[1:]
        if f.type == HEADERS and f.flags & FLAG_PRIORITY:
            p = p[5:]
        return p[:len(p) - pad] if pad else p

    def read_frame(self, timeout=None):
        """The next frame (header blocks joined and decoded); None when the server closed."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                f = Frame(self.buf[3], self.buf[4],
                          int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                          bytes(self.buf[9:9 + n]))
                del self.buf[:9 + n]
                if self._block is not None:
                    first, parts = self._block
                    if f.type != CONTINUATION or f.stream != first.stream:
                        raise AssertionError(f"{f!r} inside the header block of {first!r}")
                    parts.append(f.payload)
                    if f.flags & FLAG_END_HEADERS:
                        self._block = None
                        f = self._decode(first, b"".join(parts))
                        self.frames.append(f)
                        return f
                    continue
                if f.type in (HEADERS, PUSH_PROMISE):
                    if f.flags & FLAG_END_HEADERS:
                        f = self._decode(f, self._strip(f))
                    else:
                        self._block = (f, [self._strip(f)])
                        continue
                elif f.type == SETTINGS and not f.flags & FLAG_ACK:
                    self.send_frame(SETTINGS, FLAG_ACK, 0)
                elif f.type == PING and not f.flags & FLAG_ACK:
                    self.send_frame(PING, FLAG_ACK, 0, f.payload)
                self.frames.append(f)
                return f
            if self.eof:
                return None
            try:
                self._recv(deadline)
            except socket.timeout:
                raise AssertionError(f"no frame within {timeout or self.timeout} s; frames so "
                                     f"far: {self.frames[-20:]}") from None

    def read_until(self, pred, timeout=None, what="the expected frame"):
        """Frames up to and including the first one `pred` accepts; fails on EOF or timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got = []
        while True:
            try:
                f = self.read_frame(max(0.01, deadline - time.monotonic()))
            except AssertionError as e:
                raise AssertionError(f"timed out waiting for {what}: {e}") from None
            if f is None:
                raise AssertionError(f"connection closed before {what}; frames: {got[-30:]}")
            got.append(f)
            if pred(f):
                return got

    def read_until_close(self, timeout=None):
        """All frames until the server closes; fails when it does not close in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got = []
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return got
            got.append(f)

    def response(self, stream, timeout=None):
        """The frames of one stream until its END_STREAM or RST_STREAM (others are kept in
        self.frames)."""
        got = self.read_until(
            lambda f: f.stream == stream and (f.end_stream or f.type == RST_STREAM), timeout,
            f"the end of stream {stream}")
        return [f for f in got if f.stream == stream]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def body_of(frames):
    return b"".join(f.payload for f in frames if f.type == DATA)


def status_of(frames):
    for f in frames:
        if f.type == HEADERS and f.header(":status") and not f.header(":status").startswith("1"):
            return int(f.header(":status"))
    return None


# ---------------------------------------------------------------------------------------------
# A python-h2 client
# ---------------------------------------------------------------------------------------------

class H2Stream:
    def __init__(self, sid):
        self.id = sid
        self.request = None      # a pushed stream: the promised request headers
        self.informational = []  # [[(name, value)]] of 1xx responses
        self.headers = None      # the final response's [(name, value)]
        self.trailers = None
        self.data = bytearray()
        self.ended = False
        self.reset = None        # the RST_STREAM error code
        self.order = []          # "info", "headers", "data", "trailers", "end", "reset"

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def status(self):
        v = self.header(":status")
        return int(v) if v is not None else None

    def header(self, name):
        for k, v in self.headers or ():
            if k == name:
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers or () if k == name]

    def __repr__(self):
        return (f"<stream {self.id} headers={self.headers} data[{len(self.data)}]="
                f"{bytes(self.data[:200])!r} trailers={self.trailers} ended={self.ended} "
                f"reset={self.reset} order={self.order[:12]}>")


def _str_headers(headers):
    return [(k.decode("latin-1") if isinstance(k, bytes) else k,
             v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in headers]


class H2Client:
    """A python-h2 client connection. Data is acknowledged as it arrives (so windows reopen),
    except on the streams in `no_ack`, whose bytes only reopen the connection's window. Response
    header names are kept as the server sent them (no normalisation, no validation): the tests
    check them."""

    def __init__(self, port, push=True, timeout=IO_TIMEOUT):
        require_h2()
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.conn = h2.connection.H2Connection(cfg)
        initial = {h2.settings.SettingCodes.ENABLE_PUSH: 1 if push else 0}
        self.conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
        self.conn.initiate_connection()
        self.streams = {}
        self.no_ack = set()
        self.pushes = []       # PushedStreamReceived events
        self.terminated = None  # the ConnectionTerminated event (a GOAWAY)
        self.remote_settings = False
        self.conn_window_updated = False
        self.eof = False
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stream(self, sid):
        if sid not in self.streams:
            self.streams[sid] = H2Stream(sid)
        return self.streams[sid]

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, method, path, headers=(), body=None, end_stream=None, authority=None):
        """Opens a stream; with `body`, sends it (as flow control allows). Returns the id."""
        sid = self.conn.get_next_available_stream_id()
        self.stream(sid)
        if end_stream is None:
            end_stream = body is None
        self.conn.send_headers(sid, request_headers(self.port, method, path, headers, authority),
                               end_stream=end_stream)
        self.flush()
        if body is not None:
            self.send_body(sid, body, end=True)
        return sid

    def send_body(self, sid, data, end=True, timeout=None):
        """Sends `data` on stream `sid`, waiting for window as needed; stops early when the
        server reset the stream."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        view = memoryview(data)
        while view:
            if self.stream(sid).reset is not None:
                return
            if self.eof:
                raise AssertionError(f"stream {sid}: connection closed with {len(view)} bytes "
                                     f"of the body unsent; GOAWAY: {self.terminated}")
            w = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                    len(view))
            if w <= 0:
                if not self.pump(deadline - time.monotonic()) and time.monotonic() > deadline:
                    raise AssertionError(f"stream {sid}: no window to send the body within the "
                                         f"timeout ({len(view)} bytes left)")
                continue
            self.conn.send_data(sid, bytes(view[:w]))
            view = view[w:]
            self.flush()
        if end:
            self.conn.end_stream(sid)
            self.flush()

    def send_some(self, sid, data):
        """Sends as much of `data` as the windows allow now; returns the count sent."""
        sent = 0
        while sent < len(data):
            w = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size,
                    len(data) - sent)
            if w <= 0:
                break
            self.conn.send_data(sid, data[sent:sent + w])
            sent += w
        self.flush()
        return sent

    def reset(self, sid, code=CANCEL):
        self.conn.reset_stream(sid, error_code=code)
        self.flush()

    def _handle(self, ev):
        E = h2.events
        if isinstance(ev, E.ResponseReceived):
            s = self.stream(ev.stream_id)
            s.headers = _str_headers(ev.headers)
            s.order.append("headers")
        elif isinstance(ev, E.InformationalResponseReceived):
            s = self.stream(ev.stream_id)
            s.informational.append(_str_headers(ev.headers))
            s.order.append("info")
        elif isinstance(ev, E.DataReceived):
            s = self.stream(ev.stream_id)
            s.data += ev.data
            s.order.append("data")
            if ev.stream_id in self.no_ack:
                if ev.flow_controlled_length:
                    self.conn.increment_flow_control_window(ev.flow_controlled_length)
            elif ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, E.TrailersReceived):
            s = self.stream(ev.stream_id)
            s.trailers = _str_headers(ev.headers)
            s.order.append("trailers")
        elif isinstance(ev, E.StreamEnded):
            s = self.stream(ev.stream_id)
            s.ended = True
            s.order.append("end")
        elif isinstance(ev, E.StreamReset):
            s = self.stream(ev.stream_id)
            s.reset = ev.error_code
            s.order.append("reset")
        elif isinstance(ev, E.PushedStreamReceived):
            self.pushes.append(ev)
            self.stream(ev.pushed_stream_id).request = _str_headers(ev.headers)
        elif isinstance(ev, E.ConnectionTerminated):
            self.terminated = ev
        elif isinstance(ev, E.RemoteSettingsChanged):
            self.remote_settings = True
        elif isinstance(ev, E.WindowUpdated) and ev.stream_id == 0:
            self.conn_window_updated = True

    def pump(self, timeout):
        """Reads what arrives within `timeout` (at most one recv); False when nothing did."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.eof = True
            return False
        for ev in self.conn.receive_data(data):
            self._handle(ev)
        self.flush()
        return True

    def wait(self, pred, timeout=None, what="the condition"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not pred():
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}; "
                                     f"streams: {list(self.streams.values())}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; streams: "
                                     f"{list(self.streams.values())}; GOAWAY: {self.terminated}")
            self.pump(min(0.2, deadline - time.monotonic()))

    def idle(self, seconds):
        """Reads whatever arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.eof:
            self.pump(deadline - time.monotonic())

    def response(self, sid, timeout=None):
        s = self.stream(sid)
        self.wait(lambda: s.done, timeout, f"the end of stream {sid}")
        return s

    def get(self, path, headers=(), timeout=None):
        return self.response(self.request("GET", path, headers), timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

class H2TestCase(ServerTestCase):
    server_args = ()

    def setUp(self):
        self.srv = self.start_server(*self.server_args)
        self.port = self.srv.port

    def client(self, **kw):
        c = H2Client(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def raw(self, **kw):
        c = RawH2(self.port, **kw)
        self.addCleanup(c.close)
        return c

    def assertOk(self, s, body=b"ok"):
        self.assertTrue(s.ended, s)
        self.assertEqual(s.status, 200, s)
        if body is not None:
            self.assertEqual(bytes(s.data), body, s)


class PriorKnowledge(H2TestCase):
    def test_curl_prior_knowledge_get(self):
        p = curl("-i", "--http2-prior-knowledge", f"http://127.0.0.1:{self.port}/ok")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 200"), p.stdout)
        self.assertTrue(p.stdout.endswith(b"\r\n\r\nok"), p.stdout)
        self.assertIn(b"\r\ncontent-length: 2\r\n", p.stdout)

    def test_access_log_line(self):
        p = curl("--http2-prior-knowledge", f"http://127.0.0.1:{self.port}/ok?x=1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.srv.wait_stderr(re.compile(r'127\.0\.0\.1:\d+ - "GET /ok\?x=1 HTTP/2" 200 '))

    def test_curl_prior_knowledge_post(self):
        body = os.urandom(100000)
        path = os.path.join(self.srv.dir, "body.bin")
        with open(path, "wb") as f:
            f.write(body)
        p = curl("--http2-prior-knowledge", "--data-binary", f"@{path}",
                 f"http://127.0.0.1:{self.port}/read-body")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"len=100000 sum=%08x" % fnv1a(body), p.stdout)

    def test_scope(self):
        c = self.client()
        s = c.response(c.request("GET", "/scope?a=1&b=%20x",
                                 [("x-custom", "Value 1"), ("accept", "*/*")],
                                 authority="example.test:8080"))
        self.assertOk(s, None)
        sc = parse_scope(bytes(s.data))
        self.assertEqual(sc["http_version"], "2")
        self.assertEqual(sc["method"], "GET")
        self.assertEqual(sc["scheme"], "http")
        self.assertEqual(sc["path"], "/scope")
        self.assertEqual(sc["raw_path"], "/scope")
        self.assertEqual(sc["query_string"], "a=1&b=%20x")
        self.assertEqual(sc["client_host"], "127.0.0.1")
        self.assertEqual(int(sc["server_port"]), self.port)
        # No pseudo-headers in the scope; :authority became the one host header.
        names = [n for n, _ in sc["headers"]]
        self.assertFalse([n for n in names if n.startswith(":")], sc["headers"])
        self.assertEqual([v for n, v in sc["headers"] if n == "host"], ["example.test:8080"],
                         sc["headers"])
        self.assertIn(("x-custom", "Value 1"), sc["headers"])
        self.assertIn(("accept", "*/*"), sc["headers"])

    def test_scope_keeps_the_clients_host(self):
        c = self.client()
        s = c.response(c.request("POST", "/scope", [("host", "example.test:8080")], body=b"",
                                 authority="example.test:8080"))
        self.assertOk(s, None)
        sc = parse_scope(bytes(s.data))
        self.assertEqual(sc["method"], "POST")
        self.assertEqual([v for n, v in sc["headers"] if n == "host"], ["example.test:8080"],
                         sc["headers"])

    def test_curl_host_from_authority(self):
        p = curl("--http2-prior-knowledge", f"http://127.0.0.1:{self.port}/scope")
        self.assertEqual(p.returncode, 0, p.stderr)
        sc = parse_scope(p.stdout)
        self.assertEqual(sc["http_version"], "2")
        self.assertEqual([v for n, v in sc["headers"] if n == "host"],
                         [f"127.0.0.1:{self.port}"], sc["headers"])


class Upgrade(H2TestCase):
    def upgrade_request(self, method, path, body=None, extra=(), settings=H2_SETTINGS_B64):
        headers = [("Host", f"127.0.0.1:{self.port}"), ("Connection", "Upgrade, HTTP2-Settings"),
                   ("Upgrade", "h2c"), ("HTTP2-Settings", settings)] + list(extra)
        return build_request(method, path, headers, body)

    def test_curl_upgrade_get(self):
        p = curl("-v", "--http2", f"http://127.0.0.1:{self.port}/scope")
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode("latin-1")
        self.assertIn("< HTTP/1.1 101", err)
        self.assertIn("< HTTP/2 200", err)
        self.assertLess(err.index("< HTTP/1.1 101"), err.index("< HTTP/2 200"))
        sc = parse_scope(p.stdout)
        self.assertEqual(sc["http_version"], "2")
        self.assertEqual(sc["path"], "/scope")
        names = [n for n, _ in sc["headers"]]
        for hop in ("upgrade", "http2-settings", "connection"):
            self.assertNotIn(hop, names, sc["headers"])

    def test_curl_upgrade_post_with_body(self):
        p = curl("-v", "--http2", "--data-binary", "hello over h2c",
                 f"http://127.0.0.1:{self.port}/echo")
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode("latin-1")
        self.assertIn("< HTTP/1.1 101", err)
        self.assertIn("< HTTP/2 200", err)
        self.assertEqual(p.stdout, b"hello over h2c")

    def test_upgrade_response_is_stream_1(self):
        # The request (with its body) becomes stream 1; the client's preface follows the 101.
        with Conn(self.port) as c:
            c.send(self.upgrade_request("POST", "/echo?x=1", body=b"0123456789"))
            r = c.read_response()
            self.assertEqual((r.version, r.status), ("1.1", 101), r)
            self.assertEqual(r.header("upgrade"), "h2c")
            raw = RawH2(sock=c.sock, buf=bytes(c.buf), port=self.port)
            frames = raw.response(1)
            self.assertEqual(status_of(frames), 200, frames)
            self.assertEqual(body_of(frames), b"0123456789", frames)
            self.assertTrue(frames[-1].end_stream, frames)
            # The connection goes on as HTTP/2: stream 3.
            raw.send_headers(3, request_headers(self.port, "GET", "/ok"))
            frames = raw.response(3)
            self.assertEqual((status_of(frames), body_of(frames)), (200, b"ok"), frames)

    def assert_http11(self, r, body):
        self.assertEqual((r.version, r.status), ("1.1", 200), r)
        self.assertEqual(r.body, body)

    def test_chunked_upgrade_served_as_http11(self):
        with Conn(self.port) as c:
            c.send(self.upgrade_request("POST", "/echo", extra=[("Transfer-Encoding", "chunked")],
                                        body=chunked([b"hello", b" chunked"])))
            self.assert_http11(c.read_response(), b"hello chunked")

    def test_large_body_upgrade_served_as_http11(self):
        body = os.urandom(70000)
        with Conn(self.port) as c:
            c.send(self.upgrade_request("POST", "/echo", body=body))
            self.assert_http11(c.read_response(), body)

    def test_bad_http2_settings_served_as_http11(self):
        with Conn(self.port) as c:
            c.send(self.upgrade_request("POST", "/echo", body=b"abc", settings="!!not base64!!"))
            self.assert_http11(c.read_response(), b"abc")
            # Still HTTP/1.1 afterwards.
            c.request("GET", "/ok")
            self.assert_http11(c.read_response(), b"ok")

    def test_http11_on_the_same_port(self):
        r = get(self.port, "/ok")
        self.assertEqual((r.version, r.status, r.body), ("1.1", 200, b"ok"))

    def test_pri_that_is_not_the_preface_is_http11_400(self):
        with Conn(self.port) as c:
            c.send(b"PRI * HTTP/2.0\r\n\r\nXY\r\n\r\n")
            r = c.read_response(allow_incomplete=True)
            self.assertEqual((r.version, r.status), ("1.1", 400), r)


class NoHttp2(H2TestCase):
    server_args = ("--no-http2",)

    def test_upgrade_ignored_and_preface_refused(self):
        p = curl("-v", "--http2", "--data-binary", "abc", f"http://127.0.0.1:{self.port}/echo")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn(b"< HTTP/1.1 101", p.stderr)
        self.assertEqual(p.stdout, b"abc")
        with Conn(self.port) as c:
            c.send(PREFACE)
            r = c.read_response(allow_incomplete=True)
            self.assertEqual((r.version, r.status), ("1.1", 400), r)


class ManyStreams(H2TestCase):
    def test_h2load_50_concurrent_streams(self):
        if shutil.which("h2load") is None:
            self.skipTest("h2load not installed")
        p = subprocess.run(["h2load", "-c1", "-m50", "-n500", f"http://127.0.0.1:{self.port}/ok"],
                           capture_output=True, timeout=60 * SCALE)
        out = p.stdout.decode("latin-1")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode("latin-1"))
        self.assertRegex(out, r"requests: 500 total, 500 started, 500 done, 500 succeeded, "
                              r"0 failed, 0 errored")
        self.assertIn("status codes: 500 2xx, 0 3xx, 0 4xx, 0 5xx", out)

    def test_20_interleaved_uploads_each_echoed(self):
        c = self.client()
        bodies = {}
        for i in range(20):
            sid = c.request("POST", "/echo", end_stream=False)
            bodies[sid] = os.urandom(20000) + b"stream %d" % i
        # Round-robin 1000-byte pieces over all streams.
        for off in range(0, 21000, 1000):
            for sid, body in bodies.items():
                if off < len(body):
                    c.send_body(sid, body[off:off + 1000], end=False)
        for sid in bodies:
            c.conn.end_stream(sid)
        c.flush()
        for sid, body in bodies.items():
            s = c.response(sid)
            self.assertTrue(s.ended, s)
            self.assertEqual(s.status, 200, s)
            self.assertEqual(bytes(s.data), body, f"stream {sid}: wrong echo")
        self.assertIsNone(c.terminated)


class Nghttp(H2TestCase):
    """nghttp (nghttp2-client), the reference client: prior knowledge, upgrade, many requests."""

    def nghttp(self, *args):
        if shutil.which("nghttp") is None:
            self.skipTest("nghttp not installed")
        p = subprocess.run(["nghttp", *args], capture_output=True, timeout=60 * SCALE)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout.decode("latin-1")

    def test_prior_knowledge_get(self):
        self.assertEqual(self.nghttp(f"http://127.0.0.1:{self.port}/ok"), "ok")

    def test_upgrade_post_is_echoed(self):
        path = os.path.join(self.srv.dir, "body.txt")
        with open(path, "wb") as f:
            f.write(b"through the upgrade\n")
        out = self.nghttp("-u", "-d", path, f"http://127.0.0.1:{self.port}/echo")
        self.assertEqual(out, "through the upgrade\n")

    def test_settings_and_trailers_on_the_wire(self):
        out = self.nghttp("-v", f"http://127.0.0.1:{self.port}/trailers")
        self.assertIn("[SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1]", out)
        self.assertIn("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100]", out)
        self.assertRegex(out, r"recv \(stream_id=\d+\) x-checksum: abcdef")
        # the trailers end the stream: HEADERS with END_STREAM (0x01) | END_HEADERS (0x04)
        self.assertRegex(out, r"recv HEADERS frame <length=\d+, flags=0x05, stream_id=\d+>")

    def test_ten_requests_on_one_connection(self):
        out = self.nghttp("-s", "-m", "10", f"http://127.0.0.1:{self.port}/ok")
        self.assertTrue(out.startswith("ok" * 10), out)
        self.assertEqual(len([l for l in out.splitlines() if l.rstrip().endswith(" 200    2 /ok")]),
                         10, out)


class FlowControl(H2TestCase):
    def test_upload_waits_for_the_app_and_stalls_only_its_stream(self):
        c = self.client()
        c.wait(lambda: c.remote_settings and c.conn_window_updated, what="the server's SETTINGS")
        total = 200000
        body = os.urandom(total)
        held = c.request("POST", "/hold-body/10000", end_stream=False)
        self.srv.wait_stderr("testapp: hold-body parked", timeout=scaled(10))
        sent = 0
        deadline = time.monotonic() + scaled(10)
        while c.conn.local_flow_control_window(held) > 0 and time.monotonic() < deadline:
            sent += c.send_some(held, body[sent:])
            c.idle(0.05)
        # The app has not received: the stream's window (65535) is used up and stays so.
        c.idle(0.5)
        self.assertEqual(sent, 65535)
        self.assertEqual(c.conn.local_flow_control_window(held), 0)
        self.assertGreater(c.conn.outbound_flow_control_window, 0,
                           "the connection's window should not be what stalls the upload")
        # Another upload on the same connection flows meanwhile.
        other = os.urandom(150000)
        s = c.response(c.request("POST", "/read-body", body=other))
        self.assertOk(s, None)
        self.assertIn(b"len=150000 sum=%08x" % fnv1a(other), bytes(s.data))
        self.assertEqual(c.conn.local_flow_control_window(held), 0)
        self.assertFalse(c.stream(held).done)
        # Once the app reads, the rest flows.
        self.assertOk(c.get("/release-body"), b"released=1")
        c.send_body(held, body[sent:], end=True)
        s = c.response(held)
        self.assertOk(s, None)
        self.assertIn(b"len=%d sum=%08x" % (total, fnv1a(body)), bytes(s.data))

    def test_large_response_to_a_client_that_does_not_read(self):
        c = self.client()
        c.wait(lambda: c.remote_settings, what="the server's SETTINGS")
        self.assertOk(c.get("/ok"))
        rss_before = rss_kib(self.srv.proc.pid)
        size = 64 << 20
        sid = c.conn.get_next_available_stream_id()
        c.no_ack.add(sid)
        c.request("GET", f"/big/{size}")
        big = c.stream(sid)
        c.wait(lambda: len(big.data) >= 65535, what="the first window of /big")
        c.idle(scaled(1.5))
        # The server stopped at the stream's window (the client never reopened it).
        self.assertEqual(len(big.data), 65535, big)
        self.assertFalse(big.done, big)
        # Other streams on the same connection are still answered.
        self.assertOk(c.get("/ok"))
        grown = rss_kib(self.srv.proc.pid) - rss_before
        self.assertLess(grown, 8 * 1024, f"server RSS grew by {grown} KiB while a {size}-byte "
                                          f"response waited for the client's window")
        # Reopening the window lets more through.
        c.no_ack.discard(sid)
        c.conn.acknowledge_received_data(len(big.data), sid)
        c.flush()
        c.wait(lambda: len(big.data) > 2 * 65535, what="more of /big after WINDOW_UPDATE")
        c.reset(sid)
        self.assertOk(c.get("/ok"))

    def test_echo_to_a_client_that_does_not_read_stalls_both_ways(self):
        # /echo sends each piece before it receives the next: with the response stalled at the
        # client's window, the app stops receiving, so the upload stalls too, with bounded
        # buffering in between; once the client reads, both complete.
        c = self.client()
        sid = c.conn.get_next_available_stream_id()
        c.no_ack.add(sid)
        c.request("POST", "/echo", end_stream=False)
        body = os.urandom(1 << 20)
        sent = 0
        for _ in range(30):
            sent += c.send_some(sid, body[sent:])
            c.idle(0.05)
        echo = c.stream(sid)
        self.assertEqual(len(echo.data), 65535, echo)
        self.assertLess(sent, 512 * 1024, "the upload did not stall with the response")
        self.assertOk(c.get("/ok"))
        c.no_ack.discard(sid)
        c.conn.acknowledge_received_data(len(echo.data), sid)
        c.flush()
        c.send_body(sid, body[sent:], end=True)
        s = c.response(sid)
        self.assertTrue(s.ended, s)
        self.assertEqual(bytes(s.data), body)


class Trailers(H2TestCase):
    def test_trailers_frames(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/trailers"))
        frames = [f for f in raw.response(1) if f.type in (HEADERS, DATA)]
        kinds = [(FRAME_NAMES[f.type], f.end_stream) for f in frames]
        # HEADERS, DATA..., then a trailing HEADERS with END_STREAM; no DATA carries END_STREAM.
        self.assertEqual(kinds[0], ("HEADERS", False), frames)
        self.assertEqual(kinds[-1], ("HEADERS", True), frames)
        self.assertTrue(all(k == ("DATA", False) for k in kinds[1:-1]), frames)
        self.assertEqual(frames[0].header(":status"), "200")
        self.assertEqual(body_of(frames), b"abcdef")
        self.assertEqual(frames[-1].headers, [("x-checksum", "abcdef"), ("x-extra", "1")])

    def test_trailers_python_h2(self):
        c = self.client()
        s = c.get("/trailers")
        self.assertOk(s, b"abcdef")
        self.assertEqual(s.trailers, [("x-checksum", "abcdef"), ("x-extra", "1")])
        self.assertEqual(s.order[0], "headers")
        self.assertEqual(s.order[-2:], ["trailers", "end"])


def log_line(log, prefix):
    lines = [line for line in log.splitlines() if line.startswith(prefix)]
    if not lines:
        raise AssertionError(f"no {prefix!r} line in the app's log:\n{log}")
    return lines[-1]


class FailurePolicy(H2TestCase):
    def test_fail_before_start_is_500_on_that_stream_only(self):
        c = self.client()
        slow = c.request("GET", "/slow-ms/300")
        fail = c.request("GET", "/fail-before-start")
        none = c.request("GET", "/no-response")
        ok = c.request("GET", "/ok")
        self.assertEqual(c.response(fail).status, 500)
        self.assertTrue(c.stream(fail).ended)
        self.assertEqual(c.response(none).status, 500)
        self.assertOk(c.response(ok))
        self.assertOk(c.response(slow), b"slept 300")
        self.assertIsNone(c.terminated)
        self.assertOk(c.get("/ok"))

    def assert_reset(self, s, code=INTERNAL_ERROR):
        self.assertEqual(s.reset, code, s)
        self.assertFalse(s.ended, f"a truncated response ended normally: {s!r}")

    def test_fail_after_start_resets_that_stream_only(self):
        c = self.client()
        slow = c.request("GET", "/slow-ms/300")
        fail = c.request("GET", "/fail-after-start")
        partial = c.request("GET", "/partial")
        ok = c.request("GET", "/ok")
        s = c.response(fail)
        self.assert_reset(s)
        if s.headers is not None:
            self.assertEqual(s.status, 200, s)
            self.assertTrue(b"partial".startswith(bytes(s.data)), s)
        self.assert_reset(c.response(partial))
        self.assertOk(c.response(ok))
        self.assertOk(c.response(slow), b"slept 300")
        self.assertIsNone(c.terminated)
        log = app_log(self.port)
        self.assertIn("fail-after-start: start=0 body=0", log)
        self.assertIn("partial: start=0 body=0", log)
        self.assertOk(c.get("/ok"))

    def test_content_length_mismatch_resets_stream(self):
        c = self.client()
        longer = c.request("GET", "/content-length-mismatch")
        shorter = c.request("GET", "/content-length-short")
        split = c.request("GET", "/content-length-split")
        self.assert_reset(c.response(longer))
        self.assertLess(len(c.stream(longer).data), 10)
        self.assert_reset(c.response(shorter))
        self.assertLess(len(c.stream(shorter).data), 10)
        self.assertOk(c.response(split), b"0123456789")
        self.assertIsNone(c.terminated)
        codes = parse_codes(log_line(app_log(self.port), "content_length_mismatch:"))
        self.assertEqual(codes, {"start": 0, "body": CASGI_ELENGTH})

    def test_send_misuse_returns_codes(self):
        c = self.client()
        s = c.get("/duplicate-start")
        self.assertEqual(s.status, 200, s)
        self.assertEqual(parse_codes(bytes(s.data)), {"first_start": 0,
                                                      "second_start": CASGI_ESTATE})
        s = c.get("/body-before-start")
        self.assertEqual(parse_codes(bytes(s.data)), {"body_before_start": CASGI_ESTATE})
        s = c.get("/bad-header")
        self.assertEqual(set(parse_codes(bytes(s.data)).values()), {CASGI_EHEADER}, s)
        self.assertIsNone(s.header("x-bad"))
        s = c.get("/bad-status")
        self.assertEqual(set(parse_codes(bytes(s.data)).values()), {CASGI_ESTATUS}, s)
        s = c.get("/bad-event")
        codes = parse_codes(bytes(s.data))
        self.assertEqual(codes["lifespan_event"], CASGI_EEVENT)
        self.assertEqual(codes["unknown_event"], CASGI_EEVENT)
        self.assertOk(c.get("/after-complete"), b"done")
        s = c.get("/log")
        codes = parse_codes(log_line(bytes(s.data).decode("latin-1"), "after_complete:"))
        self.assertEqual(codes, {"respond": 0, "body": CASGI_ESTATE, "start": CASGI_ESTATE,
                                 "trailers": CASGI_ESTATE})
        self.assertIsNone(c.terminated)


class ClientLeaves(H2TestCase):
    def test_rst_stream_disconnects_that_call_only(self):
        c = self.client()
        slow = c.request("GET", "/slow-ms/800")
        wait = c.request("POST", "/disconnect-wait", end_stream=False)
        c.send_body(wait, b"a" * 100, end=False)
        self.srv.wait_stderr("slow-ms 800 started", timeout=scaled(10))
        # Once a later stream is answered, the 100 bytes have reached the app.
        self.assertOk(c.get("/ok"))
        c.reset(wait, CANCEL)
        log = wait_log(self.port, "disconnect_wait: disconnect", timeout=scaled(10))
        line = log_line(log, "disconnect_wait:")
        self.assertIn("bytes=100 ", line)
        self.assertIn("body_done=0", line)
        self.assertOk(c.response(slow), b"slept 800")
        self.assertNotIn("slow-ms: disconnected", app_log(self.port))
        self.assertOk(c.get("/ok"))
        self.assertIsNone(c.terminated)

    def test_rst_stream_during_slow_response(self):
        c = self.client()
        sid = c.request("GET", "/slow-ms/20000")
        self.srv.wait_stderr("slow-ms 20000 started", timeout=scaled(10))
        c.reset(sid)
        self.srv.wait_stderr("slow-ms 20000 disconnected", timeout=scaled(10))
        self.assertOk(c.get("/ok"))

    def test_connection_lost_disconnects_every_call(self):
        c = self.client()
        wait = c.request("POST", "/disconnect-wait", end_stream=False)
        c.send_body(wait, b"x" * 10, end=False)
        c.request("GET", "/slow-ms/20000")
        self.srv.wait_stderr("slow-ms 20000 started", timeout=scaled(10))
        self.assertOk(c.get("/ok"))
        c.close()
        self.srv.wait_stderr("slow-ms 20000 disconnected", timeout=scaled(10))
        log = wait_log(self.port, "disconnect_wait: disconnect", timeout=scaled(10))
        self.assertIn("bytes=10 ", log_line(log, "disconnect_wait:"))

    def test_client_goaway_lets_the_open_stream_finish(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/slow-ms/500"))
        self.srv.wait_stderr("slow-ms 500 started", timeout=scaled(10))
        raw.send_frame(GOAWAY, 0, 0, struct.pack("!II", 0, NO_ERROR))
        frames = raw.response(1, timeout=scaled(10))
        self.assertEqual((status_of(frames), body_of(frames)), (200, b"slept 500"), frames)


class Limits(H2TestCase):
    server_args = ("--max-body-size", "1000")

    def test_header_list_over_max_is_431(self):
        c = self.client()
        c.wait(lambda: c.remote_settings, what="the server's SETTINGS")
        # No Huffman coding: the block on the wire is as large as the header list (> 64 KiB), so
        # it needs CONTINUATION frames.
        encode = c.conn.encoder.encode
        c.conn.encoder.encode = lambda headers, huffman=False: encode(headers, huffman=False)
        big = [(f"x-big-{i}", "a" * 17000) for i in range(4)]
        sid = c.conn.get_next_available_stream_id()
        c.conn.send_headers(sid, request_headers(self.port, "GET", "/ok", big), end_stream=True)
        wire = c.conn.data_to_send()
        frames = parse_frames(wire)
        self.assertEqual([t for t, _, _, _ in frames][0], HEADERS)
        self.assertIn(CONTINUATION, [t for t, _, _, _ in frames])
        self.assertGreater(sum(len(p) for _, _, _, p in frames), 65536)
        c.sock.sendall(wire)
        s = c.response(sid)
        self.assertEqual(s.status, 431, s)
        self.assertTrue(s.ended, s)
        c.conn.encoder.encode = encode
        # The connection (and its HPACK state) is fine afterwards.
        self.assertOk(c.get("/ok"))
        self.assertIsNone(c.terminated)

    def test_long_path_is_414(self):
        c = self.client()
        s = c.get("/ok?" + "a" * 9000)
        self.assertEqual(s.status, 414, s)
        self.assertOk(c.get("/ok?" + "a" * 8000))

    def test_body_over_max_is_413(self):
        c = self.client()
        # Declared too large: refused from the head alone, no body byte needed.
        sid = c.request("POST", "/read-body", [("content-length", "5000")], end_stream=False)
        s = c.response(sid, timeout=scaled(5))
        self.assertEqual(s.status, 413, s)
        self.assertTrue(s.ended, s)
        c.reset(sid)
        # Undeclared, found too large while the app reads.
        s = c.response(c.request("POST", "/read-body", body=b"x" * 5000))
        self.assertEqual(s.status, 413, s)
        # Within the limit.
        s = c.response(c.request("POST", "/read-body", body=b"x" * 1000))
        self.assertOk(s, None)
        self.assertTrue(bytes(s.data).startswith(b"len=1000 "), s)
        self.assertIsNone(c.terminated)

    def test_no_data_for_head_204_304(self):
        raw = self.raw()
        cases = {1: ("HEAD", "/ok"), 3: ("GET", "/status/204"), 5: ("GET", "/status/304"),
                 7: ("HEAD", "/big/100000")}
        for sid, (method, path) in cases.items():
            raw.send_headers(sid, request_headers(self.port, method, path))
        raw.send_headers(9, request_headers(self.port, "GET", "/ok"))
        frames = raw.response(9)
        self.assertEqual(body_of(frames), b"ok")
        for sid, (method, path) in cases.items():
            got = [f for f in raw.frames if f.stream == sid]
            if not any(f.end_stream or f.type == RST_STREAM for f in got):
                got += raw.response(sid)
            self.assertEqual([FRAME_NAMES[f.type] for f in got], ["HEADERS"],
                             f"{method} {path}: {got}")
            self.assertTrue(got[0].end_stream, got)
        self.assertEqual([f for f in raw.frames if f.stream == 1][0].header("content-length"),
                         "2")
        self.assertEqual([f for f in raw.frames if f.stream == 3][0].header(":status"), "204")
        self.assertEqual([f for f in raw.frames if f.stream == 5][0].header(":status"), "304")

    def test_response_header_names_lowercase_no_connection_headers(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/h2-conn-headers"))
        frames = raw.response(1)
        head = frames[0].headers
        self.assertEqual(body_of(frames), b"ok")
        names = [n for n, _ in head]
        self.assertEqual(names, [n.lower() for n in names], head)
        self.assertIn(("x-upper-case", "Yes"), head)
        self.assertNotIn("connection", names)
        self.assertNotIn("keep-alive", names)
        raw.send_headers(3, request_headers(self.port, "GET", "/headers-out"))
        head = raw.response(3)[0].headers
        self.assertEqual([v for n, v in head if n == "x-multi"], ["a", "b"], head)
        self.assertIn(("x-case", "MiXeD"), head)
        self.assertEqual([n for n, _ in head], [n.lower() for n, _ in head], head)


class RapidReset(H2TestCase):
    def test_rapid_reset_gets_goaway_enhance_your_calm(self):
        raw = self.raw()
        batch = bytearray()
        for i in range(300):
            sid = 1 + 2 * i
            batch += raw.headers_frame(sid, request_headers(self.port, "GET", "/ok"))
            batch += frame_bytes(RST_STREAM, 0, sid, struct.pack("!I", CANCEL))
        try:
            raw.send(bytes(batch))
        except (BrokenPipeError, ConnectionResetError):
            pass
        frames = raw.read_until_close(timeout=scaled(10))
        goaways = [f for f in frames if f.type == GOAWAY]
        self.assertTrue(goaways, f"no GOAWAY; last frames {frames[-10:]}")
        self.assertEqual(goaways[-1].error_code, ENHANCE_YOUR_CALM, goaways)
        # Other connections are served.
        self.assertOk(self.client().get("/ok"))
        self.assertEqual(get(self.port, "/ok").status, 200)
        err = self.srv.stderr()
        self.assertEqual(err.count("rapid reset"), 1, err)


class GracefulShutdown(H2TestCase):
    # A long keep-alive, so that only the end of the last stream can explain a prompt close.
    server_args = ("--timeout-keep-alive", "30")

    def test_sigterm_goaway_then_inflight_stream_completes(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/slow-ms/1500"))
        self.srv.wait_stderr("slow-ms 1500 started", timeout=scaled(10))
        self.srv.send_signal(signal.SIGTERM)
        first = raw.read_until(lambda f: f.type == GOAWAY, timeout=scaled(5),
                               what="the first GOAWAY")[-1]
        self.assertEqual(first.error_code, NO_ERROR, first)
        # The first GOAWAY comes at once, not only once the stream is done.
        self.assertFalse([f for f in raw.frames if f.stream == 1], raw.frames)
        stream1 = raw.response(1, timeout=scaled(10))
        self.assertEqual(status_of(stream1), 200, stream1)
        self.assertEqual(body_of(stream1), b"slept 1500")
        self.assertTrue(stream1[-1].end_stream, stream1)
        # Then, promptly, the final GOAWAY naming that stream, and the close.
        try:
            final = raw.read_until(lambda f: f.type == GOAWAY, timeout=scaled(2),
                                   what="the final GOAWAY within 2 s of the last stream's end")[-1]
        except AssertionError:
            raw.close()
            self.srv.wait_exit(scaled(10))  # so that the cleanup does not signal a second time
            raise
        self.assertEqual((final.error_code, final.last_stream_id), (NO_ERROR, 1), final)
        raw.read_until_close(timeout=scaled(2))
        raw.close()
        self.srv.wait_exit(scaled(5))
        self.srv.check(0)


class GracefulShutdownTimeout(H2TestCase):
    server_args = ("--timeout-graceful-shutdown", "1")

    def test_stalled_stream_cancelled_after_the_graceful_timeout(self):
        # A response stuck on a client that never reopens its window cannot finish: after the
        # graceful timeout the connection is cancelled, the app sees the disconnect, exit 0.
        c = self.client()
        sid = c.conn.get_next_available_stream_id()
        c.no_ack.add(sid)
        c.request("GET", f"/big/{10 << 20}")
        c.wait(lambda: len(c.stream(sid).data) >= 65535, what="the first window of /big")
        t0 = time.monotonic()
        self.srv.send_signal(signal.SIGTERM)
        c.wait(lambda: c.terminated is not None, timeout=scaled(5), what="a GOAWAY")
        self.assertEqual(c.terminated.error_code, NO_ERROR)
        self.srv.wait_exit(scaled(10))
        elapsed = time.monotonic() - t0
        self.srv.check(0)
        self.assertGreater(elapsed, 0.8, "exited before the graceful timeout")
        self.assertLess(elapsed, scaled(5), "did not exit soon after the graceful timeout")
        self.assertIn("timeout graceful shutdown exceeded", self.srv.stderr())


class IdleTimeout(H2TestCase):
    server_args = ("--timeout-keep-alive", "1")

    def test_idle_connection_closed_with_goaway(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/ok"))
        self.assertEqual(body_of(raw.response(1)), b"ok")
        t0 = time.monotonic()
        frames = raw.read_until_close(timeout=scaled(6))
        elapsed = time.monotonic() - t0
        goaways = [f for f in frames if f.type == GOAWAY]
        self.assertTrue(goaways, frames)
        self.assertEqual(goaways[-1].error_code, NO_ERROR)
        self.assertEqual(goaways[-1].last_stream_id, 1)
        self.assertGreater(elapsed, 0.7)

    def test_stream_in_progress_is_not_idle(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/slow-ms/2000"))
        frames = raw.response(1, timeout=scaled(10))
        self.assertEqual((status_of(frames), body_of(frames)), (200, b"slept 2000"))
        self.assertFalse([f for f in raw.frames if f.type == GOAWAY], raw.frames)


class RequestHeaderTimeout(H2TestCase):
    server_args = ("--timeout-keep-alive", "30", "--timeout-request-header", "1")

    def test_incomplete_header_block_closed_after_header_timeout(self):
        raw = self.raw()
        # The server's SETTINGS first: our ACK must not land inside the open header block.
        raw.read_until(lambda f: f.type == SETTINGS and not f.flags & FLAG_ACK)
        # HEADERS without END_HEADERS, and no CONTINUATION ever.
        raw.send_headers(1, request_headers(self.port, "GET", "/ok"), end_headers=False)
        t0 = time.monotonic()
        frames = raw.read_until_close(timeout=scaled(6))
        self.assertGreater(time.monotonic() - t0, 0.7, frames)
        goaways = [f for f in frames if f.type == GOAWAY]
        self.assertTrue(goaways, frames)
        self.assertNotEqual(goaways[-1].error_code, PROTOCOL_ERROR, goaways)
        self.srv.wait_stderr("Request header timeout", timeout=scaled(5))


class EarlyHints(H2TestCase):
    LINKS = ["</style.css>; rel=preload; as=style", "</script.js>; rel=preload; as=script"]

    def test_early_hints_over_h2(self):
        raw = self.raw()
        raw.send_headers(1, request_headers(self.port, "GET", "/early-hint"))
        frames = [f for f in raw.response(1) if f.type in (HEADERS, DATA)]
        self.assertEqual(frames[0].type, HEADERS, frames)
        self.assertEqual(frames[0].header(":status"), "103", frames)
        self.assertFalse(frames[0].end_stream)
        self.assertEqual([v for n, v in frames[0].headers if n == "link"], self.LINKS)
        self.assertEqual(frames[1].header(":status"), "200", frames)
        self.assertEqual(body_of(frames), b"early_hint=0 ext=1")
        # python-h2 sees the same: an informational response, then the final one.
        s = self.client().get("/early-hint")
        self.assertEqual(len(s.informational), 1, s)
        self.assertEqual([v for n, v in s.informational[0] if n == "link"], self.LINKS)
        self.assertEqual(s.order[0], "info")
        self.assertOk(s, b"early_hint=0 ext=1")

    def test_early_hints_over_http11(self):
        p = curl("-v", f"http://127.0.0.1:{self.port}/early-hint")
        self.assertEqual(p.returncode, 0, p.stderr)
        err = p.stderr.decode("latin-1")
        self.assertEqual(p.stdout, b"early_hint=0 ext=1", err)
        self.assertIn("< HTTP/1.1 103 Early Hints", err)
        for link in self.LINKS:
            self.assertIn(f"< link: {link}", err)
        self.assertLess(err.index("< HTTP/1.1 103"), err.index("< HTTP/1.1 200"))


class Push(H2TestCase):
    def test_push_promise_and_pushed_response(self):
        c = self.client(push=True)
        s = c.get("/scope")
        self.assertTrue(int(parse_scope(bytes(s.data))["extensions"]) & EXT_PUSH, s)
        sid = c.request("GET", "/push")
        s = c.response(sid)
        self.assertOk(s, b"push=0")
        c.wait(lambda: c.pushes, what="a PUSH_PROMISE")
        self.assertEqual(len(c.pushes), 1, c.pushes)
        promise = c.pushes[0]
        self.assertEqual(promise.parent_stream_id, sid)
        req = dict(_str_headers(promise.headers))
        self.assertEqual((req[":method"], req[":path"]), ("GET", "/ok"), promise.headers)
        self.assertEqual(req.get("x-pushed-by"), "push", promise.headers)
        pushed = c.response(promise.pushed_stream_id)
        self.assertEqual(pushed.id % 2, 0)
        self.assertOk(pushed, b"ok")

    def test_push_disabled_by_client(self):
        c = self.client(push=False)
        s = c.get("/scope")
        self.assertFalse(int(parse_scope(bytes(s.data))["extensions"]) & EXT_PUSH, s)
        self.assertOk(c.get("/push"), b"push=absent")
        c.idle(0.3)
        self.assertEqual(c.pushes, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
