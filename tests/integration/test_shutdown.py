"""Graceful shutdown on SIGTERM: exits 0 when idle; stops accepting; answers in-flight requests;
closes idle keep-alive connections at once; --timeout-graceful-shutdown cuts in-flight requests
short; a second signal forces exit; under load every request is answered completely or its
connection closed cleanly, never a partial response; lifespan shutdown runs last."""

import signal
import threading
import time
import unittest

from casgi_harness import (Conn, ServerTestCase, Thread, connect_refused, parse_response,
                           scaled, wait_until)


class Shutdown(ServerTestCase):
    def test_sigterm_idle_exits_0_quickly(self):
        srv = self.start_server()
        t0 = time.monotonic()
        srv.stop(timeout=scaled(10))
        self.assertLess(time.monotonic() - t0, scaled(5))
        self.assertIn("testapp: lifespan shutdown", srv.stderr())

    def test_sigint_is_graceful_too(self):
        srv = self.start_server()
        srv.stop(sig=signal.SIGINT, timeout=scaled(10))
        self.assertIn("testapp: lifespan shutdown", srv.stderr())

    def test_in_flight_request_answered_new_connections_refused(self):
        srv = self.start_server()
        port = srv.port
        with Conn(port) as c:
            c.request("GET", "/slow-ms/3000")
            srv.wait_stderr("slow-ms 3000 started", timeout=scaled(10))
            srv.send_signal(signal.SIGTERM)
            # While the request drains, the listener is gone.
            self.assertTrue(wait_until(lambda: connect_refused(port), scaled(2.5)),
                            "still accepting connections during graceful shutdown")
            self.assertTrue(srv.running(), "exited before the in-flight request finished")
            r = c.read_response(timeout=scaled(20))
            self.assertResponse(r, 200, b"slept 3000")
            # After the response the connection is closed, not kept alive.
            self.assertEqual(c.read_until_close(scaled(10)), b"")
        srv.wait_exit(scaled(20))
        srv.check(0)
        text = srv.stderr()
        self.assertLess(text.find("slow-ms 3000 done"), text.find("testapp: lifespan shutdown"),
                        "lifespan shutdown ran before the in-flight request finished")

    def test_in_flight_request_body_still_received(self):
        # The request head arrived before shutdown; its body arrives during it.
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.send(b"POST /read-body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
            time.sleep(0.3)
            srv.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            c.send(b"67890")
            r = c.read_response(timeout=scaled(10))
            self.assertResponse(r, 200)
            self.assertIn(b"len=10 ", r.body)
        srv.wait_exit(scaled(20))
        srv.check(0)

    def test_idle_keep_alive_connection_closed_at_once(self):
        srv = self.start_server("--timeout-keep-alive", "30")
        with Conn(srv.port) as c:
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            closed, extra = c.wait_closed(scaled(10))
            self.assertTrue(closed, "idle keep-alive connection kept open during shutdown")
            self.assertEqual(extra, b"")
            self.assertLess(time.monotonic() - t0, scaled(5))
        srv.wait_exit(scaled(10))
        srv.check(0)

    def test_graceful_timeout_aborts_in_flight(self):
        srv = self.start_server("--timeout-graceful-shutdown", "1")
        with Conn(srv.port) as c:
            c.request("GET", "/slow-ms/10000")
            srv.wait_stderr("slow-ms 10000 started", timeout=scaled(10))
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            closed, extra = c.wait_closed(scaled(8))
            elapsed = time.monotonic() - t0
            self.assertTrue(closed, "in-flight request not cut after the graceful timeout")
            self.assertGreaterEqual(elapsed, 0.8, "cut before the 1 s graceful timeout")
            if extra:
                r, _ = parse_response(extra, eof=True)
                self.assertNotEqual(r.status, 200, "the 10 s request completed?")
        srv.wait_exit(scaled(8))
        self.assertLess(time.monotonic() - t0, scaled(8), "did not exit soon after the timeout")
        srv.check(0)
        self.assertIn("slow-ms 10000 disconnected", srv.stderr())

    def test_second_signal_forces_exit(self):
        srv = self.start_server()
        with Conn(srv.port) as c:
            c.request("GET", "/slow-deaf-ms/30000")
            srv.wait_stderr("slow-deaf-ms 30000 started", timeout=scaled(10))
            srv.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            self.assertTrue(srv.running(), "graceful shutdown did not wait for the request")
            t0 = time.monotonic()
            srv.send_signal(signal.SIGTERM)
            srv.wait_exit(scaled(10))
            self.assertLess(time.monotonic() - t0, scaled(5))
        srv.check("any")

    def test_keep_alive_connection_with_request_in_flight_closes_after_it(self):
        srv = self.start_server("--timeout-keep-alive", "30")
        with Conn(srv.port) as c:
            c.request("GET", "/ok")
            self.assertResponse(c.read_response(), 200, b"ok")
            c.request("GET", "/slow-ms/1500")
            srv.wait_stderr("slow-ms 1500 started", timeout=scaled(10))
            srv.send_signal(signal.SIGTERM)
            r = c.read_response(timeout=scaled(20))
            self.assertResponse(r, 200, b"slept 1500")
            self.assertEqual(c.read_until_close(scaled(10)), b"")
        srv.wait_exit(scaled(20))
        srv.check(0)


class ShutdownUnderLoad(ServerTestCase):
    CLIENTS = 8

    def test_no_partial_responses_under_load(self):
        srv = self.start_server("--timeout-keep-alive", "30")
        port = srv.port
        stop = threading.Event()
        lock = threading.Lock()
        stats = {"complete": 0, "clean_close": 0, "refused": 0}
        partial = []

        def client(i):
            paths = ["/ok", f"/slow-ms/{20 + i}", "/chunks/3", "/ok"]
            n = 0
            deadline = time.monotonic() + scaled(40)
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    c = Conn(port, timeout=scaled(20))
                except OSError:
                    with lock:
                        stats["refused"] += 1
                    return
                try:
                    while time.monotonic() < deadline:
                        path = paths[n % len(paths)]
                        n += 1
                        try:
                            c.request("GET", path)
                        except OSError:
                            with lock:
                                stats["clean_close"] += 1
                            break
                        r = c.read_response(allow_incomplete=True)
                        if r.complete:
                            with lock:
                                stats["complete"] += 1
                            if r.status != 200:
                                partial.append((path, r))
                            if "close" in r.connection_tokens():
                                break
                        elif r.raw == b"":
                            with lock:
                                stats["clean_close"] += 1
                            break
                        else:
                            partial.append((path, r))
                            break
                finally:
                    c.close()

        threads = [Thread(client, i) for i in range(self.CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        with Conn(port) as slow:
            slow.request("GET", "/slow-ms/1000")
            srv.wait_stderr("slow-ms 1000 started", timeout=scaled(10))
            before = stats["complete"]
            srv.send_signal(signal.SIGTERM)
            r = slow.read_response(timeout=scaled(20))
            self.assertResponse(r, 200, b"slept 1000")
        for t in threads:
            t.join_checked(scaled(60))
        stop.set()
        srv.wait_exit(scaled(20))
        srv.check(0)
        self.assertEqual(partial, [], "partial or failed responses during shutdown")
        self.assertGreater(before, 20, f"too little load before the signal: {stats}")
        self.assertGreater(stats["clean_close"] + stats["refused"], 0, stats)
        self.assertTrue(connect_refused(port))


if __name__ == "__main__":
    unittest.main(verbosity=2)
