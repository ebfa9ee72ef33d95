"""The `casgi` runner: --help, --version, usage errors (exit 2), loading errors, app symbols,
--fd, --limit-max-requests, access log, the hello app's routes, and the embedding example."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import unittest

from casgi_harness import (EMBED, HELLO, HOST, RUNNER, TESTAPP, Conn, Server, ServerTestCase,
                           exchange, free_port, get, require_file, runner_env, sanitizer_lines,
                           scaled, wait_until)


def run(args, timeout=30):
    require_file(RUNNER, "the runner")
    p = subprocess.run([RUNNER] + list(args), capture_output=True, env=runner_env(),
                       timeout=scaled(timeout), stdin=subprocess.DEVNULL)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    bad = sanitizer_lines(out + err)
    if bad:
        raise AssertionError("sanitizer report:\n" + "\n".join(bad) + "\n" + err)
    return p.returncode, out, err


class CommandLine(unittest.TestCase):
    def test_help(self):
        rc, out, err = run(["--help"])
        self.assertEqual(rc, 0, err)
        text = out + err
        for flag in ("--host", "--port", "--uds", "--fd", "--root-path", "--lifespan",
                     "--log-level", "--access-log", "--no-access-log", "--timeout-keep-alive",
                     "--timeout-graceful-shutdown", "--limit-concurrency",
                     "--limit-max-requests", "--backlog", "--header", "--no-server-header",
                     "--no-date-header", "--max-body-size", "--timeout-request-header",
                     "--version", "--help"):
            self.assertIn(flag, text, f"--help does not mention {flag}")

    def test_version(self):
        rc, out, err = run(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out + err, r"\b0\.1\.0\b")

    def test_unknown_flag_is_usage_error(self):
        rc, out, err = run([TESTAPP, "--no-such-flag"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--no-such-flag", err)

    def test_bad_flag_values_are_usage_errors(self):
        for args, flag in ((["--port", "notaport"], "--port"),
                           (["--port", "70000"], "--port"),
                           (["--timeout-keep-alive", "-3"], "--timeout-keep-alive"),
                           (["--limit-concurrency", "many"], "--limit-concurrency"),
                           (["--log-level", "loud"], "--log-level"),
                           (["--header", "NoColon"], "--header")):
            with self.subTest(args=args):
                rc, out, err = run([TESTAPP] + args)
                self.assertEqual(rc, 2, out + err)
                self.assertIn(flag, err)

    def test_missing_value_is_usage_error(self):
        rc, out, err = run([TESTAPP, "--port"])
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--port", err)

    def test_missing_app_argument_is_usage_error(self):
        rc, out, err = run([])
        self.assertEqual(rc, 2, out + err)
        self.assertTrue(err.strip())

    def test_missing_shared_object(self):
        rc, out, err = run(["/nonexistent/dir/app.so", "--port", "0"])
        self.assertNotEqual(rc, 0)
        self.assertIn("/nonexistent/dir/app.so", err)

    def test_missing_symbol(self):
        require_file(TESTAPP, "testapp")
        rc, out, err = run([TESTAPP + ":no_such_symbol", "--port", "0"])
        self.assertNotEqual(rc, 0)
        self.assertIn("no_such_symbol", err)


class Loading(ServerTestCase):
    def test_default_symbol_is_app(self):
        srv = self.start_server(app=TESTAPP)
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")

    def test_explicit_symbol(self):
        srv = self.start_server(app=TESTAPP + ":other_app")
        self.assertResponse(get(srv.port, "/ok"), 200, b"other app")
        self.assertResponse(get(srv.port, "/anything"), 200, b"other app")

    def test_relative_path(self):
        require_file(TESTAPP, "testapp")
        rel = os.path.relpath(TESTAPP)
        srv = self.start_server(app=rel)
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")


class Options(ServerTestCase):
    def test_fd_inherited_listening_socket(self):
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(lsock.close)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.bind((HOST, 0))
        lsock.listen(16)
        port = lsock.getsockname()[1]
        fd = lsock.fileno()
        os.set_inheritable(fd, True)
        srv = Server(TESTAPP, ["--fd", str(fd)], tcp=False, pass_fds=(fd,),
                     ready=lambda s: True)
        self.addCleanup(srv.cleanup)
        srv.start()
        lsock.close()  # the runner holds its own copy
        # Connections wait in the backlog until the runner accepts: no race with readiness.
        r = exchange(port, "GET", "/ok", timeout=scaled(30))
        self.assertResponse(r, 200, b"ok")
        srv.stop()

    def test_limit_max_requests(self):
        srv = self.start_server("--limit-max-requests", "3")
        for _ in range(2):
            self.assertResponse(exchange(srv.port, "GET", "/ok",
                                         [("Host", "x"), ("Connection", "close")]), 200, b"ok")
        self.assertFalse(srv.proc.poll() is not None, "exited before the third request")
        self.assertResponse(exchange(srv.port, "GET", "/ok",
                                     [("Host", "x"), ("Connection", "close")]), 200, b"ok")
        srv.wait_exit(scaled(15))
        srv.check(0)

    def test_access_log_on_by_default(self):
        srv = self.start_server()
        get(srv.port, "/ok")
        get(srv.port, "/status/404")
        text = srv.wait_stderr(re.compile(r'"GET /status/404 HTTP/1\.1" 404'),
                               timeout=scaled(5))
        self.assertRegex(text, r'127\.0\.0\.1:\d+ - "GET /ok HTTP/1\.1" 200')

    def test_no_access_log(self):
        srv = self.start_server("--no-access-log")
        get(srv.port, "/ok")
        srv.stop()
        self.assertNotRegex(srv.stderr(), r'"GET /ok HTTP/1\.1" 200')

    def test_log_level_warning_hides_access_log(self):
        # The "running on" line is INFO, so the port is chosen up front and probed.
        port = free_port()

        def ready(_):
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return True
            except OSError:
                return False

        srv = Server(TESTAPP, ["--log-level", "warning", "--host", HOST, "--port", str(port)],
                     tcp=False, ready=ready)
        self.addCleanup(srv.cleanup)
        srv.start()
        self.assertResponse(get(port, "/ok"), 200, b"ok")
        srv.stop()
        self.assertNotRegex(srv.stderr(), r'"GET /ok HTTP/1\.1" 200')

    def test_backlog_and_other_flags_accepted(self):
        srv = self.start_server("--backlog", "16", "--log-level", "debug", "--access-log",
                                "--server-header", "--date-header", "--timeout-keep-alive", "3",
                                "--timeout-graceful-shutdown", "5", "--limit-concurrency", "100",
                                "--max-body-size", "1000000", "--timeout-request-header", "5")
        self.assertResponse(get(srv.port, "/ok"), 200, b"ok")

    def test_two_servers_on_port_0_get_different_ports(self):
        a = self.start_server()
        b = self.start_server()
        self.assertNotEqual(a.port, b.port)

    def test_address_in_use_is_reported(self):
        a = self.start_server()
        b = Server(TESTAPP, ["--host", HOST, "--port", str(a.port)], tcp=False)
        self.addCleanup(b.cleanup)
        b.start(wait=False)
        rc = b.wait_exit(scaled(20))
        b.check(expect_code=None)
        self.assertNotEqual(rc, 0)
        self.assertRegex(b.stderr().lower(), r"address already in use|eaddrinuse")


class HelloApp(ServerTestCase):
    def setUp(self):
        self.srv = self.start_server(app=HELLO)
        self.port = self.srv.port

    def test_root(self):
        r = get(self.port, "/")
        self.assertResponse(r, 200, b"Hello, World!")
        self.assertEqual(r.header("content-length"), "13")
        self.assertTrue(r.header("content-type").startswith("text/plain"), r)

    def test_json(self):
        r = get(self.port, "/json")
        self.assertResponse(r, 200)
        self.assertIn("json", r.header("content-type"))
        json.loads(r.body)

    def test_stream(self):
        r = get(self.port, "/stream")
        self.assertResponse(r, 200)
        self.assertTrue(r.chunked, r)
        self.assertGreater(len(r.body), 0)

    def test_echo(self):
        body = os.urandom(200000)
        r = exchange(self.port, "POST", "/echo", body=body)
        self.assertResponse(r, 200, body)

    def test_slow(self):
        self.assertResponse(get(self.port, "/slow"), 200)

    def test_not_found(self):
        self.assertEqual(get(self.port, "/nope").status, 404)

    def test_keep_alive_mix(self):
        with Conn(self.port) as c:
            for path in ("/", "/json", "/stream", "/slow", "/nope", "/"):
                c.request("GET", path)
                r = c.read_response()
                self.assertTrue(r.complete, r)


class Embed(unittest.TestCase):
    def test_embed_serves_and_exits_0(self):
        # apps/embed [PORT [SECONDS]]: serves "embedded\n" beside its own timer, shuts down
        # after SECONDS and exits 0 only when uv_loop_close() found no handle left.
        require_file(EMBED, "the embed example")
        d = tempfile.mkdtemp(prefix="casgi-embed-")
        self.addCleanup(shutil.rmtree, d, True)
        out_path, err_path = os.path.join(d, "out"), os.path.join(d, "err")
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            p = subprocess.Popen([EMBED, "0", "3"], stdout=out, stderr=err, env=runner_env(),
                                 stdin=subprocess.DEVNULL)

        def read(path):
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")

        try:
            m = wait_until(lambda: re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                                             read(out_path)), scaled(20))
            self.assertIsNotNone(m, read(out_path) + read(err_path))
            r = get(int(m.group(1)), "/")
            self.assertResponse(r, 200, b"embedded\n")
            rc = p.wait(timeout=scaled(30))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        text = read(out_path) + read(err_path)
        self.assertEqual(sanitizer_lines(text), [], text)
        self.assertEqual(rc, 0, text)
        m = re.search(r"ticked (\d+) times", text)
        self.assertIsNotNone(m, text)
        self.assertGreater(int(m.group(1)), 0, "the program's own timer did not run")

    def assertResponse(self, resp, status, body=None):
        ServerTestCase.assertResponse(self, resp, status, body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
