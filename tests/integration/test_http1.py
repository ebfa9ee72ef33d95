"""HTTP/1.1 semantics of the real runner over loopback: methods, keep-alive, Connection: close,
HTTP/1.0, pipelining, request bodies (Content-Length, chunked, large), response framing (chunked,
empty, HEAD, 204/304, trailers), default headers, 100-continue."""

import os
import re
import socket
import time
import unittest

from casgi_harness import (HELLO, Conn, ServerTestCase, Thread, app_log, chunked, curl,
                           exchange, fnv1a, get, http_client, parse_codes, parse_response,
                           parse_scope, scaled)

IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                         r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                         r"\d{2}:\d{2}:\d{2} GMT$")


def body_pattern(n):
    """The bytes testapp's /big/N sends: byte i is i % 251."""
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


class BasicMethods(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_get(self):
        r = get(self.port, "/ok")
        self.assertResponse(r, 200, b"ok")
        self.assertEqual(r.version, "1.1")
        self.assertEqual(r.header("content-length"), "2")
        self.assertIsNone(r.header("transfer-encoding"))

    def test_get_unknown_route_is_app_404(self):
        self.assertResponse(get(self.port, "/no/such/route"), 404, b"not found")

    def test_get_with_http_client(self):
        status, headers, body = http_client(self.port, "GET", "/ok")
        self.assertEqual((status, body), (200, b"ok"))

    def test_get_with_curl(self):
        p = curl("-i", f"http://127.0.0.1:{self.port}/ok")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/1.1 200"), p.stdout)
        self.assertTrue(p.stdout.endswith(b"\r\n\r\nok"), p.stdout)

    def test_head_sends_headers_only(self):
        with Conn(self.port) as c:
            c.request("HEAD", "/ok")
            r = c.read_response(head=True)
            self.assertResponse(r, 200, b"")
            self.assertEqual(r.header("content-length"), "2")
            # Any body bytes after the HEAD response would break the next response's parse.
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_head_of_chunked_response_sends_headers_only(self):
        with Conn(self.port) as c:
            c.request("HEAD", "/chunks/3")
            self.assertResponse(c.read_response(head=True), 200, b"")
            c.request("HEAD", "/empty")
            self.assertResponse(c.read_response(head=True), 200, b"")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_post_content_length_body(self):
        body = os.urandom(10000)
        r = exchange(self.port, "POST", "/read-body", body=body)
        self.assertResponse(r, 200)
        codes = parse_codes(r.body.split(b" sum=")[0])
        self.assertEqual(codes["len"], len(body))
        self.assertIn(b"sum=%08x" % fnv1a(body), r.body)

    def test_post_empty_body(self):
        r = exchange(self.port, "POST", "/read-body", body=b"")
        self.assertResponse(r, 200)
        self.assertTrue(r.body.startswith(b"len=0 "), r.body)

    def test_get_without_body_delivers_empty_request_event(self):
        # The app's first receive gets http.request with an empty body and more_body 0.
        r = get(self.port, "/read-body")
        self.assertResponse(r, 200)
        self.assertTrue(r.body.startswith(b"len=0 "), r.body)

    def test_post_chunked_body(self):
        pieces = [os.urandom(n) for n in (1, 100, 5000, 17, 70000)]
        data = b"".join(pieces)
        r = exchange(self.port, "POST", "/read-body",
                     headers=[("Host", "x"), ("Transfer-Encoding", "chunked")],
                     body=chunked(pieces))
        self.assertResponse(r, 200)
        self.assertIn(b"len=%d sum=%08x" % (len(data), fnv1a(data)), r.body)

    def test_post_chunked_with_extensions_and_trailers(self):
        raw = (b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
        with Conn(self.port) as c:
            c.send(raw)
            r = c.read_response()
            self.assertResponse(r, 200)
            self.assertIn(b"len=11 sum=%08x" % fnv1a(b"hello world"), r.body)
            # The connection is still in sync after the trailer section.
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_chunked_body_fed_in_pieces(self):
        raw = (b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked([b"abc", b"defgh", b"i" * 300]))
        with Conn(self.port) as c:
            for i in range(0, len(raw), 7):
                c.send(raw[i:i + 7])
                time.sleep(0.002)
            r = c.read_response()
        data = b"abcdefgh" + b"i" * 300
        self.assertResponse(r, 200)
        self.assertIn(b"len=%d sum=%08x" % (len(data), fnv1a(data)), r.body)

    def test_chunked_upload_with_curl(self):
        data = os.urandom(300000)
        path = os.path.join(self.srv.dir, "upload.bin")
        with open(path, "wb") as f:
            f.write(data)
        p = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + path,
                 f"http://127.0.0.1:{self.port}/echo")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, data)

    def test_other_methods_reach_the_app(self):
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                r = exchange(self.port, method, "/scope", body=b"")
                self.assertResponse(r, 200)
                self.assertEqual(parse_scope(r.body)["method"], method)

    def test_body_longer_than_content_length_is_not_body(self):
        # The 5 extra bytes are the start of a next (malformed) request, never part of the body.
        with Conn(self.port) as c:
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloworld")
            r = c.read_response()
            self.assertResponse(r, 200)
            self.assertIn(b"len=5 sum=%08x" % fnv1a(b"hello"), r.body)
            rest = c.read_until_close(scaled(10))
            if rest:
                r2, _ = parse_response(rest, eof=True)
                self.assertEqual(r2.status, 400, r2)


