"""WebSocket over HTTP/2 (RFC 8441) through the real runner over loopback: an h2c connection by
prior knowledge, SETTINGS_ENABLE_CONNECT_PROTOCOL from the server, an extended CONNECT with
":protocol websocket" per WebSocket, and RFC 6455 frames carried in DATA frames both ways.

Client: python3-h2 (H2Client below) on a non-blocking socket, with the harness's raw frame
encoder and decoder (ws_frame, ws_parse_frame) for the WebSocket bytes, and zlib for
permessage-deflate. Flow control is explicit: a stream's received DATA is acknowledged (window
given back) as it arrives unless the test holds the stream (H2Client.hold), which is how the
backpressure test plays a client that does not read. Apps: testapp's /ws/* routes (outcomes in
GET /log, read over HTTP/1.1 on a separate connection) and ws_echo.so.

Mirrors test_websocket.py (HTTP/1.1) where the behaviour is the same, and adds what only HTTP/2
has: the stream ends (END_STREAM, RST_STREAM) instead of the TCP connection, and the connection
stays usable for other streams after a WebSocket ends, fails or is reset.

Only 127.0.0.1; every wait is bounded; each server is stopped and checked for sanitizer reports.
Run with /usr/bin/python3 (Debian's python3-h2).
"""

import os
import select
import signal
import socket
import time
import unittest
import zlib

from casgi_harness import (assemble_ws_message, rss_kib, HOST, IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,
                           OP_TEXT, TESTAPP, WS_ECHO, ServerTestCase, get, parse_codes,
                           parse_scope, require_file, scaled, wait_log, ws_close_payload,
                           ws_frame, ws_parse_frame)

try:
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
    HAVE_H2 = True
except ImportError:  # pragma: no cover - reported as a skip
    HAVE_H2 = False

SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8
CANCEL = 0x8


def setUpModule():
    if not HAVE_H2:
        raise unittest.SkipTest("python3-h2 is not installed (run with /usr/bin/python3)")
    require_file(TESTAPP, "tests/testapp.so")


# ---------------------------------------------------------------------------------------------
# The client: one HTTP/2 connection, many streams
# ---------------------------------------------------------------------------------------------

def _s(v):
    return v.decode("latin-1") if isinstance(v, (bytes, bytearray)) else v


class H2Stream:
    """What the client knows about one stream. `data` holds the DATA received and not yet taken
    (a WebSocket's byte stream, or a response body)."""

    def __init__(self, sid):
        self.id = sid
        self.status = None
        self.headers = None          # [(name, value)] as str
        self.informational = []
        self.data = bytearray()
        self.received = 0            # DATA bytes in all
        self.ended = False           # END_STREAM from the server
        self.reset_code = None       # RST_STREAM from the server
        self.local_reset = False     # we sent RST_STREAM
        self.outbox = bytearray()    # DATA waiting for window
        self.end_pending = False     # END_STREAM after the outbox
        self.local_ended = False
        self.hold = False            # withhold WINDOW_UPDATE for this stream
        self.unacked = 0             # flow-controlled bytes held back

    @property
    def done(self):
        """The server is done with the stream (END_STREAM or RST_STREAM)."""
        return self.ended or self.reset_code is not None

    def header(self, name):
        for k, v in self.headers or ():
            if k == name:
                return v
        return None

    def header_all(self, name):
        return [v for k, v in self.headers or () if k == name]

    def __repr__(self):
        return (f"<stream {self.id} status={self.status} headers={self.headers} "
                f"received={self.received} buffered={bytes(self.data[:60])!r} "
                f"ended={self.ended} reset={self.reset_code} outbox={len(self.outbox)}>")


