"""WebSocket (RFC 6455, RFC 7692) through the real runner over loopback.

Clients: Debian's python3-websockets (10.4: the asyncio client, one asyncio.run per test) for
well-behaved traffic, and the harness's RawWS (raw socket, own frame encoder) for the frames and
handshakes a client library would never send. Apps: ws_echo.so (echoes any message on any path)
and testapp's /ws/* routes, which report what the server told them in GET /log.

Every wait is bounded; timeouts are generous because CI runs this under ASan on 2 cores.
"""

import asyncio
import base64
import os
import random
import re
import socket
import time
import unittest
import zlib

from casgi_harness import (rss_kib, CASGI_EDISCONNECTED, IO_TIMEOUT, OP_BINARY, OP_CLOSE, OP_CONT,
                           OP_PING, OP_PONG, OP_TEXT, TESTAPP, WS_ECHO, RawWS, ServerTestCase,
                           Thread, app_log, build_request, exchange, get, parse_codes,
                           parse_scope, require_file, scaled, send_until_blocked, wait_log,
                           ws_accept_value, ws_close_payload, ws_frame, ws_new_key)

try:
    import websockets
    from websockets.exceptions import ConnectionClosed, InvalidStatusCode
    from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
except ImportError:  # pragma: no cover - reported as a skip
    websockets = None

ASYNC_TIMEOUT = scaled(90)


def setUpModule():
    if websockets is None:
        raise unittest.SkipTest("python3-websockets is not installed (scripts/deps.sh)")


