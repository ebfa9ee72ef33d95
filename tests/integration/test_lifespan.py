"""Lifespan: startup before serving, startup failure fatal (the runner exits non-zero with the
app's message and never answers a request), auto/on/off modes, shutdown after serving, shutdown
failure reported, state shared into scopes. testapp's lifespan behaviour comes from
CASGI_TEST_LIFESPAN."""

import socket
import time
import unittest

from casgi_harness import (HOST, STOP_TIMEOUT, TESTAPP, Server, ServerTestCase, exchange,
                           free_port, get, parse_codes, parse_scope, scaled)


def counters(port):
    return parse_codes(get(port, "/counters").body)


class LifespanOk(ServerTestCase):
    def test_startup_and_shutdown_run(self):
        srv = self.start_server(env={"CASGI_TEST_LIFESPAN": "ok"})
        text = srv.stderr()
        self.assertIn("testapp: lifespan scope asgi=3.0 spec=2.0 mode=ok", text)
        self.assertIn("testapp: lifespan startup", text)
        self.assertIn("startup complete sent rc=0", text)
        self.assertEqual(counters(srv.port)["lifespan_calls"], 1)
        self.assertEqual(parse_scope(get(srv.port, "/scope").body)["state"],
                         "state-from-startup")
        self.assertNotIn("testapp: lifespan shutdown", srv.stderr())
        srv.stop()
        text = srv.stderr()
        self.assertIn("testapp: lifespan shutdown", text)
        self.assertIn("shutdown answered rc=0", text)

    def test_lifespan_on_with_ok_app(self):
        srv = self.start_server("--lifespan", "on")
        self.assertEqual(counters(srv.port)["lifespan_calls"], 1)
        srv.stop()
        self.assertIn("testapp: lifespan shutdown", srv.stderr())

    def test_requests_wait_for_slow_startup(self):
        # Startup completes after 700 ms; a request sent meanwhile is answered only after it,
        # with the state startup set.
        port = free_port()
        srv = Server(TESTAPP, ["--host", HOST, "--port", str(port)], tcp=False,
                     env={"CASGI_TEST_LIFESPAN": "ok-slow"})
        self.addCleanup(srv.cleanup)
        srv.start(wait=False)
        srv.wait_stderr("testapp: lifespan startup", timeout=scaled(30))
        deadline = time.monotonic() + scaled(20)
        while True:
            try:
                r = exchange(port, "GET", "/scope", timeout=scaled(20))
                break
            except (ConnectionRefusedError, ConnectionResetError):
                self.assertLess(time.monotonic(), deadline, "never accepted")
                time.sleep(0.05)
        self.assertResponse(r, 200)
        self.assertEqual(parse_scope(r.body)["state"], "state-from-startup")
        self.assertIn("startup complete sent", srv.stderr())


class LifespanFailure(ServerTestCase):
    def run_failing(self, args=(), env=None):
        srv = Server(TESTAPP, args, env=env)
        self.addCleanup(srv.cleanup)
        srv.start(wait=False)
        rc = srv.wait_exit(STOP_TIMEOUT)
        srv.check(expect_code=None)
        self.assertNotEqual(rc, 0, "runner exited 0 although startup failed\n" + srv.describe())
        self.assertNotIn("running on http", srv.stderr())
        return srv

    def test_startup_failed_exits_with_message(self):
        srv = self.run_failing(env={"CASGI_TEST_LIFESPAN": "fail"})
        self.assertIn("boom from startup", srv.stderr().replace("testapp: ", ""))

    def test_startup_failed_with_lifespan_on(self):
        srv = self.run_failing(["--lifespan", "on"], env={"CASGI_TEST_LIFESPAN": "fail"})
        self.assertIn("boom from startup", srv.stderr())

    def test_startup_failed_message_comes_from_server(self):
        # The message must be printed by the runner, not only by testapp's own lines.
        srv = self.run_failing(env={"CASGI_TEST_LIFESPAN": "fail"})
        lines = [ln for ln in srv.stderr().splitlines()
                 if "boom from startup" in ln and not ln.startswith("testapp:")]
        self.assertTrue(lines, srv.describe())

    def test_failing_startup_never_answers(self):
        port = free_port()
        srv = Server(TESTAPP, ["--host", HOST, "--port", str(port)], tcp=False,
                     env={"CASGI_TEST_LIFESPAN": "fail-slow"})
        self.addCleanup(srv.cleanup)
        srv.start(wait=False)
        srv.wait_stderr("testapp: lifespan startup", timeout=scaled(30))
        answers = []
        while srv.running():
            try:
                s = socket.create_connection((HOST, port), timeout=2)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                s.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
                s.settimeout(scaled(20))
                data = s.recv(1024)
                if data:
                    answers.append(data)
            except OSError:
                pass
            finally:
                s.close()
        rc = srv.wait_exit(STOP_TIMEOUT)
        srv.check(expect_code=None)
        self.assertNotEqual(rc, 0)
        self.assertEqual(answers, [], "a request was answered although startup failed")
        self.assertIn("boom from startup", srv.stderr())

    def test_unsupported_lifespan_in_on_mode_fails(self):
        self.run_failing(["--lifespan", "on"], env={"CASGI_TEST_LIFESPAN": "unsupported"})


class LifespanModes(ServerTestCase):
    def test_unsupported_lifespan_in_auto_mode_serves(self):
        srv = self.start_server(env={"CASGI_TEST_LIFESPAN": "unsupported"})
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")
        self.assertEqual(counters(srv.port)["lifespan_calls"], 1)
        self.assertEqual(parse_scope(get(srv.port, "/scope").body)["state"], "NULL")
        srv.stop()

    def test_unsupported_lifespan_explicit_auto(self):
        srv = self.start_server("--lifespan", "auto", env={"CASGI_TEST_LIFESPAN": "unsupported"})
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")

    def test_lifespan_off_never_calls_app(self):
        srv = self.start_server("--lifespan", "off", env={"CASGI_TEST_LIFESPAN": "ok"})
        self.assertEqual(counters(srv.port)["lifespan_calls"], 0)
        self.assertEqual(parse_scope(get(srv.port, "/scope").body)["state"], "NULL")
        srv.stop()
        self.assertNotIn("testapp: lifespan", srv.stderr())

    def test_lifespan_off_ignores_failing_startup(self):
        srv = self.start_server("--lifespan", "off", env={"CASGI_TEST_LIFESPAN": "fail"})
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")

    def test_bad_lifespan_value_is_usage_error(self):
        srv = Server(TESTAPP, ["--lifespan", "sometimes"])
        self.addCleanup(srv.cleanup)
        srv.start(wait=False)
        self.assertEqual(srv.wait_exit(), 2, srv.describe())
        srv.check(expect_code=2)
        self.assertIn("lifespan", srv.stderr().lower())


class LifespanShutdown(ServerTestCase):
    def test_shutdown_failed_is_reported(self):
        srv = self.start_server(env={"CASGI_TEST_LIFESPAN": "shutdown-fail"})
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")
        srv.stop(expect_code=None)
        lines = [ln for ln in srv.stderr().splitlines()
                 if "boom from shutdown" in ln and not ln.startswith("testapp:")]
        self.assertTrue(lines, "the runner did not report the shutdown failure\n"
                        + srv.describe())


if __name__ == "__main__":
    unittest.main(verbosity=2)