class H2Client:
    """An h2c connection (prior knowledge) driven by python-h2 over a non-blocking socket.

    conn_window: extra connection-level receive window given to the server at once (so that a
    held stream never blocks the others through the connection window).
    """

    def __init__(self, port, timeout=IO_TIMEOUT, conn_window=1 << 24):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(cfg)
        self.conn.initiate_connection()
        if conn_window:
            self.conn.increment_flow_control_window(conn_window)
        self.wbuf = bytearray(self.conn.data_to_send())
        self.rbuf = bytearray()
        self.streams = {}
        self.server_settings = {}
        self.settings_seen = False
        self.goaways = []            # [(error_code, last_stream_id)]
        self.eof = False
        self.reset = False
        self.log = []                # the last events, for failure messages

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def describe(self):
        return (f"eof={self.eof} reset={self.reset} goaways={self.goaways}\n  streams: "
                + "\n  ".join(repr(s) for s in self.streams.values())
                + "\n  last events: " + "\n    ".join(self.log[-25:]))

    # ---- engine -------------------------------------------------------------------------

    def _note(self, text):
        self.log.append(text)
        if len(self.log) > 200:
            del self.log[:100]

    def _flush(self):
        """Moves queued DATA into h2 as far as the server's windows allow."""
        for st in list(self.streams.values()):
            while st.outbox or (st.end_pending and not st.local_ended):
                if st.reset_code is not None or st.local_reset:
                    st.outbox.clear()
                    st.end_pending = False
                    break
                try:
                    window = self.conn.local_flow_control_window(st.id)
                    n = min(window, self.conn.max_outbound_frame_size, len(st.outbox))
                    if n == 0 and st.outbox:
                        break
                    end = st.end_pending and n == len(st.outbox)
                    self.conn.send_data(st.id, bytes(st.outbox[:n]), end_stream=end)
                except h2.exceptions.StreamClosedError:
                    st.outbox.clear()
                    st.end_pending = False
                    break
                del st.outbox[:n]
                if end:
                    st.local_ended = True
        self.wbuf += self.conn.data_to_send()

    def _handle(self, ev):
        sid = getattr(ev, "stream_id", None)
        st = self.streams.get(sid) if sid else None
        if isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.server_settings[int(k)] = v.new_value
            self.settings_seen = True
            self._note(f"SETTINGS {dict(self.server_settings)}")
        elif isinstance(ev, h2.events.ResponseReceived) and st is not None:
            st.headers = [(_s(k), _s(v)) for k, v in ev.headers]
            st.status = int(st.header(":status"))
            self._note(f"HEADERS stream={sid} {st.headers}")
        elif isinstance(ev, h2.events.InformationalResponseReceived) and st is not None:
            st.informational.append([(_s(k), _s(v)) for k, v in ev.headers])
        elif isinstance(ev, h2.events.TrailersReceived) and st is not None:
            self._note(f"TRAILERS stream={sid}")
        elif isinstance(ev, h2.events.DataReceived):
            self._note(f"DATA stream={sid} len={len(ev.data)}")
            if st is not None:
                st.data += ev.data
                st.received += len(ev.data)
            if st is not None and st.hold:
                st.unacked += ev.flow_controlled_length
            elif ev.flow_controlled_length:
                self.conn.acknowledge_received_data(ev.flow_controlled_length, sid)
        elif isinstance(ev, h2.events.StreamEnded):
            self._note(f"END_STREAM stream={sid}")
            if st is not None:
                st.ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self._note(f"RST_STREAM stream={sid} error={int(ev.error_code)} "
                       f"remote={ev.remote_reset}")
            if st is not None and ev.remote_reset:
                st.reset_code = int(ev.error_code)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self._note(f"GOAWAY error={int(ev.error_code)} last={ev.last_stream_id}")
            self.goaways.append((int(ev.error_code), ev.last_stream_id))

    def _feed(self, data):
        """Gives h2 the received bytes one frame at a time. python-h2 treats any GOAWAY it
        receives as the end of the connection and refuses every later frame, but after a
        graceful GOAWAY (RFC 9113 6.8) the streams it spares go on: so after a GOAWAY the
        connection's state machine is put back to where it was, and the tests judge the rest."""
        self.rbuf += data
        while len(self.rbuf) >= 9:
            n = 9 + int.from_bytes(self.rbuf[:3], "big")
            if len(self.rbuf) < n:
                break
            frame = bytes(self.rbuf[:n])
            del self.rbuf[:n]
            state = self.conn.state_machine.state
            for ev in self.conn.receive_data(frame):
                self._handle(ev)
                if isinstance(ev, h2.events.ConnectionTerminated):
                    self.conn.state_machine.state = state

    def _write_some(self):
        """Writes what the socket takes now, without waiting."""
        self.wbuf += self.conn.data_to_send()
        try:
            while self.wbuf:
                n = self.sock.send(self.wbuf)
                if n <= 0:
                    break
                del self.wbuf[:n]
        except BlockingIOError:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.reset = True
            self.eof = True
            self.wbuf.clear()

    def push(self, timeout=None):
        """Waits until everything queued (within the windows) is on the socket."""
        self._flush()
        self.wait(lambda: not self.wbuf, timeout, "our bytes to go out")

    def _io(self, deadline):
        """One round of socket I/O: writes what it can, feeds what arrives to h2. Raises
        socket.timeout at the deadline."""
        self._flush()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            want_w = [self.sock] if self.wbuf else []
            r, w, _ = select.select([self.sock], want_w, [], remaining)
            progressed = False
            if w:
                try:
                    n = self.sock.send(self.wbuf)
                    del self.wbuf[:n]
                    progressed = n > 0
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    self.reset = True
                    self.eof = True
                    self.wbuf.clear()
                    return
            if r:
                try:
                    data = self.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    self.reset = True
                    data = b""
                if not data:
                    self.eof = True
                    return
                self._feed(data)
                self._flush()
                return
            if progressed and not self.wbuf:
                return

    def wait(self, pred, timeout=None, what="the condition"):
        """Pumps until pred() is true (returns its value); fails on timeout or EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            v = pred()
            if v:
                return v
            if self.eof:
                raise AssertionError(f"connection closed while waiting for {what}\n"
                                     + self.describe())
            try:
                self._io(deadline)
            except socket.timeout:
                raise AssertionError(f"no {what} within {timeout or self.timeout} s\n"
                                     + self.describe()) from None

    def idle(self, seconds):
        """Pumps for `seconds` (answering nothing special); returns early only on EOF."""
        deadline = time.monotonic() + seconds
        while not self.eof:
            try:
                self._io(deadline)
            except socket.timeout:
                return

    def settings(self):
        self.wait(lambda: self.settings_seen, what="SETTINGS from the server")
        return self.server_settings

    # ---- streams ------------------------------------------------------------------------

    def _open(self, headers, end_stream=False):
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = H2Stream(sid)
        self.conn.send_headers(sid, headers, end_stream=end_stream)
        self.streams[sid].local_ended = end_stream
        self._write_some()
        return sid

    def request(self, method, path, body=None, headers=()):
        hs = [(":method", method), (":scheme", "http"), (":authority", f"{HOST}:{self.port}"),
              (":path", path)] + list(headers)
        sid = self._open(hs, end_stream=body is None)
        if body is not None:
            self.send(sid, body, end_stream=True)
        return sid

    def response(self, sid, timeout=None):
        """Waits for the end of a plain request's stream; returns the H2Stream."""
        st = self.streams[sid]
        self.wait(lambda: st.done, timeout, f"end of stream {sid}")
        return st

    def get(self, path, timeout=None):
        return self.response(self.request("GET", path), timeout)

    def connect_ws(self, path="/ws/echo", protocols=None, extensions=None, version="13",
                   protocol="websocket", authority=None, extra=(), first=b""):
        """Sends an extended CONNECT (RFC 8441 4); `first` goes out as DATA right behind it,
        before any answer. Returns the stream id."""
        hs = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", "http"),
              (":path", path), (":authority", authority or f"{HOST}:{self.port}")]
        if version is not None:
            hs.append(("sec-websocket-version", version))
        if protocols:
            hs.append(("sec-websocket-protocol", protocols))
        if extensions:
            hs.append(("sec-websocket-extensions", extensions))
        sid = self._open(hs + list(extra))
        if first:
            self.send(sid, first)
        return sid

    def answer(self, sid, timeout=None):
        """Waits for the response HEADERS (or the stream's end without them)."""
        st = self.streams[sid]
        self.wait(lambda: st.status is not None or st.done, timeout, f"answer on stream {sid}")
        return st

    def open_ws(self, path="/ws/echo", **kw):
        """connect_ws + answer; fails unless the answer is 200. Returns the stream id."""
        sid = self.connect_ws(path, **kw)
        st = self.answer(sid)
        if st.status != 200 or st.done:
            raise AssertionError(f"extended CONNECT to {path} not accepted: {st!r}\n"
                                 + self.describe())
        return sid

    def send(self, sid, data, end_stream=False):
        st = self.streams[sid]
        st.outbox += data
        st.end_pending = st.end_pending or end_stream
        self._flush()
        self._write_some()

    def end(self, sid):
        self.send(sid, b"", end_stream=True)

    def rst(self, sid, code=CANCEL):
        st = self.streams[sid]
        st.local_reset = True
        st.outbox.clear()
        self.conn.reset_stream(sid, error_code=code)
        self.push()

    def hold(self, sid):
        self.streams[sid].hold = True

    def release(self, sid):
        """Gives back the window held for `sid` and acknowledges from now on."""
        st = self.streams[sid]
        st.hold = False
        if st.unacked:
            self.conn.acknowledge_received_data(st.unacked, sid)
            st.unacked = 0
        self._flush()
        self._write_some()

    # ---- WebSocket frames ---------------------------------------------------------------

    def send_frame(self, sid, opcode, payload=b"", end_stream=False, **kw):
        self.send(sid, ws_frame(opcode, payload, **kw), end_stream=end_stream)

    def send_close(self, sid, code=1000, reason=b"", end_stream=False):
        self.send_frame(sid, OP_CLOSE, ws_close_payload(code, reason), end_stream=end_stream)

    def read_frame(self, sid, timeout=None):
        """The next WebSocket frame on `sid`; None when the stream ended (END_STREAM or
        RST_STREAM) first. Fails on a timeout, a masked frame, and a stream that ends inside a
        frame."""
        st = self.streams[sid]
        out = []

        def ready():
            parsed = ws_parse_frame(st.data)
            if parsed is not None:
                frame, used = parsed
                del st.data[:used]
                out.append(frame)
                return True
            return st.done
        self.wait(ready, timeout, f"WebSocket frame on stream {sid}")
        if not out:
            if st.data:
                raise AssertionError(f"stream {sid} ended inside a frame: "
                                     f"{bytes(st.data[:100])!r}")
            return None
        if out[0].masked:
            raise AssertionError(f"masked frame from the server: {out[0]!r}")
        return out[0]

    def read_message(self, sid, timeout=None, answer_pings=True):
        """(opcode, payload) of the next data message (fragments joined, pings answered, pongs
        skipped); ("close", Frame); (None, None) when the stream ended first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return assemble_ws_message(
            lambda: self.read_frame(sid, max(0.01, deadline - time.monotonic())),
            lambda payload: self.send_frame(sid, OP_PONG, payload), answer_pings)

    def wait_done(self, sid, timeout=None):
        st = self.streams[sid]
        self.wait(lambda: st.done, timeout, f"end of stream {sid} (END_STREAM or RST_STREAM)")
        return st

    def expect_close(self, sid, timeout=None, reply=True):
        """Reads until the server's close frame; returns (code, reason, data frames before it);
        code None when the stream ended without one. With `reply`, answers the close with END_STREAM
        and then requires the server to end the stream."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = []
        while True:
            f = self.read_frame(sid, max(0.01, deadline - time.monotonic()))
            if f is None:
                return None, b"", data
            if f.opcode == OP_CLOSE:
                break
            if f.opcode not in (OP_PING, OP_PONG):
                data.append(f)
        if reply:
            # The reply goes in its own DATA frame and END_STREAM follows the server's: the
            # combined forms have tests of their own (Close).
            st = self.streams[sid]
            if st.reset_code is None and not st.local_ended:
                self.send_close(sid, f.close_code if f.close_code not in (None, 1005) else 1000)
            self.wait_done(sid, max(1.0, deadline - time.monotonic()))
            self.finish(sid)
        return f.close_code, f.close_reason, data

    def finish(self, sid):
        """Our END_STREAM, unless the stream is reset or we ended it already."""
        st = self.streams[sid]
        if st.reset_code is None and not st.local_reset and not st.local_ended \
                and not st.end_pending:
            self.end(sid)
            self.push()

    def close_ws(self, sid, code=1000, reason=b"", timeout=None):
        """A clean close from our side: close frame, the server's close and END_STREAM, then
        ours. Returns the server's close code (None when the stream ended without one)."""
        self.send_close(sid, code, reason)
        got, _, _ = self.expect_close(sid, timeout, reply=False)
        self.wait_done(sid, timeout)
        self.finish(sid)
        return got