def run(coro, timeout=ASYNC_TIMEOUT):
    """Runs one coroutine on a fresh event loop, bounded."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def connect(port, path="/ws/echo", **kw):
    """websockets.connect with test defaults: no client pings, no client size limit, generous
    handshake and close timeouts, permessage-deflate offered (the library's default)."""
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("open_timeout", IO_TIMEOUT)
    kw.setdefault("close_timeout", IO_TIMEOUT)
    return websockets.connect(f"ws://127.0.0.1:{port}{path}", **kw)


async def closed_code(ws, timeout=IO_TIMEOUT):
    """Waits for the connection to close; returns (code, reason) the client saw."""
    await asyncio.wait_for(ws.wait_closed(), timeout)
    return ws.close_code, ws.close_reason


def ext_header(headers):
    return ", ".join(headers.get_all("Sec-WebSocket-Extensions"))


def text_of(n, seed=0):
    """n characters of text with multi-byte UTF-8 sequences in it."""
    unit = "abc\u00e9\u20ac\U0001f600xyz " + str(seed)
    return (unit * (n // len(unit) + 1))[:n]


# ---------------------------------------------------------------------------------------------
# Echo: both apps, with and without permessage-deflate
# ---------------------------------------------------------------------------------------------

class EchoMixin:
    PATH = "/ws/echo"

    def app_path(self):
        raise NotImplementedError

    def setUp(self):
        self.srv = self.start_server(app=self.app_path())
        self.port = self.srv.port

    def echo(self, messages, compression="deflate"):
        """Sends each message, reads its echo; returns the echoes."""
        async def go():
            out = []
            async with connect(self.port, self.PATH, compression=compression) as ws:
                for m in messages:
                    await ws.send(m)
                    out.append(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
            return out
        return run(go())

    def assertEchoes(self, messages):
        for compression in (None, "deflate"):
            with self.subTest(compression=compression):
                got = self.echo(messages, compression)
                self.assertEqual(len(got), len(messages))
                for sent, back in zip(messages, got):
                    self.assertIs(type(back), type(sent))
                    self.assertEqual(back, sent)

    def test_text(self):
        self.assertEchoes(["hello", "second message", text_of(300)])

    def test_binary(self):
        self.assertEchoes([b"\x00\x01\x02\xff", os.urandom(1000)])

    def test_text_and_binary_keep_their_type(self):
        self.assertEchoes(["text", b"bytes", "text again", b"\x80\x81 not utf-8"])

    def test_empty_messages(self):
        self.assertEchoes(["", b"", "after empty"])

    def test_64_kib(self):
        self.assertEchoes([os.urandom(65536), text_of(65536, 1), b"\x00" * 65536])

    def test_4_mib(self):
        self.assertEchoes([os.urandom(4 << 20), text_of(4 << 20, 2)])

    def test_many_messages_in_flight_keep_order(self):
        msgs = []
        for i in range(300):
            n = (i * 7919) % 5000
            msgs.append(f"{i}:" + text_of(n, i) if i % 2 else i.to_bytes(4, "big") + os.urandom(n))

        async def go(compression):
            async with connect(self.port, self.PATH, compression=compression) as ws:
                async def sender():
                    for m in msgs:
                        await ws.send(m)
                send_task = asyncio.ensure_future(sender())
                got = [await asyncio.wait_for(ws.recv(), IO_TIMEOUT) for _ in msgs]
                await send_task
                return got
        for compression in (None, "deflate"):
            with self.subTest(compression=compression):
                self.assertEqual(run(go(compression)), msgs)

    def test_fragmented_messages_are_reassembled(self):
        async def go(compression):
            async with connect(self.port, self.PATH, compression=compression) as ws:
                await ws.send(["frag-one ", "frag-two ", "\u20ac", "", "end"])
                t = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                big = [os.urandom(30000) for _ in range(5)]
                await ws.send(big)
                b = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return t, b, b"".join(big)
        for compression in (None, "deflate"):
            with self.subTest(compression=compression):
                t, b, expected = run(go(compression))
                self.assertEqual(t, "frag-one frag-two \u20acend")
                self.assertEqual(b, expected)

    def test_ping_gets_pong(self):
        async def go():
            async with connect(self.port, self.PATH) as ws:
                waiter = await ws.ping(b"are you there")
                await asyncio.wait_for(waiter, IO_TIMEOUT)
                await ws.send("after ping")
                return await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
        self.assertEqual(run(go()), "after ping")

    def test_raw_ping_pong_payload(self):
        with RawWS(self.port, self.PATH) as c:
            self.assertEqual(c.response.status, 101, c.response)
            c.send_frame(OP_PING, b"payload-123")
            f = c.read_frame()
            self.assertEqual((f.opcode, f.payload, f.fin), (OP_PONG, b"payload-123", True), f)
            c.send_close(1000)
            code, _, _ = c.expect_close()
            self.assertIsNotNone(code)

    def test_clean_close_from_client(self):
        async def go():
            ws = await connect(self.port, self.PATH)
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            await ws.close(1000, "done")
            return ws.close_code
        self.assertEqual(run(go()), 1000)


class EchoWsEchoApp(EchoMixin, ServerTestCase):
    PATH = "/any/path?x=1"

    def app_path(self):
        require_file(WS_ECHO, "apps/ws_echo.so")
        return WS_ECHO


class PingFlood(ServerTestCase):
    """A client that sends pings and never reads the pongs holds the server's output at its
    high-water mark: reading stops there, so memory stays bounded."""

    def test_pings_without_reading_keep_memory_bounded(self):
        require_file(WS_ECHO, "apps/ws_echo.so")
        srv = self.start_server(app=WS_ECHO)

        before = rss_kib(srv.proc.pid)
        ws = RawWS(srv.port, "/", rcvbuf=4096, timeout=0.5)
        self.addCleanup(ws.close)
        self.assertTrue(ws.upgraded(), ws.response)
        ping = ws_frame(0x9, b"p" * 125)
        burst = ping * 512  # 64 KiB of pings, 64 KiB of pongs owed
        sent = 0
        deadline = time.monotonic() + scaled(3)
        while time.monotonic() < deadline:
            try:
                ws.sock.sendall(burst)
                sent += len(burst)
            except socket.timeout:
                break  # the server stopped reading: what this test is after
        grown = rss_kib(srv.proc.pid) - before
        # without the bound the server buffered every pong: hundreds of MB within seconds
        self.assertLess(grown, 32 * 1024, f"RSS grew by {grown} KiB after {sent} bytes of pings")
        self.assertGreater(sent, 0)
        ws.close()
        with RawWS(srv.port, "/") as other:
            self.assertTrue(other.upgraded(), other.response)
            other.send_text("still here")
            self.assertEqual(other.read_message(), (0x1, b"still here"))


class EchoTestApp(EchoMixin, ServerTestCase):
    PATH = "/ws/echo?id=echo"

    def app_path(self):
        return TESTAPP


# ---------------------------------------------------------------------------------------------
# Handshake
# ---------------------------------------------------------------------------------------------

def upgrade_headers(key="dGhlIHNhbXBsZSBub25jZQ==", version="13", extra=()):
    h = [("Host", "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if key is not None:
        h.append(("Sec-WebSocket-Key", key))
    if version is not None:
        h.append(("Sec-WebSocket-Version", version))
    return h + list(extra)


class Handshake(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_accept_value_for_rfc_sample_key(self):
        self.assertEqual(ws_accept_value("dGhlIHNhbXBsZSBub25jZQ=="),
                         "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")  # the harness itself, RFC 6455 1.3
        with RawWS(self.port, "/ws/echo?id=sample",
                   headers=upgrade_headers("dGhlIHNhbXBsZSBub25jZQ==")) as c:
            r = c.response
            self.assertEqual(r.status, 101, r)
            self.assertEqual(r.header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r)
            self.assertEqual(r.header("upgrade").lower(), "websocket", r)
            self.assertIn("upgrade", r.connection_tokens(), r)
            self.assertIsNone(r.header("content-length"), r)
            self.assertIsNone(r.header("transfer-encoding"), r)
            # No extension and no subprotocol were offered, so none may be answered.
            self.assertIsNone(r.header("sec-websocket-extensions"), r)
            self.assertIsNone(r.header("sec-websocket-protocol"), r)
            c.send_text("hi")
            self.assertEqual(c.read_message(), (OP_TEXT, b"hi"))

    def test_random_keys_get_the_right_accept(self):
        for _ in range(5):
            with RawWS(self.port, "/ws/echo?id=keys") as c:
                self.assertEqual(c.response.status, 101, c.response)
                self.assertEqual(c.response.header("sec-websocket-accept"),
                                 ws_accept_value(c.key))

    def test_bytes_after_the_handshake_in_the_same_packet_are_kept(self):
        frames = (ws_frame(OP_TEXT, "first frame") + ws_frame(OP_BINARY, b"\x01\x02")
                  + ws_frame(OP_TEXT, "third"))
        with RawWS(self.port, "/ws/echo?id=same-packet", extra=frames) as c:
            self.assertEqual(c.response.status, 101, c.response)
            self.assertEqual(c.read_message(), (OP_TEXT, b"first frame"))
            self.assertEqual(c.read_message(), (OP_BINARY, b"\x01\x02"))
            self.assertEqual(c.read_message(), (OP_TEXT, b"third"))

    def test_header_tokens_are_case_insensitive_and_listed(self):
        h = [("Host", "x"), ("Upgrade", "WebSocket"), ("Connection", "keep-alive, Upgrade"),
             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        with RawWS(self.port, "/ws/echo?id=tokens", headers=h) as c:
            self.assertEqual(c.response.status, 101, c.response)
            c.send_text("ok")
            self.assertEqual(c.read_message(), (OP_TEXT, b"ok"))

    def test_upgrade_after_a_keep_alive_request(self):
        with RawWS(self.port, "/ws/echo?id=ka", handshake=False) as c:
            c.send(build_request("GET", "/ok"))
            r = c.read_http_response()
            self.assertEqual((r.status, r.body), (200, b"ok"), r)
            self.assertEqual(c.handshake().status, 101, c.response)
            c.send_text("after keep-alive")
            self.assertEqual(c.read_message(), (OP_TEXT, b"after keep-alive"))

    def test_pipelined_request_upgrade_and_frame_in_one_packet(self):
        with RawWS(self.port, "/ws/echo?id=pipe", handshake=False) as c:
            c.send(build_request("GET", "/ok") + build_request("GET", c.path, c.headers)
                   + ws_frame(OP_TEXT, "piped"))
            self.assertEqual(c.read_http_response().status, 200)
            self.assertEqual(c.read_http_response().status, 101)
            self.assertEqual(c.read_message(), (OP_TEXT, b"piped"))

    def test_http_1_0_upgrade_is_refused(self):
        # RFC 6455 4.1/4.2.1: the opening handshake is an HTTP/1.1 (or higher) GET.
        r = exchange(self.port, "GET", "/ws/echo", upgrade_headers(), version="HTTP/1.0")
        self.assertNotEqual(r.status, 101, r)

    def test_version_8_gets_426_naming_13(self):
        r = exchange(self.port, "GET", "/ws/echo", upgrade_headers(version="8"))
        self.assertEqual(r.status, 426, r)
        self.assertEqual(r.header("sec-websocket-version"), "13", r)

    def test_missing_version_is_refused(self):
        r = exchange(self.port, "GET", "/ws/echo", upgrade_headers(version=None))
        self.assertIn(r.status, (400, 426), r)
        self.assertNotEqual(r.status, 101)

    def test_missing_key_gets_400(self):
        r = exchange(self.port, "GET", "/ws/echo", upgrade_headers(key=None))
        self.assertEqual(r.status, 400, r)

    def test_invalid_keys_get_400(self):
        bad = [
            "abc",                                         # not 16 bytes
            base64.b64encode(os.urandom(15)).decode(),     # 15 bytes
            base64.b64encode(os.urandom(17)).decode(),     # 17 bytes
            "!!!!not-base64-at-all!!!",                    # 24 characters, not base64
            "",                                            # empty
        ]
        for key in bad:
            with self.subTest(key=key):
                r = exchange(self.port, "GET", "/ws/echo", upgrade_headers(key=key))
                self.assertEqual(r.status, 400, r)

    def test_post_with_upgrade_headers_is_plain_http(self):
        r = exchange(self.port, "POST", "/scope", upgrade_headers(), body=b"")
        self.assertEqual(r.status, 200, r)
        scope = parse_scope(r.body)
        self.assertEqual((scope["type"], scope["method"]), ("http", "POST"))

    def test_upgrade_without_connection_upgrade_is_plain_http(self):
        h = [("Host", "x"), ("Upgrade", "websocket"),
             ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
        r = exchange(self.port, "GET", "/scope", h)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(parse_scope(r.body)["type"], "http")

    def test_plain_get_of_a_ws_route_is_http(self):
        self.assertEqual(get(self.port, "/ws/echo").status, 404)

    def test_websocket_scope(self):
        async def go():
            async with connect(self.port, "/ws/scope?a=1&b=%20", subprotocols=["p1", "p2.x"],
                               extra_headers={"X-Custom": "v1"}) as ws:
                return await asyncio.wait_for(ws.recv(), IO_TIMEOUT), ws.local_address[1]
        text, client_port = run(go())
        s = parse_scope(text.encode("latin-1"))
        self.assertEqual(s["type"], "websocket")
        self.assertEqual(s["scheme"], "ws")
        self.assertEqual(s["asgi_version"], "3.0")
        self.assertEqual(s["http_version"], "1.1")
        self.assertEqual(s["path"], "/ws/scope")
        self.assertEqual(s["raw_path"], "/ws/scope")
        self.assertEqual(s["query_string"], "a=1&b=%20")
        self.assertEqual(s["client_host"], "127.0.0.1")
        self.assertEqual(int(s["client_port"]), client_port)
        self.assertEqual(int(s["server_port"]), self.port)
        self.assertTrue(int(s["extensions"]) & 2, "CASGI_EXT_WEBSOCKET_HTTP_RESPONSE not set")
        self.assertEqual(s["num_subprotocols"], "2")
        subs = re.findall(r"^subprotocol=(.*)$", text, re.M)
        self.assertEqual(subs, ["p1", "p2.x"])
        names = [n for n, _ in s["headers"]]
        self.assertIn(("x-custom", "v1"), s["headers"])
        self.assertIn("sec-websocket-key", names)
        self.assertIn("upgrade", names)

    def test_subprotocol_chosen_by_the_app(self):
        async def go(offer):
            async with connect(self.port, "/ws/subprotocol", subprotocols=offer) as ws:
                await ws.send("x")
                await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return ws.subprotocol, ws.response_headers.get_all("Sec-WebSocket-Protocol")
        self.assertEqual(run(go(["chat.v1", "chat.v2", "chat.v3"])), ("chat.v2", ["chat.v2"]))
        self.assertEqual(run(go(["only-one"])), (None, []))
        self.assertEqual(run(go(None)), (None, []))

    def test_subprotocols_in_one_header_and_several(self):
        h = upgrade_headers(ws_new_key(), extra=[("Sec-WebSocket-Protocol", "a, b"),
                                                 ("Sec-WebSocket-Protocol", "c")])
        with RawWS(self.port, "/ws/scope", headers=h) as c:
            self.assertEqual(c.response.status, 101, c.response)
            self.assertEqual(c.response.header_all("sec-websocket-protocol"), [], c.response)
            op, text = c.read_message()
            self.assertEqual(re.findall(rb"^subprotocol=(.*)$", text, re.M), [b"a", b"b", b"c"])

    def test_accept_with_extra_headers(self):
        async def go():
            async with connect(self.port, "/ws/accept-headers") as ws:
                await ws.send("x")
                await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return ws.response_headers.get_all("x-test")
        self.assertEqual(run(go()), ["yes"])

    def test_close_before_accept_is_403(self):
        async def go():
            try:
                async with connect(self.port, "/ws/reject?id=rej"):
                    return None
            except InvalidStatusCode as e:
                return e.status_code
        self.assertEqual(run(go()), 403)
        with RawWS(self.port, "/ws/reject?id=rej2") as c:
            self.assertEqual(c.response.status, 403, c.response)
        self.assertEqual(parse_codes(wait_log(self.port, "ws-reject[id=rej2]")
                                     .split("ws-reject[id=rej2]: ")[1].splitlines()[0]),
                         {"close": 0})

    def test_unknown_ws_route_is_rejected(self):
        with RawWS(self.port, "/ws/no-such-route") as c:
            self.assertEqual(c.response.status, 403, c.response)

    def test_denial_response(self):
        with RawWS(self.port, "/ws/deny?id=deny") as c:
            r = c.response
            self.assertTrue(r.complete, r)
            self.assertEqual(r.status, 401, r)
            self.assertEqual(r.header("content-type"), "application/json", r)
            self.assertEqual(r.body, b'{"error":"nope"}', r)
            self.assertIsNone(r.header("sec-websocket-accept"), r)
            self.assertNotIn("upgrade", r.connection_tokens(), r)
        log = wait_log(self.port, "ws-deny[id=deny]")
        line = log.split("ws-deny[id=deny]: ")[1].splitlines()[0]
        self.assertEqual(parse_codes(line),
                         {"extension": 1, "start": 0, "body1": 0, "body2": 0})

    def test_denial_response_through_the_client_library(self):
        async def go():
            try:
                async with connect(self.port, "/ws/deny"):
                    return None
            except InvalidStatusCode as e:
                return e.status_code
        self.assertEqual(run(go()), 401)

    def test_app_failure_before_accept_is_an_http_error(self):
        with RawWS(self.port, "/ws/fail-before-accept") as c:
            self.assertIn(c.response.status, (500, 403), c.response)
        # The server is fine afterwards.
        self.assertEqual(get(self.port, "/ok").status, 200)


class WsNone(ServerTestCase):
    def test_upgrade_request_gets_a_normal_http_answer(self):
        srv = self.start_server("--ws", "none")
        with RawWS(srv.port, "/ok") as c:
            self.assertEqual(c.response.status, 200, c.response)
            self.assertEqual(c.response.body, b"ok")
            self.assertIsNone(c.response.header("sec-websocket-accept"))
        with RawWS(srv.port, "/scope") as c:
            self.assertEqual(parse_scope(c.response.body)["type"], "http")
        with RawWS(srv.port, "/ws/echo") as c:
            self.assertNotEqual(c.response.status, 101, c.response)


# ---------------------------------------------------------------------------------------------
# Close codes and the app's view of them
# ---------------------------------------------------------------------------------------------

def log_line(port, needle):
    """The first log line containing `needle`, waiting for it."""
    log = wait_log(port, needle)
    for line in log.splitlines():
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} vanished from the log")


class CloseCodes(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_client_close_code_and_reason_reach_the_app(self):
        async def go(code, reason, tag):
            ws = await connect(self.port, f"/ws/echo?id={tag}")
            await ws.send("x")
            await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
            await ws.close(code, reason)
            return ws.close_code
        for code, reason in ((1000, "normal bye"), (4000, "custom \u20ac"), (1001, ""),
                             (3000, "registered")):
            with self.subTest(code=code):
                tag = f"c{code}"
                # The server completes the close handshake (echoing the code, or with 1000).
                self.assertIn(run(go(code, reason, tag)), (code, 1000))
                line = log_line(self.port, f"ws-echo[id={tag}]: disconnect")
                esc = "".join(c if 0x20 <= ord(c) < 0x7f else
                              "".join(f"\\x{b:02x}" for b in c.encode()) for c in reason)
                self.assertIn(f"code={code} reason={esc} messages=1", line)

    def test_app_close_code_and_reason_reach_the_client(self):
        async def go(code):
            async with connect(self.port, f"/ws/close/{code}?id=ac{code}") as ws:
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return await closed_code(ws)
        for code in (1000, 1001, 1008, 1011, 3000, 4001, 4999):
            with self.subTest(code=code):
                self.assertEqual(run(go(code)), (code, "bye"))
                self.assertIn("close=0", log_line(self.port, f"ws-close[id=ac{code}]"))

    def test_app_close_code_raw(self):
        with RawWS(self.port, "/ws/close/4321?id=raw") as c:
            code, reason, data = c.expect_close()
            self.assertEqual((code, reason, data), (4321, b"bye", []))

    def test_client_that_never_answers_the_app_close_is_dropped(self):
        with RawWS(self.port, "/ws/close/4001?id=noreply") as c:
            code, _, _ = c.expect_close(reply=False)
            self.assertEqual(code, 4001)
            start = time.monotonic()
            self.assertTrue(c.wait_eof(scaled(20)), "server never closed TCP")
            self.assertLess(time.monotonic() - start, scaled(15))

    def test_dropped_tcp_connection_is_1006_for_the_app(self):
        with RawWS(self.port, "/ws/echo?id=fin") as c:
            c.send_text("one")
            self.assertEqual(c.read_message(), (OP_TEXT, b"one"))
        self.assertIn("code=1006", log_line(self.port, "ws-echo[id=fin]: disconnect"))

        c = RawWS(self.port, "/ws/echo?id=rst")
        c.send_text("one")
        self.assertEqual(c.read_message(), (OP_TEXT, b"one"))
        c.abort()
        self.assertIn("code=1006", log_line(self.port, "ws-echo[id=rst]: disconnect"))

        with RawWS(self.port, "/ws/echo?id=midframe") as c:
            c.send(ws_frame(OP_TEXT, "x" * 1000)[:300])
            time.sleep(0.1)
        self.assertIn("code=1006", log_line(self.port, "ws-echo[id=midframe]: disconnect"))

    def test_app_failure_after_accept_closes_1011(self):
        async def go():
            async with connect(self.port, "/ws/fail-after-accept") as ws:
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return ws.close_code
        self.assertEqual(run(go()), 1011)
        with RawWS(self.port, "/ws/fail-after-accept") as c:
            self.assertEqual(c.expect_close()[0], 1011)

    def test_app_returning_after_accept_closes_1000(self):
        async def go():
            async with connect(self.port, "/ws/return-after-accept") as ws:
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return ws.close_code
        self.assertEqual(run(go()), 1000)
        with RawWS(self.port, "/ws/return-after-accept") as c:
            self.assertEqual(c.expect_close()[0], 1000)

    def test_send_after_disconnect_is_refused(self):
        async def go():
            ws = await connect(self.port, "/ws/send-after-disconnect?id=sad")
            await ws.close(1000)
        run(go())
        line = log_line(self.port, "ws-send-after-disconnect[id=sad]: send=")
        codes = parse_codes(line.split("]: ")[1])
        self.assertEqual(codes["send"], CASGI_EDISCONNECTED, line)
        self.assertIn("ws-send-after-disconnect[id=sad]: disconnect code=1000",
                      app_log(self.port))

    def test_frames_after_the_close_frame_are_ignored(self):
        with RawWS(self.port, "/ws/echo?id=afterclose") as c:
            c.send(ws_frame(OP_CLOSE, ws_close_payload(1000, "bye"))
                   + ws_frame(OP_TEXT, "must be ignored"))
            code, _, data = c.expect_close(reply=False)
            self.assertEqual(code, 1000)
            self.assertEqual(data, [])
            self.assertTrue(c.wait_eof(scaled(10)), "server kept the connection open")
        line = log_line(self.port, "ws-echo[id=afterclose]: disconnect")
        self.assertIn("code=1000 reason=bye messages=0", line)


# ---------------------------------------------------------------------------------------------
# Frame-level protocol errors (raw client)
# ---------------------------------------------------------------------------------------------

class ProtocolErrors(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def assertClosedWith(self, expected, *frames, path="/ws/echo?id=perr", before=None):
        """Sends `frames` after the handshake; the server must answer with a close frame carrying
        `expected` (and no echo), then close TCP."""
        with RawWS(self.port, path) as c:
            self.assertEqual(c.response.status, 101, c.response)
            if before is not None:
                c.send_text(before)
                self.assertEqual(c.read_message(), (OP_TEXT, before.encode()))
            try:
                c.send(b"".join(frames))
            except (BrokenPipeError, ConnectionResetError):
                pass
            code, reason, data = c.expect_close()
            what = (f"close frame {c.close_frame!r}" if c.close_frame is not None
                    else "TCP closed without a close frame")
            self.assertEqual(code, expected, f"{what}; data frames before it: {data}")
            self.assertEqual(data, [], "the server echoed a message it should have refused")
        # The server survives and serves the next connection.
        with RawWS(self.port, "/ws/echo?id=after") as c:
            c.send_text("still fine")
            self.assertEqual(c.read_message(), (OP_TEXT, b"still fine"))

    def test_invalid_utf8_text_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"abc\xff\xfedef"))

    def test_overlong_and_surrogate_utf8_are_1007(self):
        for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"):
            with self.subTest(bad=bad):
                self.assertClosedWith(1007, ws_frame(OP_TEXT, b"ok" + bad))

    def test_invalid_utf8_split_across_fragments_is_1007(self):
        # "\xe2\x82" starts a 3-byte sequence; the continuation fragment breaks it.
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"abc\xe2\x82", fin=False),
                              ws_frame(OP_CONT, b"(rest", fin=True))

    def test_invalid_utf8_in_a_later_fragment_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"fine ", fin=False),
                              ws_frame(OP_CONT, b"fine ", fin=False),
                              ws_frame(OP_CONT, b"\xff", fin=True))

    def test_truncated_utf8_at_the_end_of_a_message_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_TEXT, b"abc\xe2\x82"))

    def test_valid_utf8_split_across_fragments_is_echoed(self):
        euro = "\u20ac".encode()
        with RawWS(self.port, "/ws/echo?id=split") as c:
            c.send(ws_frame(OP_TEXT, b"a" + euro[:1], fin=False)
                   + ws_frame(OP_CONT, euro[1:2], fin=False)
                   + ws_frame(OP_CONT, euro[2:] + b"z", fin=True))
            self.assertEqual(c.read_message(), (OP_TEXT, b"a" + euro + b"z"))

    def test_binary_with_invalid_utf8_is_fine(self):
        with RawWS(self.port, "/ws/echo?id=bin") as c:
            c.send_binary(b"\xff\xfe\xc0")
            self.assertEqual(c.read_message(), (OP_BINARY, b"\xff\xfe\xc0"))

    def test_invalid_utf8_close_reason_is_1007(self):
        self.assertClosedWith(1007, ws_frame(OP_CLOSE, ws_close_payload(1000, b"\xff\xfe")))

    def test_unmasked_client_frame_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_TEXT, "not masked", mask=False))

    def test_unmasked_frame_after_a_good_one_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_BINARY, b"x" * 200, mask=False), before="good")

    def test_reserved_bits_without_extension_are_1002(self):
        for rsv in (4, 2, 1):
            with self.subTest(rsv=rsv):
                self.assertClosedWith(1002, ws_frame(OP_TEXT, "rsv", rsv=rsv))

    def test_unknown_opcodes_are_1002(self):
        for op in (0x3, 0x7, 0xB, 0xF):
            with self.subTest(opcode=op):
                self.assertClosedWith(1002, ws_frame(op, b"?"))

    def test_invalid_close_codes_are_1002(self):
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535):
            with self.subTest(code=code):
                self.assertClosedWith(1002, ws_frame(OP_CLOSE, code.to_bytes(2, "big")))

    def test_one_byte_close_payload_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_CLOSE, b"\x03"))

    def test_empty_close_is_answered(self):
        with RawWS(self.port, "/ws/echo?id=emptyclose") as c:
            c.send_frame(OP_CLOSE, b"")
            code, _, data = c.expect_close(reply=False)
            self.assertIn(code, (None, 1000))  # an empty close or 1000
            self.assertTrue(c.wait_eof(scaled(10)))
        self.assertIn("code=1005", log_line(self.port, "ws-echo[id=emptyclose]: disconnect"))

    def test_control_frame_over_125_bytes_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_PING, b"p" * 126))

    def test_fragmented_control_frame_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_PING, b"half", fin=False))

    def test_continuation_without_a_message_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_CONT, b"orphan"))

    def test_new_message_inside_a_fragmented_one_is_1002(self):
        self.assertClosedWith(1002, ws_frame(OP_TEXT, b"part", fin=False),
                              ws_frame(OP_TEXT, b"again"))

    def test_control_frames_between_fragments_are_handled(self):
        with RawWS(self.port, "/ws/echo?id=interleave") as c:
            c.send(ws_frame(OP_TEXT, b"one ", fin=False) + ws_frame(OP_PING, b"p1")
                   + ws_frame(OP_CONT, b"two ", fin=False) + ws_frame(OP_PONG, b"unsolicited")
                   + ws_frame(OP_CONT, b"three", fin=True))
            f = c.read_frame()
            self.assertEqual((f.opcode, f.payload), (OP_PONG, b"p1"), f)
            self.assertEqual(c.read_message(), (OP_TEXT, b"one two three"))

    def test_many_small_fragments(self):
        parts = [bytes([65 + i % 26]) * 10 for i in range(1000)]
        data = ws_frame(OP_TEXT, parts[0], fin=False)
        data += b"".join(ws_frame(OP_CONT, p, fin=False) for p in parts[1:-1])
        data += ws_frame(OP_CONT, parts[-1], fin=True)
        with RawWS(self.port, "/ws/echo?id=manyfrags") as c:
            c.send(data)
            self.assertEqual(c.read_message(), (OP_TEXT, b"".join(parts)))

    def test_byte_by_byte_delivery(self):
        data = ws_frame(OP_TEXT, "x" * 300) + ws_frame(OP_BINARY, b"\x00" * 70000)
        with RawWS(self.port, "/ws/echo?id=bytes") as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = data[:40]
            for i in range(len(head)):
                c.send(head[i:i + 1])
                time.sleep(0.002)
            c.send(data[40:])
            self.assertEqual(c.read_message(), (OP_TEXT, b"x" * 300))
            self.assertEqual(c.read_message(), (OP_BINARY, b"\x00" * 70000))


