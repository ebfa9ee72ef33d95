"""App misbehaviour and the failure policy (Uvicorn's): every misuse of casgi_send() is an error
code that never reaches the wire; an app that ends without starting a response gets a 500; one
that fails or returns after starting is aborted (the connection closes, the client never sees a
truncated body that looks complete). Also: early client disconnect, early response, read after
response. testapp reports the codes it saw in the body or in its log (GET /log)."""

import socket
import struct
import time
import unittest

from casgi_harness import (CASGI_EBUSY, CASGI_EDISCONNECTED, CASGI_EEVENT, CASGI_EHEADER,
                           CASGI_ELENGTH, CASGI_ESTATE, CASGI_ESTATUS, Conn, ServerTestCase,
                           app_log, exchange, get, parse_codes, scaled, wait_log)


def log_line(log, prefix):
    """The last log line starting with `prefix`."""
    lines = [line for line in log.splitlines() if line.startswith(prefix)]
    if not lines:
        raise AssertionError(f"no {prefix!r} line in the app's log:\n{log}")
    return lines[-1]


class FailurePolicy(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def assert_server_alive(self):
        self.assertResponse(get(self.port, "/ok"), 200, b"ok")

    def assert_aborted(self, path):
        """The response started but must not complete: the connection closes and what arrived
        is not a complete response."""
        with Conn(self.port) as c:
            c.request("GET", path)
            r = c.read_response(timeout=scaled(10), allow_incomplete=True)
            self.assertFalse(r.complete, f"{path}: truncated response looks complete: {r!r}")
            self.assertTrue(c.eof, f"{path}: connection not closed")
        return r

    def test_fail_before_start_is_500(self):
        r = get(self.port, "/fail-before-start")
        self.assertResponse(r, 500)
        self.srv.wait_stderr("ERROR", timeout=scaled(5))
        self.assert_server_alive()

    def test_return_without_response_is_500(self):
        r = get(self.port, "/no-response")
        self.assertResponse(r, 500)
        self.assert_server_alive()

    def test_500_keeps_pipeline_in_order(self):
        with Conn(self.port) as c:
            c.send(b"GET /fail-before-start HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response().status, 500)
            # The next request is either answered or the connection is closed cleanly.
            r = c.read_response(allow_incomplete=True)
            if r.status is not None:
                self.assertResponse(r, 200, b"ok")
            else:
                self.assertEqual(r.raw, b"")

    def test_fail_after_start_aborts(self):
        r = self.assert_aborted("/fail-after-start")
        if r.status is not None:
            self.assertEqual(r.status, 200)
            self.assertTrue(b"partial".startswith(r.body), r)
        self.assertIn("fail-after-start: start=0 body=0", app_log(self.port))
        self.assert_server_alive()

    def test_return_after_partial_response_aborts(self):
        self.assert_aborted("/partial")
        self.assertIn("partial: start=0 body=0", app_log(self.port))
        self.assert_server_alive()

    def test_return_before_content_length_reached_aborts(self):
        r = self.assert_aborted("/partial-cl")
        self.assertLess(len(r.body), 100)
        self.assert_server_alive()

    def test_duplicate_start(self):
        r = get(self.port, "/duplicate-start")
        self.assertResponse(r, 200)
        self.assertEqual(parse_codes(r.body), {"first_start": 0, "second_start": CASGI_ESTATE})

    def test_body_before_start(self):
        r = get(self.port, "/body-before-start")
        self.assertResponse(r, 200)
        self.assertEqual(parse_codes(r.body), {"body_before_start": CASGI_ESTATE})
        self.assertNotIn(b"oops", r.raw)

    def test_send_after_response_complete(self):
        with Conn(self.port) as c:
            c.request("GET", "/after-complete")
            self.assertResponse(c.read_response(), 200, b"done")
            # Nothing stray on the wire: the next response on this connection parses cleanly.
            c.request("GET", "/log")
            r = c.read_response()
            self.assertResponse(r, 200)
        codes = parse_codes(log_line(r.body.decode(), "after_complete:"))
        self.assertEqual(codes, {"respond": 0, "body": CASGI_ESTATE, "start": CASGI_ESTATE,
                                 "trailers": CASGI_ESTATE})

    def test_body_longer_than_content_length(self):
        r = self.assert_aborted("/content-length-mismatch")
        self.assertLess(len(r.body), 10)
        codes = parse_codes(log_line(app_log(self.port), "content_length_mismatch:"))
        self.assertEqual(codes, {"start": 0, "body": CASGI_ELENGTH})

    def test_body_shorter_than_content_length(self):
        r = self.assert_aborted("/content-length-short")
        self.assertLess(len(r.body), 10)
        self.assert_server_alive()

    def test_body_matching_content_length_in_pieces(self):
        with Conn(self.port) as c:
            c.request("GET", "/content-length-split")
            self.assertResponse(c.read_response(), 200, b"0123456789")
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")

    def test_response_header_splitting_rejected(self):
        r = get(self.port, "/bad-header")
        self.assertResponse(r, 200)
        self.assertEqual(parse_codes(r.body), {
            "crlf_value": CASGI_EHEADER, "lf_value": CASGI_EHEADER, "cr_value": CASGI_EHEADER,
            "nul_value": CASGI_EHEADER, "space_name": CASGI_EHEADER,
            "crlf_name": CASGI_EHEADER, "empty_name": CASGI_EHEADER})
        self.assertNotIn(b"x-injected", r.raw.lower())
        self.assertIsNone(r.header("x-bad"))

    def test_invalid_status_rejected(self):
        r = get(self.port, "/bad-status")
        self.assertResponse(r, 200)
        self.assertEqual(parse_codes(r.body), {
            "status_99": CASGI_ESTATUS, "status_1000": CASGI_ESTATUS,
            "status_101": CASGI_ESTATUS, "status_0": CASGI_ESTATUS,
            "status_neg": CASGI_ESTATUS})

    def test_events_not_for_http_send_rejected(self):
        r = get(self.port, "/bad-event")
        self.assertResponse(r, 200)
        codes = parse_codes(r.body)
        self.assertEqual(codes["lifespan_event"], CASGI_EEVENT)
        self.assertEqual(codes["unknown_event"], CASGI_EEVENT)
        # Receive-side events passed to send: rejected (as a wrong event or a wrong state).
        self.assertIn(codes["request_event"], (CASGI_EEVENT, CASGI_ESTATE))
        self.assertIn(codes["disconnect_event"], (CASGI_EEVENT, CASGI_ESTATE))

    def test_second_pending_receive_is_busy(self):
        r = exchange(self.port, "POST", "/double-receive", body=b"x")
        self.assertResponse(r, 200)
        self.assertEqual(parse_codes(r.body), {"second_receive": CASGI_EBUSY})
        self.assertNotIn("refused receive's callback ran", app_log(self.port))


class Disconnects(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_disconnect_during_body_reaches_app(self):
        with Conn(self.port) as c:
            c.send(b"POST /disconnect-wait HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
                   + b"a" * 100)
            time.sleep(0.3)
        log = wait_log(self.port, "disconnect_wait: disconnect", timeout=scaled(10))
        self.assertIn("body_done=0", log_line(log, "disconnect_wait:"))

    def test_disconnect_after_body_reaches_app(self):
        with Conn(self.port) as c:
            c.send(b"POST /disconnect-wait HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
                   + b"a" * 10)
            time.sleep(0.3)
        log = wait_log(self.port, "disconnect_wait: disconnect", timeout=scaled(10))
        self.assertIn("bytes=10 ", log_line(log, "disconnect_wait:"))
        self.assertIn("body_done=1", log_line(log, "disconnect_wait:"))

    def test_disconnect_by_reset_reaches_app(self):
        c = Conn(self.port)
        c.send(b"POST /disconnect-wait HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.3)
        # SO_LINGER 0: close() sends RST instead of FIN.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
        wait_log(self.port, "disconnect_wait: disconnect", timeout=scaled(10))
        self.assertResponse(get(self.port, "/ok"), 200, b"ok")

    def test_send_after_client_left_is_disconnected(self):
        with Conn(self.port) as c:
            # A one-byte body, so this does not depend on how a body-less request is delivered.
            c.request("POST", "/send-after-disconnect/800", body=b"x")
            self.srv.wait_stderr("testapp: send-after-disconnect waiting", timeout=scaled(10))
        log = wait_log(self.port, "send_after_disconnect:", timeout=scaled(10))
        codes = parse_codes(log_line(log, "send_after_disconnect:"))
        self.assertEqual(codes["start"], CASGI_EDISCONNECTED, log)
        self.assertIn(codes["body"], (CASGI_EDISCONNECTED, CASGI_ESTATE), log)

    def test_slow_request_sees_disconnect(self):
        with Conn(self.port) as c:
            c.request("GET", "/slow-ms/20000")
            self.srv.wait_stderr("slow-ms 20000 started", timeout=scaled(10))
        self.srv.wait_stderr("slow-ms 20000 disconnected", timeout=scaled(10))


class EarlyAndLate(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server()
        self.port = self.srv.port

    def test_early_response_before_body_is_sent(self):
        # Only part of a large body is sent; the app answers without reading it.
        with Conn(self.port) as c:
            c.send(b"POST /no-read-then-respond HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 10000000\r\n\r\n" + b"x" * 65536)
            self.assertResponse(c.read_response(timeout=scaled(10)), 200, b"early")

    def test_early_response_then_next_request(self):
        # The unread body is drained or the connection closed, never parsed as a request.
        with Conn(self.port) as c:
            body = b"GET /bogus HTTP/1.1\r\n\r\n"
            c.send(b"POST /no-read-then-respond HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                   b"\r\n" % len(body) + body + b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertResponse(c.read_response(), 200, b"early")
            r = c.read_response(allow_incomplete=True)
            if r.status is None:
                self.assertEqual(r.raw, b"", "bytes after the early response")
            else:
                self.assertResponse(r, 200, b"ok")

    def test_read_after_response(self):
        with Conn(self.port) as c:
            c.request("POST", "/read-after-response", body=b"some body")
            self.assertResponse(c.read_response(), 200, b"responded")
            # The connection stays open; the app's receive still completes.
            log = wait_log(self.port, "read_after_response:", timeout=scaled(10))
        line = log_line(log, "read_after_response:")
        self.assertIn("status=0 ", line)
        self.assertRegex(line, r"type=(http\.disconnect|http\.request)$")


if __name__ == "__main__":
    unittest.main(verbosity=2)