def log_line(port, needle):
    """The first line of testapp's log containing `needle`, waiting for it."""
    log = wait_log(port, needle)
    for line in log.splitlines():
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} vanished from the log")


def text_of(n, seed=0):
    unit = "abc\u00e9\u20ac\U0001f600xyz " + str(seed)
    return (unit * (n // len(unit) + 1))[:n].encode("utf-8")


def deflate(data):
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class H2TestCase(ServerTestCase):
    """A server per test (TESTAPP unless the class says otherwise) and client helpers."""

    ARGS = ()

    def setUp(self):
        self.srv = self.start_server(*self.ARGS)
        self.port = self.srv.port

    def client(self, port=None, **kw):
        c = H2Client(self.port if port is None else port, **kw)
        self.addCleanup(c.close)
        return c

    def assertEcho(self, c, sid, opcode, payload, timeout=None):
        c.send_frame(sid, opcode, payload)
        got = c.read_message(sid, timeout)
        self.assertEqual(got[0], opcode, f"{got[0]!r} {got[1]!r}\n{c.describe()}")
        self.assertTrue(got[1] == payload,
                        f"echo differs: {len(got[1])} bytes back for {len(payload)}")

    def assertConnectionUsable(self, c, tag):
        """A plain GET and a new WebSocket on the same connection both work."""
        st = c.get("/ok")
        self.assertEqual((st.status, bytes(st.data)), (200, b"ok"), f"{st!r}\n{c.describe()}")
        sid = c.open_ws(f"/ws/echo?id={tag}")
        self.assertEcho(c, sid, OP_TEXT, b"the connection still works")
        self.assertEqual(c.close_ws(sid), 1000, c.describe())
        self.assertTrue(c.streams[sid].ended, c.streams[sid])


# ---------------------------------------------------------------------------------------------
# 1. SETTINGS_ENABLE_CONNECT_PROTOCOL
# ---------------------------------------------------------------------------------------------

class Settings(ServerTestCase):
    def test_enable_connect_protocol_is_advertised(self):
        srv = self.start_server()
        with H2Client(srv.port) as c:
            self.assertEqual(c.settings().get(SETTINGS_ENABLE_CONNECT_PROTOCOL), 1,
                             c.describe())

    def test_ws_none_advertises_0_and_refuses_extended_connect(self):
        srv = self.start_server("--ws", "none")
        with H2Client(srv.port) as c:
            self.assertEqual(c.settings().get(SETTINGS_ENABLE_CONNECT_PROTOCOL, 0), 0,
                             c.describe())
            sid = c.connect_ws("/ws/echo?id=none", first=ws_frame(OP_TEXT, "hello?"))
            st = c.answer(sid)
            # Refused: a 4xx answer, or the stream reset as malformed (RFC 8441 3: :protocol
            # without the setting); never a WebSocket.
            if st.status is not None:
                self.assertTrue(400 <= st.status < 500, f"{st!r}\n{c.describe()}")
                c.wait_done(sid)
                self.assertIsNone(ws_parse_frame(st.data), st)
            else:
                self.assertEqual(st.reset_code, 0x1, f"not PROTOCOL_ERROR: {st!r}")
            # The connection survives: plain HTTP on it works.
            ok = c.get("/ok")
            self.assertEqual((ok.status, bytes(ok.data)), (200, b"ok"), c.describe())

    def test_unknown_protocol_is_refused(self):
        srv = self.start_server()
        with H2Client(srv.port) as c:
            sid = c.connect_ws("/ws/echo", protocol="not-websocket")
            st = c.answer(sid)
            c.wait_done(sid)
            self.assertEqual(st.status, 400, f"{st!r}\n{c.describe()}")
            self.assertTrue(st.ended, st)
            self.assertEqual(c.get("/ok").status, 200)


# ---------------------------------------------------------------------------------------------
# 2, 4, 5. The handshake
# ---------------------------------------------------------------------------------------------

class Handshake(H2TestCase):
    def test_accept_is_200_without_http1_fields(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/echo?id=accept")
            st = c.answer(sid)
            self.assertEqual(st.status, 200, f"{st!r}\n{c.describe()}")
            self.assertFalse(st.done, "the accepted stream ended")
            names = [n for n, _ in st.headers]
            for name in ("sec-websocket-accept", "upgrade", "connection", "content-length",
                         "transfer-encoding", "sec-websocket-protocol",
                         "sec-websocket-extensions"):
                self.assertNotIn(name, names, st.headers)
            for n in names:
                self.assertEqual(n, n.lower(), st.headers)
            # No Sec-WebSocket-Key was sent (RFC 8441 5), and the WebSocket works.
            self.assertEcho(c, sid, OP_TEXT, b"hi over h2")
            self.assertEcho(c, sid, OP_BINARY, b"\x00\x01\xff")

    def test_frames_sent_before_the_answer_are_kept(self):
        first = (ws_frame(OP_TEXT, "first frame") + ws_frame(OP_BINARY, b"\x01\x02")
                 + ws_frame(OP_TEXT, "third"))
        with self.client() as c:
            sid = c.connect_ws("/ws/echo?id=early", first=first)
            self.assertEqual(c.answer(sid).status, 200, c.describe())
            self.assertEqual(c.read_message(sid), (OP_TEXT, b"first frame"))
            self.assertEqual(c.read_message(sid), (OP_BINARY, b"\x01\x02"))
            self.assertEqual(c.read_message(sid), (OP_TEXT, b"third"))

    def test_websocket_scope(self):
        with self.client() as c:
            sid = c.open_ws("/ws/scope?a=1&b=%20", protocols="p1, p2.x",
                            authority="example.test:8443", extra=[("x-custom", "v1")])
            op, text = c.read_message(sid)
            self.assertEqual(op, OP_TEXT)
            client_port = c.sock.getsockname()[1]
        s = parse_scope(text)
        self.assertEqual(s["type"], "websocket")
        self.assertEqual(s["scheme"], "ws")
        self.assertEqual(s["asgi_version"], "3.0")
        self.assertEqual(s["http_version"], "2")
        self.assertEqual(s["path"], "/ws/scope")
        self.assertEqual(s["raw_path"], "/ws/scope")
        self.assertEqual(s["query_string"], "a=1&b=%20")
        self.assertEqual(s["client_host"], "127.0.0.1")
        self.assertEqual(int(s["client_port"]), client_port)
        self.assertEqual(int(s["server_port"]), self.port)
        self.assertTrue(int(s["extensions"]) & 2, "CASGI_EXT_WEBSOCKET_HTTP_RESPONSE not set")
        self.assertEqual(s["num_subprotocols"], "2")
        self.assertEqual([v for k, v in (line.partition("=")[::2] for line in
                                         text.decode().splitlines()) if k == "subprotocol"],
                         ["p1", "p2.x"])
        headers = s["headers"]
        names = [n for n, _ in headers]
        self.assertIn(("host", "example.test:8443"), headers)
        self.assertIn(("x-custom", "v1"), headers)
        self.assertIn(("sec-websocket-version", "13"), headers)
        self.assertFalse([n for n in names if n.startswith(":")], headers)
        self.assertNotIn("sec-websocket-key", names)

    def test_subprotocol_chosen_by_the_app(self):
        with self.client() as c:
            sid = c.open_ws("/ws/subprotocol", protocols="chat.v1, chat.v2, chat.v3")
            self.assertEqual(c.streams[sid].header_all("sec-websocket-protocol"), ["chat.v2"])
            self.assertEcho(c, sid, OP_TEXT, b"x")
            sid = c.open_ws("/ws/subprotocol", protocols="only-one")
            self.assertEqual(c.streams[sid].header_all("sec-websocket-protocol"), [])
            sid = c.open_ws("/ws/subprotocol")
            self.assertEqual(c.streams[sid].header_all("sec-websocket-protocol"), [])
            self.assertEcho(c, sid, OP_TEXT, b"y")

    def test_accept_with_extra_headers(self):
        with self.client() as c:
            sid = c.open_ws("/ws/accept-headers")
            self.assertEqual(c.streams[sid].header_all("x-test"), ["yes"])
            self.assertEcho(c, sid, OP_TEXT, b"x")

    def test_close_before_accept_is_403(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/reject?id=rej")
            st = c.wait_done(sid)
            self.assertEqual(st.status, 403, f"{st!r}\n{c.describe()}")
            self.assertTrue(st.ended, "a refusal must end with END_STREAM, not a reset")
            sid = c.connect_ws("/ws/no-such-route")
            self.assertEqual(c.wait_done(sid).status, 403)
            self.assertEqual(c.get("/ok").status, 200)
        self.assertEqual(parse_codes(log_line(self.port, "ws-reject[id=rej]").split(": ")[1]),
                         {"close": 0})

    def test_denial_response(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/deny?id=deny")
            st = c.wait_done(sid)
            self.assertEqual(st.status, 401, f"{st!r}\n{c.describe()}")
            self.assertTrue(st.ended, f"the denial body must end with END_STREAM: {st!r}")
            self.assertIsNone(st.reset_code, st)
            self.assertEqual(st.header("content-type"), "application/json", st.headers)
            self.assertEqual(bytes(st.data), b'{"error":"nope"}')
            for name in ("sec-websocket-accept", "upgrade", "connection", "transfer-encoding"):
                self.assertIsNone(st.header(name), st.headers)
            cl = st.header("content-length")
            self.assertIn(cl, (None, "16"), st.headers)
            self.assertEqual(c.get("/ok").status, 200)
        line = log_line(self.port, "ws-deny[id=deny]")
        self.assertEqual(parse_codes(line.split("]: ")[1]),
                         {"extension": 1, "start": 0, "body1": 0, "body2": 0})

    def test_app_failure_before_accept_is_500(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/fail-before-accept")
            st = c.wait_done(sid)
            self.assertEqual(st.status, 500, f"{st!r}\n{c.describe()}")
            self.assertTrue(st.ended, st)
            self.assertConnectionUsable(c, "after-fail")

    def test_version_8_gets_426_naming_13(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/echo?id=v8", version="8")
            st = c.wait_done(sid)
            self.assertEqual(st.status, 426, f"{st!r}\n{c.describe()}")
            self.assertEqual(st.header("sec-websocket-version"), "13", st.headers)
            self.assertTrue(st.ended, st)
            self.assertEqual(c.get("/ok").status, 200)

    def test_missing_version_gets_426(self):
        with self.client() as c:
            sid = c.connect_ws("/ws/echo?id=nov", version=None)
            st = c.wait_done(sid)
            self.assertEqual(st.status, 426, f"{st!r}\n{c.describe()}")
            self.assertEqual(st.header("sec-websocket-version"), "13", st.headers)
            self.assertEqual(c.get("/ok").status, 200)


# ---------------------------------------------------------------------------------------------
# 3. Echo
# ---------------------------------------------------------------------------------------------

class Echo(H2TestCase):
    def test_text_and_binary_small(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=small")
            for op, payload in ((OP_TEXT, b"hello"), (OP_BINARY, b"\x00\x01\x02\xff"),
                                (OP_TEXT, b""), (OP_BINARY, b""), (OP_TEXT, text_of(300)),
                                (OP_BINARY, b"\x80\x81 not utf-8")):
                self.assertEcho(c, sid, op, payload)

    def test_large_messages_cross_the_flow_control_windows(self):
        # 64 KiB is the default stream window both ways: these messages need WINDOW_UPDATEs
        # from both sides to get through.
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=large")
            for op, payload in ((OP_BINARY, os.urandom(20000)),
                                (OP_TEXT, text_of(70000, 1)),
                                (OP_BINARY, os.urandom(300000)),
                                (OP_BINARY, b"\x00" * (1 << 20))):
                self.assertEcho(c, sid, op, payload, timeout=scaled(60))

    def test_many_messages_in_flight_keep_order(self):
        msgs = [(OP_TEXT if i % 2 else OP_BINARY,
                 (b"%d:" % i) + (text_of(i * 37 % 3000, i) if i % 2 else os.urandom(i * 53 % 5000)))
                for i in range(150)]
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=inflight")
            c.send(sid, b"".join(ws_frame(op, p) for op, p in msgs))
            got = [c.read_message(sid, timeout=scaled(30)) for _ in msgs]
        self.assertEqual(got, msgs)

    def test_fragmented_messages_are_reassembled(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=frag")
            euro = "\u20ac".encode()
            c.send(sid, ws_frame(OP_TEXT, b"frag-one " + euro[:1], fin=False)
                   + ws_frame(OP_CONT, euro[1:], fin=False) + ws_frame(OP_CONT, b"", fin=False)
                   + ws_frame(OP_CONT, b"end", fin=True))
            self.assertEqual(c.read_message(sid), (OP_TEXT, b"frag-one " + euro + b"end"))
            big = [os.urandom(30000) for _ in range(5)]
            data = ws_frame(OP_BINARY, big[0], fin=False)
            data += b"".join(ws_frame(OP_CONT, p, fin=False) for p in big[1:-1])
            data += ws_frame(OP_CONT, big[-1], fin=True)
            c.send(sid, data)
            op, back = c.read_message(sid, timeout=scaled(30))
            self.assertEqual(op, OP_BINARY)
            self.assertTrue(back == b"".join(big), "reassembled message differs")

    def test_frames_split_across_data_frames(self):
        # WebSocket frame boundaries have nothing to do with DATA frame boundaries.
        data = ws_frame(OP_TEXT, "x" * 300) + ws_frame(OP_BINARY, b"\x07" * 70000)
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=split")
            for i in range(40):
                c.send(sid, data[i:i + 1])
                c.idle(0.002)
            c.send(sid, data[40:1000])
            c.send(sid, data[1000:])
            self.assertEqual(c.read_message(sid), (OP_TEXT, b"x" * 300))
            self.assertEqual(c.read_message(sid), (OP_BINARY, b"\x07" * 70000))

    def test_ping_gets_pong(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=ping")
            c.send_frame(sid, OP_PING, b"payload-123")
            f = c.read_frame(sid)
            self.assertEqual((f.opcode, f.payload, f.fin), (OP_PONG, b"payload-123", True), f)
            # Control frames between fragments are answered at once.
            c.send(sid, ws_frame(OP_TEXT, b"one ", fin=False) + ws_frame(OP_PING, b"p1")
                   + ws_frame(OP_CONT, b"two", fin=True))
            f = c.read_frame(sid)
            self.assertEqual((f.opcode, f.payload), (OP_PONG, b"p1"), f)
            self.assertEqual(c.read_message(sid), (OP_TEXT, b"one two"))


class EchoWsEchoApp(H2TestCase):
    def setUp(self):
        require_file(WS_ECHO, "apps/ws_echo.so")
        self.srv = self.start_server(app=WS_ECHO)
        self.port = self.srv.port

    def test_ws_echo_app(self):
        with self.client() as c:
            sid = c.open_ws("/any/path?x=1")
            self.assertEcho(c, sid, OP_TEXT, b"hello over h2")
            self.assertEcho(c, sid, OP_BINARY, os.urandom(100000), timeout=scaled(30))
            c.send_close(sid, 1000)
            self.assertEqual(c.expect_close(sid)[0], 1000)


# ---------------------------------------------------------------------------------------------
# 6. Protocol errors end the stream, not the connection
# ---------------------------------------------------------------------------------------------

class ProtocolErrors(H2TestCase):
    def assertClosedWith(self, expected, frames, tag, before=None):
        with self.client() as c:
            sid = c.open_ws(f"/ws/echo?id={tag}")
            if before is not None:
                self.assertEcho(c, sid, OP_TEXT, before)
            c.send(sid, frames)
            code, _, data = c.expect_close(sid, reply=False)
            self.assertEqual(code, expected, c.describe())
            self.assertEqual(data, [], "the server echoed a message it should have refused")
            # After the close frame the stream ends: END_STREAM from the server, or RST_STREAM.
            c.wait_done(sid, scaled(10))
            c.finish(sid)
            self.assertEqual(c.goaways, [], "a WebSocket error ended the whole connection")
            self.assertConnectionUsable(c, f"after-{tag}")
        return c

    def test_unmasked_frame_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_TEXT, "not masked", mask=False), "unmasked")

    def test_unmasked_frame_after_a_good_one_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_BINARY, b"x" * 200, mask=False), "unmasked2",
                              before=b"good")

    def test_invalid_utf8_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"abc\xff\xfedef"), "utf8")

    def test_invalid_utf8_across_fragments_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"abc\xe2\x82", fin=False)
                              + ws_frame(OP_CONT, b"(rest", fin=True), "utf8frag")

    def test_reserved_bits_without_extension_are_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_TEXT, "rsv", rsv=2), "rsv")

    def test_the_app_sees_the_error_close(self):
        self.assertClosedWith(1002, ws_frame(OP_TEXT, "x", mask=False), "perr-log")
        self.assertIn("code=1002", log_line(self.port, "ws-echo[id=perr-log]: disconnect"))