class LargeBodies(ServerTestCase):
    SIZE = 8 << 20

    def _echo(self, port, body, use_chunked):
        """Sends `body` to /echo from a thread while reading the echo; returns the response."""
        with Conn(port, timeout=scaled(120)) as c:
            if use_chunked:
                head = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            else:
                head = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                        % len(body))

            def sender():
                c.send(head)
                step = 256 * 1024
                for i in range(0, len(body), step):
                    piece = body[i:i + step]
                    c.send(b"%x\r\n%s\r\n" % (len(piece), piece) if use_chunked else piece)
                if use_chunked:
                    c.send(b"0\r\n\r\n")

            t = Thread(sender)
            t.start()
            r = c.read_response(timeout=scaled(120), idle=scaled(15))
            t.join_checked(scaled(30))
            return r

    def test_large_post_echo_hello_content_length(self):
        srv = self.start_server(app=HELLO)
        body = os.urandom(self.SIZE)
        r = self._echo(srv.port, body, use_chunked=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), len(body))
        self.assertTrue(r.body == body, "echoed body differs")

    def test_large_post_echo_hello_chunked(self):
        srv = self.start_server(app=HELLO)
        body = os.urandom(self.SIZE)
        r = self._echo(srv.port, body, use_chunked=True)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), len(body))
        self.assertTrue(r.body == body, "echoed body differs")

    def test_large_post_echo_testapp_with_backpressure(self):
        srv = self.start_server()
        body = os.urandom(self.SIZE)
        r = self._echo(srv.port, body, use_chunked=False)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body == body, "echoed body differs")

    def test_echo_streams_before_request_body_is_complete(self):
        # Half of the body goes out, then the client waits: a streaming echo answers with the
        # first half before the second is sent; a buffering server would wait forever.
        srv = self.start_server(app=HELLO)
        first, second = os.urandom(1 << 20), os.urandom(1 << 20)
        with Conn(srv.port, timeout=scaled(60)) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                   % (len(first) + len(second)) + first)
            deadline = time.monotonic() + scaled(20)
            while len(c.buf) < 256 * 1024:
                try:
                    c._recv(deadline)
                except socket.timeout:
                    self.fail(f"no echo of the first half within 20 s (got {len(c.buf)} bytes)")
                self.assertFalse(c.eof, "server closed the connection")
            c.send(second)
            r = c.read_response(timeout=scaled(60), idle=scaled(15))
            self.assertEqual(r.status, 200)
            self.assertTrue(r.body == first + second, "echoed body differs")

    def test_request_body_not_read_ahead_of_app(self):
        # The app does not receive for 3 s. A server that pauses reading above its high-water
        # mark lets the client push only what the socket buffers hold (a few MiB); one that
        # reads ahead would swallow the whole 64 MiB meanwhile.
        srv = self.start_server()
        total = 64 << 20
        sent = [0]
        c = Conn(srv.port, timeout=scaled(30))
        self.addCleanup(c.close)
        c.send(b"POST /slow-deaf-ms/3000 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
               % total)
        srv.wait_stderr("slow-deaf-ms 3000 started", timeout=scaled(10))

        def pump():
            piece = b"p" * 65536
            c.sock.setblocking(False)
            end = time.monotonic() + 2.0
            while time.monotonic() < end and sent[0] < total:
                try:
                    sent[0] += c.sock.send(piece)
                except BlockingIOError:
                    time.sleep(0.01)
                except OSError:
                    break

        pump()
        self.assertLess(sent[0], 32 << 20,
                        f"server read {sent[0] >> 20} MiB of a body its app never asked for")

    def test_large_download_with_backpressure(self):
        srv = self.start_server()
        n = 16 << 20
        with Conn(srv.port, timeout=scaled(120)) as c:
            c.request("GET", f"/big/{n}")
            r = c.read_response(timeout=scaled(120), idle=scaled(15))
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), n)
            self.assertTrue(r.body == body_pattern(n), "downloaded body differs")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
        self.assertNotIn("big:", app_log(srv.port))


