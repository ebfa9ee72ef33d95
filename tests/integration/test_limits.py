"""Limits and protocol errors: malformed requests and smuggling attempts (400 and close), head
too large (431), URL too long (414), body too large (413), --limit-concurrency (503) and the
request-head deadline against slowloris."""

import time
import unittest

from casgi_harness import (Conn, ServerTestCase, Thread, chunked, exchange, fnv1a, get,
                           parse_response, scaled)


class BadRequests(ServerTestCase):
    """Each malformed request gets a 400 and the connection is closed; the server lives on."""

    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def assert_400_and_close(self, raw):
        with Conn(self.port) as c:
            c.send(raw)
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 400, f"request {raw[:120]!r} got {r!r}")
            self.assertEqual(c.read_until_close(scaled(10)), b"",
                             f"more bytes after the 400 for {raw[:120]!r}")
        # The server is still serving.
        self.assertEqual(get(self.port, "/ok").status, 200)

    def test_garbage(self):
        self.assert_400_and_close(b"GARBAGE\r\n\r\n")

    def test_missing_version(self):
        self.assert_400_and_close(b"GET /ok\r\nHost: x\r\n\r\n")

    def test_header_without_colon(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n")

    def test_content_length_and_transfer_encoding(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")

    def test_transfer_encoding_and_content_length_reversed(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 5\r\n\r\n0\r\n\r\n")

    def test_transfer_encoding_not_ending_in_chunked(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
            b"0\r\n\r\n")

    def test_conflicting_content_lengths(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
            b"Content-Length: 6\r\n\r\nhello!")

    def test_non_numeric_content_length(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello")

    def test_negative_content_length(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")

    def test_bad_chunk_size(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\nhello\r\n0\r\n\r\n")

    def test_overflowing_chunk_size(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n")

    def test_chunk_data_longer_than_size(self):
        self.assert_400_and_close(
            b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nhello\r\n0\r\n\r\n")

    def test_nul_in_header_value(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n")

    def test_bare_cr_in_header_value(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n")

    def test_space_in_header_name(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n")

    def test_space_before_colon(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A : v\r\n\r\n")

    def test_obs_fold(self):
        self.assert_400_and_close(b"GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")

    def test_bad_request_after_good_one_on_same_connection(self):
        with Conn(self.port) as c:
            c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            self.assertEqual(c.read_response(timeout=scaled(10)).status, 400)
            self.assertEqual(c.read_until_close(scaled(10)), b"")


class SizeLimits(ServerTestCase):
    def test_head_too_large_431(self):
        srv = self.start_server("--max-request-head", "2048")
        r = exchange(srv.port, "GET", "/ok", [("Host", "x"), ("X-Big", "a" * 1000)])
        self.assertEqual(r.status, 200, "a head under the limit must pass")
        with Conn(srv.port) as c:
            c.request("GET", "/ok", [("Host", "x"), ("X-Big", "a" * 4000)])
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 431, r)
            self.assertEqual(c.read_until_close(scaled(10)), b"")

    def test_too_many_headers_431(self):
        srv = self.start_server("--max-request-head", "2048")
        headers = [("Host", "x")] + [(f"X-H{i}", "v" * 30) for i in range(100)]
        with Conn(srv.port) as c:
            c.request("GET", "/ok", headers)
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 431, r)

    def test_default_head_limit_allows_normal_heads(self):
        srv = self.start_server()
        headers = [("Host", "x")] + [(f"X-H{i}", "v" * 100) for i in range(100)]
        self.assertEqual(exchange(srv.port, "GET", "/ok", headers).status, 200)

    def test_url_too_long_414(self):
        srv = self.start_server("--max-url", "512")
        self.assertEqual(get(srv.port, "/ok?" + "q" * 400).status, 200)
        with Conn(srv.port) as c:
            c.request("GET", "/ok?" + "q" * 1000)
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 414, r)

    def test_body_too_large_content_length_413(self):
        srv = self.start_server("--max-body-size", "4096")
        r = exchange(srv.port, "POST", "/read-body", body=b"b" * 4096)
        self.assertEqual(r.status, 200, "a body at the limit must pass")
        self.assertIn(b"len=4096 ", r.body)
        with Conn(srv.port) as c:
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
                   + b"b" * 5000)
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 413, r)

    def test_body_too_large_chunked_413(self):
        srv = self.start_server("--max-body-size", "4096")
        with Conn(srv.port) as c:
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + chunked([b"c" * 2000, b"c" * 2000, b"c" * 2000]))
            r = c.read_response(timeout=scaled(10))
            self.assertEqual(r.status, 413, r)
            self.assertEqual(c.read_until_close(scaled(10)), b"")
        r = exchange(srv.port, "POST", "/read-body",
                     headers=[("Host", "x"), ("Transfer-Encoding", "chunked")],
                     body=chunked([b"c" * 2000, b"c" * 2000]))
        self.assertEqual(r.status, 200, "a chunked body under the limit must pass")
        self.assertIn(b"len=4000 sum=%08x" % fnv1a(b"c" * 4000), r.body)

    def test_no_body_limit_by_default(self):
        srv = self.start_server()
        body = b"z" * (3 << 20)
        r = exchange(srv.port, "POST", "/read-body", body=body, timeout=scaled(60))
        self.assertEqual(r.status, 200)
        self.assertIn(b"len=%d " % len(body), r.body)


class Concurrency(ServerTestCase):
    def test_limit_concurrency_503(self):
        srv = self.start_server("--limit-concurrency", "1")
        with Conn(srv.port) as a:
            a.request("GET", "/slow-ms/3000", [("Host", "x"), ("Connection", "close")])
            srv.wait_stderr("slow-ms 3000 started", timeout=scaled(10))
            r = get(srv.port, "/ok")
            self.assertEqual(r.status, 503, f"second connection while one is busy: {r!r}")
            self.assertResponse(a.read_response(timeout=scaled(20)), 200, b"slept 3000")
        # Capacity comes back once the first connection is gone.
        deadline = time.monotonic() + scaled(10)
        while True:
            r = get(srv.port, "/ok")
            if r.status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertResponse(r, 200, b"ok")

    def test_many_connections_without_limit(self):
        srv = self.start_server()
        conns = [Conn(srv.port) for _ in range(50)]
        try:
            for c in conns:
                c.request("GET", "/slow-ms/200")
            for c in conns:
                self.assertResponse(c.read_response(timeout=scaled(30)), 200, b"slept 200")
        finally:
            for c in conns:
                c.close()


class Slowloris(ServerTestCase):
    def test_slow_head_closed_while_others_served(self):
        srv = self.start_server("--timeout-request-header", "1")
        slow = Conn(srv.port)
        self.addCleanup(slow.close)

        def dribble():
            t0 = time.monotonic()
            try:
                slow.send(b"GET /ok HTTP/1.1\r\n")
                for i in range(100):
                    slow.send(b"X-Drip-%d: x\r\n" % i)
                    closed, extra = slow.wait_closed(0.3)
                    if closed:
                        return time.monotonic() - t0, extra
                    if time.monotonic() - t0 > scaled(15):
                        break
            except OSError:
                return time.monotonic() - t0, slow.buf
            return None, slow.buf

        t = Thread(dribble)
        t.start()
        served = 0
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            r = get(srv.port, "/ok")
            self.assertResponse(r, 200, b"ok")
            served += 1
            time.sleep(0.1)
        elapsed, extra = t.join_checked(scaled(30))
        self.assertIsNotNone(elapsed, "slow sender never closed (timeout 1 s)")
        self.assertGreaterEqual(elapsed, 0.8, "closed before the 1 s deadline")
        self.assertLess(elapsed, scaled(8))
        if extra:
            r, _ = parse_response(extra, eof=True)
            self.assertFalse(r.status is not None and 200 <= r.status < 300,
                             f"slow request was served: {r!r}")
        self.assertGreaterEqual(served, 3)

    def test_silent_connection_closed(self):
        srv = self.start_server("--timeout-request-header", "1")
        with Conn(srv.port) as c:
            closed, _ = c.wait_closed(scaled(8))
            self.assertTrue(closed, "a connection that never sends was kept open")

    def test_deadline_does_not_cut_slow_app_or_body(self):
        srv = self.start_server("--timeout-request-header", "1")
        with Conn(srv.port) as c:
            c.request("GET", "/slow-ms/2500")
            self.assertResponse(c.read_response(timeout=scaled(20)), 200, b"slept 2500")
            # A body that trickles in after a complete head is not the head deadline's business.
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabc")
            time.sleep(1.8)
            c.send(b"def")
            r = c.read_response(timeout=scaled(10))
            self.assertResponse(r, 200)
            self.assertIn(b"len=6 ", r.body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