# ---------------------------------------------------------------------------------------------
# Size limit
# ---------------------------------------------------------------------------------------------

class MaxSize(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server("--ws-max-size", "1024")
        self.port = self.srv.port

    def test_message_at_the_limit_passes_one_over_is_1009(self):
        async def go(compression):
            async with connect(self.port, "/ws/echo?id=limit", compression=compression) as ws:
                await ws.send(b"a" * 1024)
                back = await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                await ws.send(os.urandom(1025))
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return back, ws.close_code
        for compression in (None, "deflate"):
            with self.subTest(compression=compression):
                self.assertEqual(run(go(compression)), (b"a" * 1024, 1009))

    def test_fragmented_message_over_the_limit_is_1009(self):
        with RawWS(self.port, "/ws/echo?id=fraglimit") as c:
            c.send(ws_frame(OP_BINARY, b"x" * 600, fin=False)
                   + ws_frame(OP_CONT, b"y" * 600, fin=True))
            code, _, data = c.expect_close()
            self.assertEqual((code, data), (1009, []))

    def test_compressed_message_inflating_over_the_limit_is_1009(self):
        bomb = b"\x00" * (512 << 10)
        self.assertLess(len(deflate(bomb)), 1024)  # the frame itself is under the limit

        async def go():
            async with connect(self.port, "/ws/echo?id=bomb", compression="deflate") as ws:
                self.assertIn("permessage-deflate", ext_header(ws.response_headers))
                await ws.send(bomb)
                with self.assertRaises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
                return ws.close_code
        self.assertEqual(run(go()), 1009)
        with RawWS(self.port, "/ws/echo?id=rawbomb", extra_headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate")]) as c:
            self.assertIn("permessage-deflate", c.response.header("sec-websocket-extensions"))
            c.send_frame(OP_BINARY, deflate(bomb), rsv=4)
            code, _, data = c.expect_close()
            self.assertEqual((code, data), (1009, []))

    def test_announced_length_over_the_limit_closes_before_the_payload(self):
        with RawWS(self.port, "/ws/echo?id=announce") as c:
            # Announce 1 GiB, send only 100 bytes of it: the close must not wait for the rest.
            c.send(ws_frame(OP_BINARY, b"z" * 100, length=1 << 30)[:2 + 8 + 4 + 100])
            code, _, data = c.expect_close(timeout=scaled(15), reply=False)
            self.assertEqual((code, data), (1009, []))


# ---------------------------------------------------------------------------------------------
# HTTP timeouts end with the upgrade
# ---------------------------------------------------------------------------------------------

class IdleTimeouts(ServerTestCase):
    def test_idle_websocket_outlives_the_http_timeouts(self):
        srv = self.start_server("--timeout-keep-alive", "1", "--timeout-request-header", "1",
                                "--ws-ping-interval", "0")
        with RawWS(srv.port, "/ws/echo?id=idle") as c:
            # No keep-alive or header deadline, and no pings (interval 0): nothing for 3 s.
            self.assertFalse(c.wait_eof(3.0), "idle WebSocket closed by an HTTP timeout")
            self.assertEqual(bytes(c.buf), b"", "frames from a server told not to ping")
            c.send_text("after idle")
            self.assertEqual(c.read_message(), (OP_TEXT, b"after idle"))
            # A frame that stops half-way is not an HTTP head either.
            c.send(ws_frame(OP_TEXT, "x" * 100)[:10])
            self.assertFalse(c.wait_eof(2.5))


# ---------------------------------------------------------------------------------------------
# Server keepalive pings
# ---------------------------------------------------------------------------------------------

class Keepalive(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server("--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5")
        self.port = self.srv.port

    def test_client_that_answers_pings_stays_connected(self):
        with RawWS(self.port, "/ws/echo?id=alive") as c:
            pings = 0
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                try:
                    f = c.read_frame(timeout=max(0.05, deadline - time.monotonic()))
                except AssertionError as e:
                    if "no frame within" not in str(e):
                        raise
                    break  # nothing more within the 3 s
                self.assertIsNotNone(f, "server closed a client that answers its pings")
                self.assertNotEqual(f.opcode, OP_CLOSE, f"closed: {f!r}")
                if f.opcode == OP_PING:
                    pings += 1
                    c.send_frame(OP_PONG, f.payload)
            self.assertGreaterEqual(pings, 2, "the server did not ping every 0.5 s")
            c.send_text("still here")
            self.assertEqual(c.read_message(), (OP_TEXT, b"still here"))

    def test_client_library_stays_connected(self):
        async def go():
            async with connect(self.port, "/ws/echo?id=alive2") as ws:
                await asyncio.sleep(3.0)
                await ws.send("after 3 s")
                return await asyncio.wait_for(ws.recv(), IO_TIMEOUT)
        self.assertEqual(run(go()), "after 3 s")

    def test_client_that_never_answers_is_closed_1011(self):
        with RawWS(self.port, "/ws/echo?id=deaf") as c:
            start = time.monotonic()
            pings = 0
            while True:
                f = c.read_frame(timeout=scaled(15))
                self.assertIsNotNone(f, "TCP closed without a close frame")
                if f.opcode == OP_PING:
                    pings += 1
                    continue
                break
            elapsed = time.monotonic() - start
            self.assertEqual(f.opcode, OP_CLOSE, f)
            self.assertEqual(f.close_code, 1011, f)
            self.assertGreaterEqual(pings, 1)
            self.assertLess(elapsed, scaled(8))
            self.assertGreater(elapsed, 0.4)
            self.assertTrue(c.wait_eof(scaled(10)), "server kept the connection open")
        self.assertRegex(log_line(self.port, "ws-echo[id=deaf]: disconnect"), r"code=(1011|1006)")


# ---------------------------------------------------------------------------------------------
# permessage-deflate
# ---------------------------------------------------------------------------------------------

def inflate(payload):
    d = zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff") + d.flush()


def deflate(data):
    c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Deflate(ServerTestCase):
    def echo_messages(self, port, compression="deflate", **kw):
        msgs = ["small", text_of(100000, 3), b"\x00" * 200000, os.urandom(70000), "", "end"]

        async def go():
            async with connect(port, "/ws/echo?id=deflate", compression=compression, **kw) as ws:
                got = []
                for m in msgs:
                    await ws.send(m)
                    got.append(await asyncio.wait_for(ws.recv(), IO_TIMEOUT))
                return ext_header(ws.response_headers), got
        header, got = run(go())
        self.assertEqual(got, msgs)
        return header

    def test_negotiated_when_on(self):
        srv = self.start_server("--ws-per-message-deflate", "true")
        header = self.echo_messages(srv.port)
        self.assertIn("permessage-deflate", header)

    def test_on_by_default(self):
        srv = self.start_server()
        self.assertIn("permessage-deflate", self.echo_messages(srv.port))

    def test_not_negotiated_when_off(self):
        srv = self.start_server("--ws-per-message-deflate", "false")
        header = self.echo_messages(srv.port)
        self.assertEqual(header, "")
        with RawWS(srv.port, "/ws/echo", extra_headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")]) as c:
            self.assertIsNone(c.response.header("sec-websocket-extensions"), c.response)
            # Without the extension RSV1 is a protocol error.
            c.send_frame(OP_TEXT, deflate(b"hello"), rsv=4)
            self.assertEqual(c.expect_close()[0], 1002)

    def test_client_offer_parameters_are_honoured(self):
        srv = self.start_server()
        factory = ClientPerMessageDeflateFactory(server_no_context_takeover=True,
                                                 client_no_context_takeover=True,
                                                 server_max_window_bits=10,
                                                 client_max_window_bits=True)
        header = self.echo_messages(srv.port, compression=None, extensions=[factory])
        params = [p.strip() for p in header.split(";")]
        self.assertEqual(params[0], "permessage-deflate", header)
        self.assertIn("server_no_context_takeover", params, header)
        bits = [int(p.split("=")[1]) for p in params if p.startswith("server_max_window_bits")]
        self.assertTrue(bits and 9 <= bits[0] <= 10, header)

    def test_offers_the_server_cannot_take_are_declined_not_fatal(self):
        srv = self.start_server()
        cases = [
            ("permessage-deflate; unknown_param", None),
            ("permessage-deflate; server_max_window_bits=7", None),
            ("permessage-deflate; server_max_window_bits", None),   # needs a value
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
            ("x-webkit-deflate-frame", None),
            # The first offer is invalid; the second is taken.
            ("permessage-deflate; server_max_window_bits=7, permessage-deflate",
             "permessage-deflate"),
        ]
        for offer, expected in cases:
            with self.subTest(offer=offer):
                with RawWS(srv.port, "/ws/echo",
                           extra_headers=[("Sec-WebSocket-Extensions", offer)]) as c:
                    self.assertEqual(c.response.status, 101, c.response)
                    ext = c.response.header("sec-websocket-extensions")
                    if expected is None:
                        self.assertIsNone(ext, c.response)
                    else:
                        self.assertTrue(ext and ext.split(";")[0].strip() == expected,
                                        c.response)
                    c.send_text("t" * 3000)
                    f = c.read_frame()
                    self.assertEqual(f.opcode, OP_TEXT, f)
                    body = inflate(f.payload) if f.rsv & 4 else f.payload
                    self.assertEqual(body, b"t" * 3000)
                    if expected is None:
                        self.assertEqual(f.rsv, 0, f)

    def test_server_max_window_bits_is_a_promise(self):
        # Offered 9: the server may answer 9 and must then compress with a 512-byte window, so
        # that an inflater with a 512-byte window decodes it. (zlib cannot deflate with 8, so an
        # offer of 8 must be declined rather than answered with more.)
        srv = self.start_server()
        rnd = random.Random(1)
        block = bytes(rnd.randrange(97, 123) for _ in range(300))
        msg = block * 40  # repeats at distance 300: within 512, beyond 256
        with RawWS(srv.port, "/ws/echo", extra_headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=9")]) as c:
            ext = c.response.header("sec-websocket-extensions") or ""
            self.assertIn("server_max_window_bits=9", ext, c.response)
            c.send_text(msg)
            f = c.read_frame()
            self.assertEqual(f.rsv, 4, f)
            d = zlib.decompressobj(-9)
            self.assertEqual(d.decompress(f.payload + b"\x00\x00\xff\xff"), msg)
        with RawWS(srv.port, "/ws/echo", extra_headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate; server_max_window_bits=8")]) as c:
            ext = c.response.header("sec-websocket-extensions")
            if ext is not None:
                self.assertNotIn("server_max_window_bits=9", ext)
                self.assertNotIn("server_max_window_bits=1", ext)
                c.send_text(msg)
                f = c.read_frame()
                d = zlib.decompressobj(-8)
                body = d.decompress(f.payload + b"\x00\x00\xff\xff") if f.rsv & 4 else f.payload
                self.assertEqual(body, msg)

    def test_knobs(self):
        for args in (("--ws-deflate-window-bits", "9"), ("--ws-deflate-window-bits", "12"),
                     ("--ws-deflate-mem-level", "1"), ("--ws-deflate-mem-level", "9")):
            with self.subTest(args=args):
                srv = self.start_server(*args)
                self.assertIn("permessage-deflate", self.echo_messages(srv.port))
                srv.stop()

    def test_threshold_and_raw_compressed_frames(self):
        srv = self.start_server("--ws-deflate-threshold", "1000")
        with RawWS(srv.port, "/ws/echo", extra_headers=[
                ("Sec-WebSocket-Extensions",
                 "permessage-deflate; server_no_context_takeover; "
                 "client_no_context_takeover")]) as c:
            self.assertEqual(c.response.status, 101, c.response)
            ext = c.response.header("sec-websocket-extensions") or ""
            self.assertTrue(ext.startswith("permessage-deflate"), c.response)
            self.assertIn("server_no_context_takeover", ext)
            small, large = b"s" * 500, b"L" * 5000
            # Uncompressed from the client is fine under the extension.
            c.send_frame(OP_TEXT, small)
            f = c.read_frame()
            self.assertEqual((f.opcode, f.rsv, f.payload), (OP_TEXT, 0, small), f)
            c.send_frame(OP_TEXT, large)
            f = c.read_frame()
            self.assertEqual((f.opcode, f.rsv), (OP_TEXT, 4), f)
            self.assertLess(len(f.payload), len(large))
            self.assertEqual(inflate(f.payload), large)
            # A compressed message from the client, in two fragments (RSV1 on the first only).
            comp = deflate(b"compressed hello " * 100)
            c.send(ws_frame(OP_BINARY, comp[:10], fin=False, rsv=4)
                   + ws_frame(OP_CONT, comp[10:], fin=True))
            f = c.read_frame()
            self.assertEqual(f.opcode, OP_BINARY, f)
            body = inflate(f.payload) if f.rsv & 4 else f.payload
            self.assertEqual(body, b"compressed hello " * 100)
            # RSV1 on a continuation frame is a protocol error.
            c.send(ws_frame(OP_TEXT, comp[:10], fin=False, rsv=4)
                   + ws_frame(OP_CONT, comp[10:], fin=True, rsv=4))
            self.assertEqual(c.expect_close()[0], 1002)

    def test_corrupt_compressed_data_closes_the_connection(self):
        srv = self.start_server()
        with RawWS(srv.port, "/ws/echo", extra_headers=[
                ("Sec-WebSocket-Extensions", "permessage-deflate")]) as c:
            self.assertIn("permessage-deflate", c.response.header("sec-websocket-extensions"))
            c.send_frame(OP_TEXT, b"\xff\xff\xff\xff garbage", rsv=4)
            code, _, data = c.expect_close()
            self.assertEqual(data, [])
            self.assertIn(code, (1002, 1007), code)


# ---------------------------------------------------------------------------------------------
# Backpressure: bounded buffering in both directions
# ---------------------------------------------------------------------------------------------

def ws_stats(port):
    return parse_codes(get(port, "/ws-stats").body)


class Backpressure(ServerTestCase):
    def test_client_sending_to_an_app_that_does_not_read_is_held_back(self):
        srv = self.start_server("--ws-max-queue", "4")
        port = srv.port
        size = 65536
        frame = ws_frame(OP_BINARY, bytes(range(256)) * (size // 256))
        limit = 256 << 20  # what an unbounded server would swallow
        with RawWS(port, "/ws/slow-reader?id=slow", sndbuf=65536, rcvbuf=65536) as c:
            self.assertEqual(c.response.status, 101, c.response)
            try:
                sent = send_until_blocked(c.sock, frame, stall=scaled(3), limit=limit)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail(f"the server dropped the connection instead of pausing reading: {e}")
            self.assertLess(sent, 16 << 20,
                            f"the server took {sent} bytes from a client its app does not read")
            self.assertGreater(sent, 0)
            stats = ws_stats(port)
            self.assertEqual((stats["slow_parked"], stats["slow_messages"]), (1, 0), stats)
            # Now the app reads: everything sent arrives, and the rest of the stream flows.
            self.assertEqual(get(port, "/ws-release").body, b"released=1")
            rest = len(frame) - sent % len(frame)
            c.sock.settimeout(IO_TIMEOUT)
            c.send(frame[len(frame) - rest:])
            sent += rest
            for _ in range(10):
                c.send(frame)
                sent += len(frame)
            messages = sent // len(frame)
            c.send_close(1000, "enough")
            code, _, _ = c.expect_close(timeout=scaled(60))
            self.assertEqual(code, 1000)
        line = log_line(port, "ws-slow-reader[id=slow]: disconnect")
        self.assertIn(f"code=1000 reason=enough messages={messages} bytes={messages * size}",
                      line)

    def test_echo_to_a_client_that_does_not_read_is_held_back(self):
        # client -> server -> ws_echo.so -> server -> client: when the client stops reading, the
        # echo's send callbacks stop, the app stops receiving, the server stops reading.
        require_file(WS_ECHO, "apps/ws_echo.so")
        srv = self.start_server(app=WS_ECHO)
        payload = os.urandom(65536)
        frame = ws_frame(OP_BINARY, payload)
        with RawWS(srv.port, "/echo", sndbuf=65536, rcvbuf=65536) as c:
            self.assertEqual(c.response.status, 101, c.response)
            try:
                sent = send_until_blocked(c.sock, frame, stall=scaled(3), limit=256 << 20)
            except (BrokenPipeError, ConnectionResetError) as e:
                self.fail(f"the server dropped the connection instead of pausing reading: {e}")
            self.assertLess(sent, 32 << 20, f"{sent} bytes went in while nothing came out")
            count = -(-sent // len(frame))  # the partly sent frame gets completed below

            def read_all():
                for i in range(count):
                    op, data = c.read_message(timeout=scaled(30))
                    if (op, data) != (OP_BINARY, payload):
                        raise AssertionError(f"echo {i} of {count}: {op!r}, "
                                             f"{len(data) if data else data!r} bytes")
                return count
            reader = Thread(read_all)
            reader.start()
            rest = (len(frame) - sent % len(frame)) % len(frame)
            if rest:
                c.sock.settimeout(IO_TIMEOUT)
                c.sock.sendall(frame[len(frame) - rest:])
            self.assertEqual(reader.join_checked(scaled(90)), count)
            c.send_close(1000)
            self.assertEqual(c.expect_close()[0], 1000)

    def test_app_flooding_a_client_that_does_not_read_is_held_back(self):
        srv = self.start_server()
        port = srv.port
        count, size = 3000, 16384  # 48 MiB in all
        query = f"size={size}&id=flood"
        c = RawWS(port, f"/ws/flood/{count}?{query}", rcvbuf=65536)
        self.addCleanup(c.close)
        self.assertEqual(c.response.status, 101, c.response)

        # Not reading: the app's sends must stall well before it has sent everything.
        last, stable_since = -1, time.monotonic()
        deadline = time.monotonic() + scaled(60)
        while time.monotonic() < deadline:
            cur = ws_stats(port)["flood_bytes"]
            if cur != last:
                last, stable_since = cur, time.monotonic()
            elif time.monotonic() - stable_since > scaled(2):
                break
            time.sleep(0.1)
        self.assertGreater(last, 0, "the app never sent")
        self.assertLess(last, 16 << 20,
                        f"send callbacks kept firing for a client that does not read: {last} "
                        f"bytes taken")

        # Reading: every message arrives complete and in order, then the app's close.
        pattern = bytes(j % 251 for j in range(size + 251))
        for i in range(count):
            op, data = c.read_message(timeout=scaled(30))
            self.assertEqual(op, OP_BINARY, f"message {i}: {op!r} {data!r}")
            self.assertEqual(len(data), size, f"message {i}")
            self.assertEqual(int.from_bytes(data[:8], "big"), i)
            off = (i + 8) % 251
            if data[8:] != pattern[off:off + size - 8]:
                self.fail(f"message {i} corrupted")
        code, reason, data = c.expect_close()
        self.assertEqual((code, reason, data), (1000, b"flood done", []))
        c.close()
        self.assertIn("close=0", log_line(port, f"ws-flood[{query}]: sent={count}"))

    def test_client_leaving_during_a_flood(self):
        srv = self.start_server()
        port = srv.port
        c = RawWS(port, "/ws/flood/1000000?size=4096&id=leave", rcvbuf=65536)
        self.assertEqual(c.response.status, 101, c.response)
        for _ in range(5):
            self.assertEqual(c.read_message()[0], OP_BINARY)
        c.abort()
        line = log_line(port, "ws-flood[size=4096&id=leave]: disconnect")
        self.assertIn("code=1006", line)
        self.assertEqual(get(port, "/ok").status, 200)


# ---------------------------------------------------------------------------------------------
# Order: an app's sends reach the client before its close
# ---------------------------------------------------------------------------------------------

class SendOrder(ServerTestCase):
    """testapp's /ws/burst/N sends N messages without waiting for send callbacks and then at once
    closes, returns or fails: the server has them queued when the end comes, and all of them
    must still go out, in order, before the close frame (ASGI events keep their order)."""

    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def burst(self, n, size, end, expected_code):
        query = f"size={size}&end={end}"
        with RawWS(self.port, f"/ws/burst/{n}?{query}", rcvbuf=65536) as c:
            self.assertEqual(c.response.status, 101, c.response)
            time.sleep(0.5)  # let the app queue everything while we do not read
            got = []
            while True:
                op, data = c.read_message(timeout=scaled(30))
                if op != OP_BINARY:
                    break
                got.append(data)
            self.assertEqual(op, "close", f"after {len(got)} messages: {op!r} {data!r}")
            self.assertEqual(data.close_code, expected_code, data)
            lens = [len(m) for m in got]
            firsts = [m[0] for m in got]
            self.assertEqual(len(got), n, f"{len(got)} of {n} messages arrived before the close "
                                          f"frame {data!r}; first bytes {firsts[-5:]}")
            self.assertEqual(lens, [size] * n)
            self.assertEqual(firsts, [i % 256 for i in range(n)])
            c.send_close(1000)
            self.assertTrue(c.wait_eof(scaled(10)))
        line = log_line(self.port, f"ws-burst[{query}]: sent=")
        self.assertIn(f"sent={n} send=0", line)

    def test_sends_then_close(self):
        self.burst(40, 32768, "close", 1000)

    def test_sends_then_return(self):
        self.burst(40, 32768, "return", 1000)

    def test_sends_then_failure(self):
        self.burst(40, 32768, "fail", 1011)

    def test_small_sends_then_close(self):
        self.burst(500, 100, "close", 1000)


# ---------------------------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------------------------

class Shutdown(ServerTestCase):
    def shutdown_with_open_sockets(self, app, path_fmt):
        srv = self.start_server(app=app)

        async def go():
            socks = [await connect(srv.port, path_fmt.format(i)) for i in range(3)]
            for i, ws in enumerate(socks):
                await ws.send(f"hello {i}")
                self.assertEqual(await asyncio.wait_for(ws.recv(), IO_TIMEOUT), f"hello {i}")
            srv.send_signal()
            return [await closed_code(ws, scaled(20)) for ws in socks]
        codes = run(go())
        self.assertEqual([c for c, _ in codes], [1012] * 3, codes)
        srv.wait_exit()
        srv.check(0)
        return srv

    def test_sigterm_closes_open_websockets_with_1012(self):
        srv = self.shutdown_with_open_sockets(None, "/ws/echo?id=sd{}")
        err = srv.stderr()
        for i in range(3):
            self.assertIn(f"ws-echo[id=sd{i}]: disconnect code=1012", err)

    def test_sigterm_with_ws_echo(self):
        require_file(WS_ECHO, "apps/ws_echo.so")
        self.shutdown_with_open_sockets(WS_ECHO, "/chat/{}")

    def test_sigterm_with_a_client_that_never_answers_the_close(self):
        srv = self.start_server()
        c = RawWS(srv.port, "/ws/echo?id=deafsd")
        self.addCleanup(c.close)
        srv.send_signal()
        code, _, _ = c.expect_close(timeout=scaled(20), reply=False)
        self.assertEqual(code, 1012)
        srv.wait_exit(scaled(20))
        srv.check(0)

    def test_sigterm_with_a_raw_client(self):
        srv = self.start_server()
        with RawWS(srv.port, "/ws/echo?id=rawsd") as c:
            c.send_text("x")
            self.assertEqual(c.read_message(), (OP_TEXT, b"x"))
            srv.send_signal()
            code, _, _ = c.expect_close(timeout=scaled(20))
            self.assertEqual(code, 1012)
        srv.wait_exit()
        srv.check(0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