class MaxSize(H2TestCase):
    ARGS = ("--ws-max-size", "1024")

    def test_message_at_the_limit_passes_one_over_is_1009(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=limit")
            self.assertEcho(c, sid, OP_BINARY, b"a" * 1024)
            c.send_frame(sid, OP_BINARY, os.urandom(1025))
            code, _, data = c.expect_close(sid)
            self.assertEqual((code, data), (1009, []), c.describe())
            self.assertEqual(c.goaways, [])
            self.assertConnectionUsable(c, "after-limit")

    def test_fragmented_message_over_the_limit_is_1009(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=fraglimit")
            c.send(sid, ws_frame(OP_BINARY, b"x" * 600, fin=False)
                   + ws_frame(OP_CONT, b"y" * 600, fin=True))
            code, _, data = c.expect_close(sid)
            self.assertEqual((code, data), (1009, []))
            self.assertConnectionUsable(c, "after-fraglimit")

    def test_announced_length_over_the_limit_closes_before_the_payload(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=announce")
            c.send(sid, ws_frame(OP_BINARY, b"z" * 100, length=1 << 30)[:2 + 8 + 4 + 100])
            code, _, data = c.expect_close(sid, timeout=scaled(15), reply=False)
            self.assertEqual((code, data), (1009, []))
            c.wait_done(sid, scaled(10))
            self.assertConnectionUsable(c, "after-announce")


# ---------------------------------------------------------------------------------------------
# 7. permessage-deflate
# ---------------------------------------------------------------------------------------------

class Deflate(H2TestCase):
    def test_negotiated_and_round_trips(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=deflate",
                            extensions="permessage-deflate; client_max_window_bits")
            ext = c.streams[sid].header("sec-websocket-extensions") or ""
            self.assertEqual(ext.split(";")[0].strip(), "permessage-deflate",
                             c.streams[sid].headers)
            # The server keeps its compression context between messages (no
            # server_no_context_takeover was offered): one inflater for the whole stream.
            inflater = zlib.decompressobj(-15)

            def unpack(f):
                if not f.rsv & 4:
                    return f.payload
                return inflater.decompress(f.payload + b"\x00\x00\xff\xff")
            # Server -> client: a large message comes compressed (RSV1).
            large = text_of(100000, 7)
            c.send_frame(sid, OP_TEXT, large)
            f = c.read_frame(sid, timeout=scaled(30))
            self.assertEqual((f.opcode, f.rsv, f.fin), (OP_TEXT, 4, True), f)
            self.assertLess(len(f.payload), len(large))
            self.assertEqual(unpack(f), large)
            # Client -> server: compressed, in two fragments (RSV1 on the first only).
            body = b"compressed hello " * 3000
            comp = deflate(body)
            c.send(sid, ws_frame(OP_BINARY, comp[:10], fin=False, rsv=4)
                   + ws_frame(OP_CONT, comp[10:], fin=True))
            f = c.read_frame(sid, timeout=scaled(30))
            self.assertEqual(f.opcode, OP_BINARY, f)
            self.assertEqual(unpack(f), body)
            # Random data: whatever the server chooses, it round-trips.
            rnd = os.urandom(70000)
            c.send_frame(sid, OP_BINARY, deflate(rnd), rsv=4)
            f = c.read_frame(sid, timeout=scaled(30))
            self.assertEqual(unpack(f), rnd)
            c.send_close(sid, 1000)
            self.assertEqual(c.expect_close(sid)[0], 1000)

    def test_not_negotiated_when_off(self):
        srv = self.start_server("--ws-per-message-deflate", "false")
        with self.client(srv.port) as c:
            sid = c.open_ws("/ws/echo", extensions="permessage-deflate")
            self.assertIsNone(c.streams[sid].header("sec-websocket-extensions"),
                              c.streams[sid].headers)
            c.send_frame(sid, OP_TEXT, deflate(b"hello"), rsv=4)
            self.assertEqual(c.expect_close(sid)[0], 1002)

    def test_corrupt_compressed_data_closes_the_stream(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=corrupt", extensions="permessage-deflate")
            self.assertIn("permessage-deflate",
                          c.streams[sid].header("sec-websocket-extensions") or "")
            c.send_frame(sid, OP_TEXT, b"\xff\xff\xff\xff garbage", rsv=4)
            code, _, data = c.expect_close(sid)
            self.assertEqual(data, [])
            self.assertIn(code, (1002, 1007))
            self.assertConnectionUsable(c, "after-corrupt")


# ---------------------------------------------------------------------------------------------
# 8. Closing
# ---------------------------------------------------------------------------------------------

class Close(H2TestCase):
    def test_client_close_is_echoed_and_the_stream_ends(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=cc")
            self.assertEcho(c, sid, OP_TEXT, b"x")
            c.send_close(sid, 1000, "normal bye")
            f = c.read_frame(sid)
            self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1000), f)
            st = c.wait_done(sid)
            self.assertTrue(st.ended, f"no END_STREAM after the close handshake: {st!r}")
            self.assertIsNone(st.reset_code, st)
            c.finish(sid)
            self.assertEqual(c.get("/ok").status, 200)
        line = log_line(self.port, "ws-echo[id=cc]: disconnect")
        self.assertIn("code=1000 reason=normal bye messages=1", line)

    def test_close_frame_and_end_stream_in_one_data_frame(self):
        # RFC 8441 7: END_STREAM is the orderly TCP close; a client may send it with its close
        # frame. The close frame is still read: the app sees 1000, not a lost connection.
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=closeend")
            self.assertEcho(c, sid, OP_TEXT, b"x")
            c.send_close(sid, 1000, "bye with end", end_stream=True)
            st = c.streams[sid]
            f = c.read_frame(sid)
            c.wait_done(sid)
            self.assertIsNotNone(f, f"stream ended without a close frame: {st!r}")
            self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1000), f)
            self.assertEqual(c.get("/ok").status, 200)
        line = log_line(self.port, "ws-echo[id=closeend]: disconnect")
        self.assertIn("code=1000 reason=bye with end messages=1", line)

    def test_close_frame_then_end_stream_in_the_same_packet(self):
        # The same in two DATA frames (the close frame, then an empty one with END_STREAM)
        # written together: the server reads them in one go.
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=closeend2")
            self.assertEcho(c, sid, OP_TEXT, b"x")
            c.conn.send_data(sid, ws_frame(OP_CLOSE, ws_close_payload(1000, "two frames")))
            c.conn.send_data(sid, b"", end_stream=True)
            c.streams[sid].local_ended = True
            c.push()
            f = c.read_frame(sid)
            st = c.wait_done(sid)
            self.assertIsNotNone(f, f"stream ended without a close frame: {st!r}")
            self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1000), f)
            self.assertEqual(c.get("/ok").status, 200)
        line = log_line(self.port, "ws-echo[id=closeend2]: disconnect")
        self.assertIn("code=1000 reason=two frames messages=1", line)

    def test_message_and_end_stream_in_one_data_frame(self):
        # A last message sent together with END_STREAM reaches the app before the disconnect.
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=msgend")
            c.send_frame(sid, OP_TEXT, b"last words", end_stream=True)
            c.wait_done(sid)
        line = log_line(self.port, "ws-echo[id=msgend]: disconnect")
        self.assertIn("messages=1", line)

    def test_end_stream_without_close_is_1006_for_the_app(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=eos")
            self.assertEcho(c, sid, OP_TEXT, b"one")
            c.end(sid)
            st = c.wait_done(sid)
            self.assertEqual(bytes(st.data), b"", "frames after the client's END_STREAM")
            self.assertEqual(c.get("/ok").status, 200)
        self.assertIn("code=1006", log_line(self.port, "ws-echo[id=eos]: disconnect"))

    def test_app_close_code_and_reason_reach_the_client(self):
        with self.client() as c:
            for code in (1000, 1001, 4001):
                sid = c.open_ws(f"/ws/close/{code}?id=ac{code}")
                got, reason, data = c.expect_close(sid)
                self.assertEqual((got, reason, data), (code, b"bye", []))
                self.assertTrue(c.streams[sid].ended, c.streams[sid])
            self.assertEqual(c.get("/ok").status, 200)
        self.assertIn("close=0", log_line(self.port, "ws-close[id=ac4001]"))

    def test_close_reply_and_end_stream_in_one_data_frame(self):
        # The app closes; the client answers with its close frame and END_STREAM together. The
        # closing handshake is complete: the stream must end with END_STREAM, not RST_STREAM.
        with self.client() as c:
            sid = c.open_ws("/ws/close/4001?id=replyend")
            code, reason, _ = c.expect_close(sid, reply=False)
            self.assertEqual((code, reason), (4001, b"bye"))
            c.send_close(sid, 4001, end_stream=True)
            st = c.wait_done(sid)
            self.assertTrue(st.ended and st.reset_code is None,
                            f"clean close handshake ended with {st!r}\n{c.describe()}")
            self.assertEqual(c.get("/ok").status, 200)

    def test_client_that_never_answers_the_app_close_is_dropped(self):
        with self.client() as c:
            sid = c.open_ws("/ws/close/4001?id=noreply")
            code, _, _ = c.expect_close(sid, reply=False)
            self.assertEqual(code, 4001)
            start = time.monotonic()
            c.wait_done(sid, scaled(20))
            self.assertLess(time.monotonic() - start, scaled(15))
            self.assertEqual(c.get("/ok").status, 200)

    def test_app_failure_after_accept_closes_1011(self):
        with self.client() as c:
            sid = c.open_ws("/ws/fail-after-accept")
            self.assertEqual(c.expect_close(sid)[0], 1011)
            sid = c.open_ws("/ws/return-after-accept")
            self.assertEqual(c.expect_close(sid)[0], 1000)
            self.assertConnectionUsable(c, "after-app-fail")

    def test_frames_after_the_close_frame_are_ignored(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=afterclose")
            c.send(sid, ws_frame(OP_CLOSE, ws_close_payload(1000, "bye"))
                   + ws_frame(OP_TEXT, "must be ignored"))
            code, _, data = c.expect_close(sid)
            self.assertEqual((code, data), (1000, []))
            self.assertEqual(c.get("/ok").status, 200)
        self.assertIn("code=1000 reason=bye messages=0",
                      log_line(self.port, "ws-echo[id=afterclose]: disconnect"))


# ---------------------------------------------------------------------------------------------
# 9. RST_STREAM from the client
# ---------------------------------------------------------------------------------------------

class Reset(H2TestCase):
    def test_rst_stream_is_1006_for_the_app_and_spares_the_others(self):
        with self.client() as c:
            keep = c.open_ws("/ws/echo?id=keep")
            gone = c.open_ws("/ws/echo?id=gone")
            self.assertEcho(c, keep, OP_TEXT, b"before")
            self.assertEcho(c, gone, OP_TEXT, b"before")
            c.rst(gone, CANCEL)
            self.assertIn("code=1006", log_line(self.port, "ws-echo[id=gone]: disconnect"))
            self.assertEcho(c, keep, OP_TEXT, b"after the reset")
            self.assertEqual(c.get("/ok").status, 200)
            self.assertEqual(c.goaways, [])
            c.send_close(keep, 1000)
            self.assertEqual(c.expect_close(keep)[0], 1000)

    def test_rst_stream_during_a_flood(self):
        with self.client() as c:
            sid = c.open_ws("/ws/flood/1000000?size=4096&id=leave")
            for _ in range(5):
                self.assertEqual(c.read_message(sid)[0], OP_BINARY)
            c.rst(sid, CANCEL)
            self.assertIn("code=1006",
                          log_line(self.port, "ws-flood[size=4096&id=leave]: disconnect"))
            self.assertConnectionUsable(c, "after-flood-rst")


# ---------------------------------------------------------------------------------------------
# 10. Multiplexing
# ---------------------------------------------------------------------------------------------

class Multiplex(H2TestCase):
    def test_websockets_and_requests_on_one_connection(self):
        n = 6
        with self.client() as c:
            socks = [c.open_ws(f"/ws/echo?id=mx{i}") for i in range(n)]
            payloads = {sid: [os.urandom(1000 + 7919 * j % 90000) for j in range(4)]
                        for sid in socks}
            # Everything goes out at once, interleaved with plain requests.
            reqs = []
            for j in range(4):
                for sid in socks:
                    c.send_frame(sid, OP_BINARY, payloads[sid][j])
                reqs.append(c.request("GET", "/ok"))
                reqs.append(c.request("POST", "/echo", body=b"body-%d" % j * 5000))
            got = {sid: [] for sid in socks}
            # Read every stream's echoes, in whatever order they come.
            def all_in():
                for sid in socks:
                    while True:
                        parsed = ws_parse_frame(c.streams[sid].data)
                        if parsed is None:
                            break
                        f, used = parsed
                        del c.streams[sid].data[:used]
                        got[sid].append(f)
                return all(len(got[s]) == 4 for s in socks) and all(c.streams[r].done
                                                                     for r in reqs)
            c.wait(all_in, scaled(60), "all echoes and responses")
            for sid in socks:
                self.assertEqual([f.payload for f in got[sid]], payloads[sid],
                                 f"stream {sid}")
            for k, r in enumerate(reqs):
                st = c.streams[r]
                self.assertEqual(st.status, 200, st)
                expected = b"ok" if k % 2 == 0 else b"body-%d" % (k // 2) * 5000
                self.assertEqual(bytes(st.data), expected)
            for sid in socks:
                c.send_close(sid, 1000)
            for sid in socks:
                self.assertEqual(c.expect_close(sid)[0], 1000)
            self.assertEqual(c.goaways, [])
        for i in range(n):
            self.assertIn("code=1000", log_line(self.port, f"ws-echo[id=mx{i}]: disconnect"))

    def test_two_clients_do_not_mix(self):
        with self.client() as a, self.client() as b:
            sa = a.open_ws("/ws/echo?id=ca")
            sb = b.open_ws("/ws/echo?id=cb")
            a.send_frame(sa, OP_TEXT, b"for a")
            b.send_frame(sb, OP_TEXT, b"for b")
            self.assertEqual(b.read_message(sb), (OP_TEXT, b"for b"))
            self.assertEqual(a.read_message(sa), (OP_TEXT, b"for a"))


# ---------------------------------------------------------------------------------------------
# 11. Backpressure: a stream whose window the client does not open
# ---------------------------------------------------------------------------------------------

def ws_stats(port):
    return parse_codes(get(port, "/ws-stats").body)


class Backpressure(H2TestCase):
    def test_flood_stops_at_the_stream_window_and_resumes(self):
        count, size = 400, 16384  # 6.25 MiB in all
        query = f"size={size}&id=h2flood"
        pid = self.srv.proc.pid
        with self.client() as c:
            # Warm up (the first WebSocket, deflate tables, buffers) before measuring.
            warm = c.open_ws("/ws/echo?id=warm")
            self.assertEcho(c, warm, OP_BINARY, os.urandom(100000), timeout=scaled(30))
            rss_before = rss_kib(pid)
            sid = c.connect_ws(f"/ws/flood/{count}?{query}")
            c.hold(sid)
            self.assertEqual(c.answer(sid).status, 200, c.describe())
            # Not opening the window: the app's sends must stall near window + high-water mark.
            last, stable_since = -1, time.monotonic()
            deadline = time.monotonic() + scaled(30)
            while time.monotonic() < deadline:
                c.idle(0.1)
                cur = ws_stats(self.port)["flood_bytes"]
                if cur != last:
                    last, stable_since = cur, time.monotonic()
                elif time.monotonic() - stable_since > scaled(1.5):
                    break
            st = c.streams[sid]
            self.assertGreater(last, 0, "the app never sent")
            self.assertLessEqual(st.received, 65535, "more DATA than the stream window")
            self.assertLess(last, 1 << 20,
                            f"send callbacks kept firing for a stream with a closed window: "
                            f"{last} bytes taken")
            rss_growth = rss_kib(pid) - rss_before
            self.assertLess(rss_growth, 4 << 10, f"server RSS grew by {rss_growth} KiB")
            # Other streams still flow meanwhile.
            self.assertEcho(c, warm, OP_TEXT, b"others still flow")
            self.assertEqual(c.get("/ok").status, 200)
            # Open the window: every message arrives complete and in order, then the close.
            c.release(sid)
            pattern = bytes(j % 251 for j in range(size + 251))
            for i in range(count):
                op, data = c.read_message(sid, timeout=scaled(30))
                self.assertEqual(op, OP_BINARY, f"message {i}: {op!r} {data!r}")
                self.assertEqual(len(data), size, f"message {i}")
                self.assertEqual(int.from_bytes(data[:8], "big"), i)
                off = (i + 8) % 251
                if data[8:] != pattern[off:off + size - 8]:
                    self.fail(f"message {i} corrupted")
            code, reason, data = c.expect_close(sid)
            self.assertEqual((code, reason, data), (1000, b"flood done", []))
        self.assertIn("close=0", log_line(self.port, f"ws-flood[{query}]: sent={count}"))

    def test_client_sending_to_a_slow_app_is_held_by_the_window(self):
        # The server gives the window back only as websocket.c takes the bytes: a parked app
        # (queue full) holds the client at its stream window, not in server memory.
        srv = self.start_server("--ws-max-queue", "4")
        size = 16384
        with self.client(srv.port) as c:
            sid = c.open_ws("/ws/slow-reader?id=h2slow")
            frame = ws_frame(OP_BINARY, bytes(range(256)) * (size // 256))
            c.send(sid, frame * 200)  # 3.2 MiB queued on our side
            c.idle(scaled(1.5))
            st = c.streams[sid]
            taken = 200 * len(frame) - len(st.outbox)
            self.assertLess(taken, 1 << 20, f"the server took {taken} bytes for a parked app")
            self.assertGreater(taken, 0)
            self.assertEqual(ws_stats(srv.port)["slow_messages"], 0)
            self.assertEqual(get(srv.port, "/ws-release").body, b"released=1")
            c.wait(lambda: not st.outbox, scaled(60), "the rest of the upload")
            c.send_close(sid, 1000, "enough")
            self.assertEqual(c.expect_close(sid, timeout=scaled(30))[0], 1000)
        line = log_line(srv.port, "ws-slow-reader[id=h2slow]: disconnect")
        self.assertIn(f"code=1000 reason=enough messages=200 bytes={200 * size}", line)


# ---------------------------------------------------------------------------------------------
# 12. Keepalive pings
# ---------------------------------------------------------------------------------------------

class Keepalive(H2TestCase):
    ARGS = ("--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5")

    def test_client_that_answers_pings_stays_connected(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=alive")
            pings = 0
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline:
                try:
                    f = c.read_frame(sid, timeout=max(0.05, deadline - time.monotonic()))
                except AssertionError as e:
                    if "no WebSocket frame" not in str(e):
                        raise
                    break
                self.assertIsNotNone(f, f"stream ended for a client that answers pings: "
                                        f"{c.describe()}")
                self.assertNotEqual(f.opcode, OP_CLOSE, f"closed: {f!r}")
                if f.opcode == OP_PING:
                    pings += 1
                    c.send_frame(sid, OP_PONG, f.payload)
            self.assertGreaterEqual(pings, 2, "the server did not ping every 0.5 s")
            self.assertEcho(c, sid, OP_TEXT, b"still here")

    def test_client_that_never_answers_is_closed_1011(self):
        with self.client() as c:
            sid = c.open_ws("/ws/echo?id=deaf")
            start = time.monotonic()
            pings = 0
            while True:
                f = c.read_frame(sid, timeout=scaled(15))
                self.assertIsNotNone(f, f"stream ended without a close frame: {c.describe()}")
                if f.opcode == OP_PING:
                    pings += 1
                    continue
                break
            elapsed = time.monotonic() - start
            self.assertEqual((f.opcode, f.close_code), (OP_CLOSE, 1011), f)
            self.assertGreaterEqual(pings, 1)
            self.assertLess(elapsed, scaled(8))
            self.assertGreater(elapsed, 0.4)
            c.wait_done(sid, scaled(10))
            self.assertEqual(c.get("/ok").status, 200)
        self.assertRegex(log_line(self.port, "ws-echo[id=deaf]: disconnect"), r"code=(1011|1006)")


# ---------------------------------------------------------------------------------------------
# 13. Graceful shutdown
# ---------------------------------------------------------------------------------------------

class Shutdown(ServerTestCase):
    def test_sigterm_closes_websockets_with_1012_and_goaway(self):
        srv = self.start_server()
        with H2Client(srv.port) as c:
            socks = [c.open_ws(f"/ws/echo?id=sd{i}") for i in range(3)]
            for i, sid in enumerate(socks):
                c.send_frame(sid, OP_TEXT, b"hello %d" % i)
                self.assertEqual(c.read_message(sid), (OP_TEXT, b"hello %d" % i))
            srv.send_signal(signal.SIGTERM)
            codes = [c.expect_close(sid, timeout=scaled(20))[0] for sid in socks]
            self.assertEqual(codes, [1012] * 3, c.describe())
            c.wait(lambda: c.goaways, scaled(20), "GOAWAY")
            self.assertEqual(c.goaways[0][0], 0, c.goaways)  # NO_ERROR
            # Once the streams are done, the final GOAWAY names the last one (RFC 9113 6.8),
            # and the server closes the connection.
            c.idle(scaled(20))
            self.assertTrue(c.eof, f"the server kept the connection open\n{c.describe()}")
            self.assertEqual(c.goaways[-1], (0, socks[-1]), c.describe())
            srv.wait_exit()
            srv.check(0)
        err = srv.stderr()
        for i in range(3):
            self.assertIn(f"ws-echo[id=sd{i}]: disconnect code=1012", err)

    def test_sigterm_with_a_client_that_never_answers_the_close(self):
        srv = self.start_server()
        with H2Client(srv.port) as c:
            sid = c.open_ws("/ws/echo?id=deafsd")
            srv.send_signal(signal.SIGTERM)
            code, _, _ = c.expect_close(sid, timeout=scaled(20), reply=False)
            self.assertEqual(code, 1012)
            srv.wait_exit(scaled(20))
            srv.check(0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