class KeepAlive(ServerTestCase):
    def test_connection_reused_for_many_requests(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            for i in range(10):
                c.request("GET", f"/scope?i={i}")
                r = c.read_response()
                self.assertResponse(r, 200)
                self.assertNotIn("close", r.connection_tokens())
                scope = parse_scope(r.body)
                self.assertEqual(scope["query_string"], f"i={i}")
                self.assertEqual(int(scope["client_port"]), c.local_port())

    def test_http_client_reuses_connection(self):
        import http.client
        srv = self.start_server()
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=20)
        try:
            ports = set()
            for _ in range(3):
                conn.request("GET", "/scope")
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                self.assertFalse(resp.will_close)
                ports.add(parse_scope(resp.read())["client_port"])
            self.assertEqual(len(ports), 1, ports)
        finally:
            conn.close()

    def test_idle_keep_alive_connection_closed_after_timeout(self):
        srv = self.start_server("--timeout-keep-alive", "1")
        with Conn(srv.port) as c:
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
            t0 = time.monotonic()
            closed, extra = c.wait_closed(scaled(10))
            elapsed = time.monotonic() - t0
        self.assertTrue(closed, "idle connection not closed within 10 s (timeout 1 s)")
        self.assertEqual(extra, b"")
        self.assertGreaterEqual(elapsed, 0.5, "closed long before the 1 s keep-alive timeout")

    def test_default_keep_alive_outlasts_two_seconds(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
            self.assertTrue(c.is_open_after(2.0), "closed before the default 5 s timeout")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_keep_alive_timer_does_not_cut_a_slow_request(self):
        srv = self.start_server("--timeout-keep-alive", "1")
        with Conn(srv.port) as c:
            c.request("GET", "/slow-ms/2000")
            self.assertResponse(c.read_response(timeout=scaled(20)), 200, b"slept 2000")

    def test_connection_close_single_request(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.request("GET", "/ok", [("Host", "x"), ("Connection", "close")])
            r = c.read_response()
            self.assertResponse(r, 200, b"ok")
            self.assertIn("close", r.connection_tokens())
            self.assertEqual(c.read_until_close(scaled(5)), b"")

    def test_connection_close_large_response_then_clean_close(self):
        # The client asked to close and sent all of its request, so the server closes without a
        # lingering shutdown once the output is out: a response that needed uv_write (the client
        # reads it slowly) must still arrive whole and end with a FIN, not a reset.
        srv = self.start_server()
        n = 16 << 20
        with Conn(srv.port, timeout=scaled(120)) as c:
            c.request("GET", f"/big/{n}", [("Host", "x"), ("Connection", "close")])
            time.sleep(0.5)  # the kernel buffers fill; the rest waits in the server
            r = c.read_response(timeout=scaled(120), idle=scaled(15))
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), n)
            self.assertTrue(r.body == body_pattern(n), "downloaded body differs")
            self.assertEqual(c.read_until_close(scaled(5)), b"")
            self.assertFalse(c.reset, "the connection ended with a reset")

    def test_connection_close_after_several_requests(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            for _ in range(3):
                c.request("GET", "/ok")
                self.assertResponse(c.read_response(), 200, b"ok")
            c.request("GET", "/ok", [("Host", "x"), ("Connection", "close")])
            r = c.read_response()
            self.assertResponse(r, 200, b"ok")
            self.assertIn("close", r.connection_tokens())
            self.assertEqual(c.read_until_close(scaled(5)), b"")

    def test_connection_close_in_pipeline_stops_there(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   b"GET /counters HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertResponse(c.read_response(), 200, b"ok")
            self.assertResponse(c.read_response(), 200, b"ok")
            self.assertEqual(c.read_until_close(scaled(5)), b"",
                             "request after Connection: close was answered")

    def test_http10_closes_by_default(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.send(b"GET /ok HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertResponse(r, 200, b"ok")
            self.assertEqual(c.read_until_close(scaled(5)), b"")

    def test_http10_keep_alive_on_request(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            for _ in range(3):
                c.send(b"GET /ok HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                r = c.read_response()
                self.assertResponse(r, 200, b"ok")
                self.assertIn("keep-alive", r.connection_tokens())
            self.assertTrue(c.is_open_after(0.5))

    def test_http10_unknown_length_response_is_close_delimited(self):
        srv = self.start_server()
        for extra in (b"", b"Connection: keep-alive\r\n"):
            with self.subTest(extra=extra), Conn(srv.port) as c:
                c.send(b"GET /chunks/3 HTTP/1.0\r\n" + extra + b"\r\n")
                data = c.read_until_close(scaled(10))
                r, _ = parse_response(data, eof=True)
                self.assertTrue(r.complete, r)
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("transfer-encoding"), "chunked sent to HTTP/1.0")
                self.assertEqual(r.body, b"chunk-0\nchunk-1\nchunk-2\n")


class Pipelining(ServerTestCase):
    def test_pipelined_requests_answered_in_order(self):
        srv = self.start_server()
        body = b"pipelined body"
        with Conn(srv.port) as c:
            c.send(b"GET /slow-ms/300 HTTP/1.1\r\nHost: x\r\n\r\n"
                   + b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                   % len(body) + body
                   + b"GET /scope?n=3 HTTP/1.1\r\nHost: x\r\n\r\n"
                   + b"HEAD /ok HTTP/1.1\r\nHost: x\r\n\r\n"
                   + b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertResponse(c.read_response(), 200, b"slept 300")
            r = c.read_response()
            self.assertResponse(r, 200)
            self.assertIn(b"len=%d sum=%08x" % (len(body), fnv1a(body)), r.body)
            r = c.read_response()
            self.assertResponse(r, 200)
            self.assertEqual(parse_scope(r.body)["query_string"], "n=3")
            self.assertResponse(c.read_response(head=True), 200, b"")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_many_pipelined_requests(self):
        srv = self.start_server()
        n = 200
        with Conn(srv.port) as c:
            c.send(b"".join(b"GET /scope?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
            for i in range(n):
                r = c.read_response()
                self.assertResponse(r, 200)
                self.assertEqual(parse_scope(r.body)["query_string"], f"i={i}")

    def test_pipelined_requests_run_one_at_a_time(self):
        # Two slow requests pipelined: the second starts only after the first finished, so
        # together they take at least the sum of both delays.
        srv = self.start_server()
        with Conn(srv.port) as c:
            t0 = time.monotonic()
            c.send(b"GET /slow-ms/400 HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /slow-ms/400 HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertResponse(c.read_response(), 200, b"slept 400")
            self.assertResponse(c.read_response(), 200, b"slept 400")
            self.assertGreaterEqual(time.monotonic() - t0, 0.75)
        text = srv.stderr()
        first_done = text.find("slow-ms 400 done")
        second_start = text.find("slow-ms 400 started", text.find("slow-ms 400 started") + 1)
        self.assertTrue(0 <= first_done < second_start, text)


class ResponseFraming(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_chunked_response(self):
        with Conn(self.port) as c:
            c.request("GET", "/chunks/5")
            r = c.read_response()
            self.assertResponse(r, 200, b"".join(b"chunk-%d\n" % i for i in range(5)))
            self.assertTrue(r.chunked, r)
            self.assertIsNone(r.header("content-length"))
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_empty_response_without_content_length(self):
        with Conn(self.port) as c:
            c.request("GET", "/empty")
            r = c.read_response()
            self.assertResponse(r, 200, b"")
            self.assertTrue(r.chunked or r.header("content-length") == "0", r)
            c.request("GET", "/chunks/0")
            self.assertResponse(c.read_response(), 200, b"")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_hello_stream_is_chunked(self):
        srv = self.start_server(app=HELLO)
        with Conn(srv.port) as c:
            c.request("GET", "/stream")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.chunked, r)
            self.assertGreater(len(r.body), 0)

    def test_repeated_and_mixed_case_response_headers_kept(self):
        r = get(self.port, "/headers-out")
        self.assertResponse(r, 200, b"ok")
        self.assertEqual(r.header_all("x-multi"), ["a", "b"])
        self.assertEqual(r.header("x-case"), "MiXeD")

    def test_204_and_304_have_no_body(self):
        for status in (204, 304):
            with self.subTest(status=status), Conn(self.port) as c:
                c.send(b"GET /status/%d HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" % status)
                r = c.read_response()
                self.assertEqual(r.status, status)
                self.assertIsNone(r.header("transfer-encoding"), r)
                if status == 204:
                    self.assertIsNone(r.header("content-length"), r)
                # A body (even a "0\r\n\r\n" chunk) would corrupt this next response.
                self.assertResponse(c.read_response(), 200, b"ok")

    def test_other_statuses_pass_through(self):
        for status in (201, 400, 404, 418, 500, 503, 599):
            with self.subTest(status=status):
                self.assertResponse(get(self.port, f"/status/{status}"), status,
                                    b"status %d\n" % status)

    def test_head_of_204(self):
        with Conn(self.port) as c:
            c.request("HEAD", "/status/204")
            self.assertEqual(c.read_response(head=True).status, 204)
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_trailers_over_chunked(self):
        with Conn(self.port) as c:
            c.request("GET", "/trailers", [("Host", "x"), ("TE", "trailers")])
            r = c.read_response()
            self.assertResponse(r, 200, b"abcdef")
            self.assertTrue(r.chunked, r)
            self.assertEqual(r.trailer("x-checksum"), "abcdef", r)
            self.assertEqual(r.trailer("x-extra"), "1", r)
            self.assertIsNone(r.header("x-checksum"), "trailer sent as a header")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
        codes = parse_codes(app_log(self.port).split("trailers:")[1].splitlines()[0])
        self.assertEqual(codes, {"start": 0, "body1": 0, "body2": 0, "trailers": 0})

    def test_trailers_to_http10_client_body_intact(self):
        with Conn(self.port) as c:
            c.send(b"GET /trailers HTTP/1.0\r\n\r\n")
            data = c.read_until_close(scaled(10))
        r, _ = parse_response(data, eof=True)
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("transfer-encoding"))
        self.assertEqual(r.body, b"abcdef")


class DefaultHeaders(ServerTestCase):
    def test_date_and_server_present_by_default(self):
        srv = self.start_server()
        for path in ("/ok", "/chunks/2", "/status/404"):
            with self.subTest(path=path):
                r = get(srv.port, path)
                self.assertEqual(len(r.header_all("date")), 1, r)
                self.assertRegex(r.header("date"), IMF_FIXDATE)
                self.assertEqual(len(r.header_all("server")), 1, r)
                self.assertTrue(r.header("server").startswith("casgi"), r)

    def test_date_is_current(self):
        import email.utils
        srv = self.start_server()
        r = get(srv.port, "/ok")
        when = email.utils.parsedate_to_datetime(r.header("date")).timestamp()
        self.assertLess(abs(when - time.time()), 5)

    def test_no_date_header(self):
        srv = self.start_server("--no-date-header")
        r = get(srv.port, "/ok")
        self.assertResponse(r, 200, b"ok")
        self.assertIsNone(r.header("date"))
        self.assertIsNotNone(r.header("server"))

    def test_no_server_header(self):
        srv = self.start_server("--no-server-header")
        r = get(srv.port, "/ok")
        self.assertResponse(r, 200, b"ok")
        self.assertIsNone(r.header("server"))
        self.assertIsNotNone(r.header("date"))

    def test_extra_default_headers(self):
        srv = self.start_server("--header", "X-Extra:yes", "--header", "X-Other: two words")
        for path in ("/ok", "/chunks/1", "/status/404"):
            with self.subTest(path=path):
                r = get(srv.port, path)
                self.assertEqual(r.header("x-extra"), "yes", r)
                self.assertEqual(r.header("x-other"), "two words", r)
        # the server's own answers carry them too (uvicorn's 400 does)
        with Conn(srv.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 400, r)
            self.assertEqual(r.header("x-extra"), "yes", r)
            self.assertEqual(r.header("x-other"), "two words", r)


class ExpectContinue(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_100_continue_sent_when_app_reads(self):
        with Conn(self.port) as c:
            c.send(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            interim = c.read_response(timeout=scaled(10))
            self.assertEqual(interim.status, 100, interim)
            c.send(b"hello")
            r = c.read_response()
            self.assertResponse(r, 200)
            self.assertIn(b"len=5 sum=%08x" % fnv1a(b"hello"), r.body)

    def test_no_100_continue_when_app_does_not_read(self):
        with Conn(self.port) as c:
            c.send(b"POST /expect-no-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   b"Expect: 100-continue\r\n\r\n")
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 417, f"expected the app's 417 first, got {r!r}")
            self.assertEqual(r.body, b"expectation failed")

    def test_no_100_continue_without_expect(self):
        with Conn(self.port) as c:
            c.send(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            r = c.read_response()
            self.assertResponse(r, 200)

    def test_no_100_continue_for_http10(self):
        with Conn(self.port) as c:
            c.send(b"POST /expect HTTP/1.0\r\nContent-Length: 5\r\n"
                   b"Expect: 100-continue\r\n\r\nhello")
            r = c.read_response()
            self.assertResponse(r, 200)

    def test_100_continue_only_once_per_request(self):
        with Conn(self.port) as c:
            for _ in range(2):
                c.send(b"POST /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                       b"Expect: 100-continue\r\n\r\n")
                self.assertEqual(c.read_response(timeout=scaled(10)).status, 100)
                c.send(b"abc")
                r = c.read_response()
                self.assertResponse(r, 200)
                self.assertTrue(r.body.startswith(b"len=3 "), r)


if __name__ == "__main__":
    unittest.main(verbosity=2)
