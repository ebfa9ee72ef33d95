"""wrk against the hello app: zero socket errors and no non-2xx responses (the issue's "done when"
check, shortened to 3 s). Skipped when wrk is not installed (scripts/deps.sh installs it)."""

import re
import shutil
import subprocess
import unittest

from casgi_harness import HELLO, ServerTestCase, get, scaled


class Wrk(ServerTestCase):
    def setUp(self):
        if shutil.which("wrk") is None:
            self.skipTest("wrk not installed")

    def run_wrk(self, url, *extra):
        p = subprocess.run(["wrk", "-t1", "-c64", "-d3s", *extra, url], capture_output=True,
                           timeout=scaled(60), stdin=subprocess.DEVNULL)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode("utf-8", "replace"))
        return out

    def assert_clean(self, out):
        m = re.search(r"(\d+) requests in", out)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 0, out)
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if m:
            self.assertEqual([int(x) for x in m.groups()], [0, 0, 0, 0], out)
        self.assertNotIn("Non-2xx", out)
        return out

    def test_wrk_hello(self):
        srv = self.start_server(app=HELLO)
        self.assert_clean(self.run_wrk(f"http://127.0.0.1:{srv.port}/"))
        # Still healthy afterwards, and a clean exit (no leaks) after the load.
        self.assertResponse(get(srv.port, "/"), 200, b"Hello, World!")
        srv.stop()

    def test_wrk_hello_with_short_keep_alive(self):
        # Connections closed by the keep-alive timer while wrk reuses them must not show up as
        # errors: wrk is busy the whole time, so no connection is idle for 1 s.
        srv = self.start_server("--timeout-keep-alive", "1", app=HELLO)
        self.assert_clean(self.run_wrk(f"http://127.0.0.1:{srv.port}/"))
        srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
