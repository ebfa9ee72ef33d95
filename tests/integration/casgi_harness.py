"""Shared helpers for casgi's integration tests.

Starts the real runner (``casgi APP.so[:symbol] --host 127.0.0.1 --port 0 ...``) as a subprocess,
learns its port from the "running on http://127.0.0.1:PORT" line on stderr, and stops it with
SIGTERM. On stop it checks the exit code and that stderr holds no sanitizer report (ASan, UBSan,
LSan): a report anywhere fails the test.

Clients: raw sockets with a small, strict HTTP/1.1 response parser (Content-Length, chunked with
trailers, close-delimited, HEAD/1xx/204/304), http.client, and curl.

WebSocket: a raw client (RawWS) with its own minimal frame encoder and decoder, for the tests
that must send what a well-behaved client library never would (unmasked frames, reserved bits,
bad close codes, invalid UTF-8, handshake bytes and a frame in one packet).

Paths come from the environment (set by tests/CMakeLists.txt): CASGI_RUNNER, CASGI_HELLO,
CASGI_TESTAPP, CASGI_EMBED, CASGI_WS_ECHO. For a manual run, CASGI_BUILD_DIR=build/it fills in
all five.
CASGI_TEST_TIME_SCALE (default 1) multiplies every timeout, for very slow machines.

Python stdlib only. Only 127.0.0.1. Every wait is bounded.
"""

import base64
import errno
import hashlib
import http.client
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

HOST = "127.0.0.1"
SCALE = float(os.environ.get("CASGI_TEST_TIME_SCALE", "1"))

# Bounds for waits; generous because CI runs under ASan on a shared 2-core machine.
READY_TIMEOUT = 30.0 * SCALE
STOP_TIMEOUT = 20.0 * SCALE
IO_TIMEOUT = 20.0 * SCALE

# Error codes from include/casgi/error.h.
CASGI_EDISCONNECTED = -1000
CASGI_ESTATE = -1001
CASGI_EEVENT = -1002
CASGI_EBUSY = -1003
CASGI_EHEADER = -1008
CASGI_ELENGTH = -1009
CASGI_ESTATUS = -1010


def _build_path(rel):
    base = os.environ.get("CASGI_BUILD_DIR")
    return os.path.join(base, rel) if base else None


RUNNER = os.environ.get("CASGI_RUNNER") or _build_path("apps/casgi")
HELLO = os.environ.get("CASGI_HELLO") or _build_path("apps/hello.so")
TESTAPP = os.environ.get("CASGI_TESTAPP") or _build_path("tests/testapp.so")
EMBED = os.environ.get("CASGI_EMBED") or _build_path("apps/embed")
WS_ECHO = os.environ.get("CASGI_WS_ECHO") or _build_path("apps/ws_echo.so")

SANITIZER_MARKERS = (
    "AddressSanitizer",
    "LeakSanitizer",
    "UndefinedBehaviorSanitizer",
    "runtime error:",
)

PORT_LINE = re.compile(r"running on http://127\.0\.0\.1:(\d+)")


def scaled(seconds):
    return seconds * SCALE


def runner_env(extra=None):
    """The environment for a runner: ours, sanitizer defaults, plus `extra`."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    if extra:
        env.update(extra)
    return env


def sanitizer_lines(text):
    return [line for line in text.splitlines() if any(m in line for m in SANITIZER_MARKERS)]


def require_file(path, what):
    if not path or not os.path.exists(path):
        raise unittest.SkipTest(f"{what} not built (looked for {path!r}); set CASGI_* or "
                                f"CASGI_BUILD_DIR")


def free_port():
    """A port that was free a moment ago (only for tests that must name the port up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# The runner
# ---------------------------------------------------------------------------------------------

class Server:
    """One runner process.

    app:   path of the .so (optionally with ":symbol"); None to pass no positional argument.
    args:  extra command-line flags.
    tcp:   add --host 127.0.0.1 --port 0 and learn the port from stderr.
    ready: None (wait for the port line when tcp, else for a "running on" line), or a callable
           taking the Server and returning True once it serves.
    """

    def __init__(self, app, args=(), *, tcp=True, env=None, ready=None, pass_fds=()):
        require_file(RUNNER, "the runner")
        if app is not None:
            require_file(app.split(":", 1)[0] if not os.path.exists(app) else app, "the app")
        self.app = app
        self.args = list(args)
        self.tcp = tcp
        self.env = runner_env(env)
        self.ready = ready
        self.pass_fds = tuple(pass_fds)
        self.proc = None
        self.port = None
        self.returncode = None
        self.dir = tempfile.mkdtemp(prefix="casgi-it-")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self._checked = False

    @property
    def cmd(self):
        cmd = [RUNNER]
        if self.app is not None:
            cmd.append(self.app)
        if self.tcp:
            cmd += ["--host", HOST, "--port", "0"]
        return cmd + self.args

    def start(self, timeout=READY_TIMEOUT, wait=True):
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=self.env, pass_fds=self.pass_fds,
                                         start_new_session=True)
        if wait:
            self.wait_ready(timeout)
        return self

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stdout(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self):
        return (f"command: {' '.join(self.cmd)}\nexit code: {self.proc and self.proc.poll()}\n"
                f"--- stderr ---\n{self.stderr()[-6000:]}\n--- end of stderr ---")

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr()
            if self.ready is not None:
                if self.ready(self):
                    return
            elif self.tcp:
                m = PORT_LINE.search(text)
                if m:
                    self.port = int(m.group(1))
                    return
            elif "running on" in text:
                return
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise AssertionError("runner exited before it was ready\n" + self.describe())
            if time.monotonic() > deadline:
                raise AssertionError(f"runner not ready within {timeout:.0f} s\n"
                                     + self.describe())
            time.sleep(0.02)

    def wait_stderr(self, needle, timeout=IO_TIMEOUT, count=1):
        """Waits until `needle` (a string or compiled regex) occurs `count` times on stderr."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stderr()
            found = (len(needle.findall(text)) if hasattr(needle, "findall")
                     else text.count(needle))
            if found >= count:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not on stderr within {timeout:.0f} s\n"
                                     + self.describe())
            if self.proc.poll() is not None and found < count:
                # One last read: the process may have written it just before exiting.
                text = self.stderr()
                found = (len(needle.findall(text)) if hasattr(needle, "findall")
                         else text.count(needle))
                if found >= count:
                    return text
                raise AssertionError(f"runner exited without printing {needle!r}\n"
                                     + self.describe())
            time.sleep(0.02)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig=signal.SIGTERM):
        if self.running():
            self.proc.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        """Waits for the process to exit; kills it and fails when it does not in time."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.returncode = self.proc.returncode
            self._checked = True  # this failure is the report; cleanup adds nothing
            raise AssertionError(f"runner did not exit within {timeout:.0f} s (killed)\n"
                                 + self.describe())
        return self.returncode

    def check(self, expect_code=0):
        """Asserts a sanitizer-clean stderr and the exit code: an int, "any" (anything, even a
        signal), or None (any normal exit, i.e. not killed by a signal)."""
        self._checked = True
        text = self.stderr()
        bad = sanitizer_lines(text)
        if bad:
            raise AssertionError("sanitizer report on the runner's stderr:\n  "
                                 + "\n  ".join(bad[:20]) + "\n" + self.describe())
        if expect_code == "any":
            return
        if expect_code is None:
            if self.returncode < 0:
                raise AssertionError(f"runner killed by signal {-self.returncode}\n"
                                     + self.describe())
            return
        if self.returncode != expect_code:
            raise AssertionError(f"runner exit code {self.returncode}, expected {expect_code}\n"
                                 + self.describe())

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT, expect_code=0):
        """SIGTERM (by default), wait for exit, check exit code and sanitizer output."""
        if self.running():
            self.proc.send_signal(sig)
        self.wait_exit(timeout)
        self.check(expect_code)
        return self.returncode

    def cleanup(self):
        try:
            if self.proc is not None and not self._checked:
                self.stop()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """A TestCase whose servers are stopped (and checked) when each test ends."""

    maxDiff = None

    def start_server(self, *args, app=None, **kwargs):
        """start_server("--flag", "value", ..., app=TESTAPP, env={...}, tcp=True, ready=None)"""
        srv = Server(TESTAPP if app is None else app, args, **kwargs)
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv

    def assertResponse(self, resp, status, body=None):
        self.assertTrue(resp.complete, f"incomplete response: {resp!r}")
        self.assertEqual(resp.status, status, f"unexpected response: {resp!r}")
        if body is not None:
            self.assertEqual(resp.body, body, f"unexpected response: {resp!r}")


# ---------------------------------------------------------------------------------------------
# HTTP/1.1 responses
# ---------------------------------------------------------------------------------------------

class ProtocolError(AssertionError):
    """The server sent bytes that are not valid HTTP/1.1."""


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []  # [(lower-cased name, value)] as str (latin-1), in order
        self.body = b""
        self.trailers = []
        self.complete = False
        self.chunked = False
        self.raw = b""

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def trailer(self, name):
        name = name.lower()
        for k, v in self.trailers:
            if k == name:
                return v
        return None

    def connection_tokens(self):
        return {t.strip().lower() for v in self.header_all("connection") for t in v.split(",")}

    def __repr__(self):
        raw = self.raw if len(self.raw) < 600 else self.raw[:600] + b"..."
        return (f"<Response {self.version} {self.status} complete={self.complete} "
                f"chunked={self.chunked} headers={self.headers} body[{len(self.body)}]="
                f"{self.body[:200]!r} trailers={self.trailers} raw={raw!r}>")


_STATUS_LINE = re.compile(rb"^HTTP/(\d)\.(\d) (\d{3})(?: ([^\r\n]*))?$")
_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _parse_fields(lines):
    out = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError(f"obs-fold in server output: {line!r}")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise ProtocolError(f"bad header line from server: {line!r}")
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ProtocolError(f"bad header value from server: {line!r}")
        out.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return out


def parse_response(buf, head=False, eof=False):
    """Parses one response from the start of `buf`.

    Returns (Response, consumed) for a complete response; None when more bytes are needed and
    the peer has not closed; when `eof`, a Response with complete=False for a truncated one.
    Raises ProtocolError for bytes that are not HTTP/1.1.
    """
    resp = Response()
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if eof:
            resp.raw = bytes(buf)
            return resp, len(buf)
        if len(buf) > 1 << 20:
            raise ProtocolError(f"no end of response head in 1 MiB: {buf[:200]!r}")
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    m = _STATUS_LINE.match(lines[0])
    if not m:
        raise ProtocolError(f"bad status line: {lines[0]!r} (buffer {buf[:300]!r})")
    resp.version = f"{m.group(1).decode()}.{m.group(2).decode()}"
    resp.status = int(m.group(3))
    resp.reason = (m.group(4) or b"").decode("latin-1")
    resp.headers = _parse_fields(lines[1:])
    pos = end + 4

    te = resp.header_all("transfer-encoding")
    cl = resp.header_all("content-length")
    if head or 100 <= resp.status < 200 or resp.status in (204, 304):
        resp.complete = True
        resp.raw = bytes(buf[:pos])
        return resp, pos
    if te:
        codings = [c.strip().lower() for v in te for c in v.split(",")]
        if codings[-1] != "chunked":
            raise ProtocolError(f"unsupported transfer-encoding {te}")
        if cl:
            raise ProtocolError("both Content-Length and Transfer-Encoding in a response")
        resp.chunked = True
        body = []  # (start, end) offsets: no copies until the response is complete
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            if not re.match(rb"^[0-9a-fA-F]+$", size_text):
                raise ProtocolError(f"bad chunk size line {buf[pos:line_end]!r}")
            size = int(size_text, 16)
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if buf[line_end:line_end + 4] == b"\r\n\r\n":
                    resp.trailers = []
                    pos = line_end + 4
                elif trailer_end >= 0:
                    resp.trailers = _parse_fields(
                        bytes(buf[line_end + 2:trailer_end]).split(b"\r\n"))
                    pos = trailer_end + 4
                else:
                    break
                resp.body = b"".join(buf[a:b] for a, b in body)
                resp.complete = True
                resp.raw = bytes(buf[:pos])
                return resp, pos
            if len(buf) < line_end + 2 + size + 2:
                break
            if buf[line_end + 2 + size:line_end + 4 + size] != b"\r\n":
                raise ProtocolError(f"chunk of {size} bytes not followed by CRLF")
            body.append((line_end + 2, line_end + 2 + size))
            pos = line_end + 4 + size
        if eof:
            resp.body = b"".join(buf[a:b] for a, b in body)
            resp.raw = bytes(buf)
            return resp, len(buf)
        return None
    if cl:
        if len(set(cl)) != 1 or not cl[0].isdigit():
            raise ProtocolError(f"bad content-length {cl}")
        n = int(cl[0])
        if len(buf) - pos >= n:
            resp.body = bytes(buf[pos:pos + n])
            resp.complete = True
            resp.raw = bytes(buf[:pos + n])
            return resp, pos + n
        if eof:
            resp.body = bytes(buf[pos:])
            resp.raw = bytes(buf)
            return resp, len(buf)
        return None
    # Close-delimited.
    if eof:
        resp.body = bytes(buf[pos:])
        resp.complete = True
        resp.raw = bytes(buf)
        return resp, len(buf)
    return None


def build_request(method, target, headers=None, body=None, version="HTTP/1.1"):
    """Bytes of one request. `headers` is a list of (name, value); None means just Host. A body
    gets a Content-Length unless the headers carry one or a Transfer-Encoding."""
    if headers is None:
        headers = [("Host", "127.0.0.1")]
    names = {n.lower() for n, _ in headers}
    if isinstance(body, str):
        body = body.encode()
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers = list(headers) + [("Content-Length", str(len(body)))]
    out = f"{method} {target} {version}\r\n".encode("latin-1")
    for n, v in headers:
        out += (n if isinstance(n, bytes) else n.encode("latin-1")) + b": "
        out += (v if isinstance(v, bytes) else v.encode("latin-1")) + b"\r\n"
    out += b"\r\n"
    if body:
        out += body
    return out


def chunked(pieces, trailers=b""):
    """A chunked request body from a list of byte strings (empty pieces are skipped)."""
    out = b""
    for p in pieces:
        if p:
            out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


class Conn:
    """A raw client connection over TCP (port) or a Unix socket (uds path)."""

    def __init__(self, port=None, uds=None, timeout=IO_TIMEOUT):
        if uds is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(uds)
        else:
            self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def request(self, method, target, headers=None, body=None, version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))

    def _recv(self, deadline, idle=None):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining if idle is None else min(idle, remaining))
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        return data

    def read_response(self, head=False, timeout=None, allow_incomplete=False, idle=None):
        """The next response (1xx responses are returned on their own). Fails on a timeout (or,
        with `idle`, when no byte arrives for that long), and on a truncated response unless
        allow_incomplete (then complete=False tells)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            parsed = parse_response(self.buf, head=head, eof=self.eof)
            if parsed is not None:
                resp, used = parsed
                del self.buf[:used]
                if not resp.complete and not allow_incomplete:
                    raise AssertionError(f"connection closed (reset={self.reset}) before a "
                                         f"complete response: {resp!r}")
                return resp
            try:
                self._recv(deadline, idle)
            except socket.timeout:
                raise AssertionError(f"no complete response within {timeout or self.timeout}"
                                     f" s (idle limit {idle}); received {len(self.buf)} bytes:"
                                     f" {self.buf[:500]!r}") from None

    def read_until_close(self, timeout=None):
        """All bytes until the server closes; fails when it does not close in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.eof:
            try:
                self._recv(deadline)
            except socket.timeout:
                raise AssertionError(f"server did not close within "
                                     f"{timeout or self.timeout} s; got {self.buf[:300]!r}"
                                     ) from None
        data, self.buf = bytes(self.buf), bytearray()
        return data

    def wait_closed(self, timeout):
        """(closed, extra bytes): whether the server closed within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._recv(deadline)
            except socket.timeout:
                return False, bytes(self.buf)
        return True, bytes(self.buf)

    def is_open_after(self, seconds):
        """True when the server neither closed nor sent anything for `seconds`."""
        closed, extra = self.wait_closed(seconds)
        return not closed and not extra

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def exchange(port, method, target, headers=None, body=None, version="HTTP/1.1", head=None,
             timeout=IO_TIMEOUT):
    """One request on a new connection; returns the response."""
    with Conn(port, timeout=timeout) as c:
        c.request(method, target, headers, body, version)
        return c.read_response(head=(method == "HEAD") if head is None else head)


def get(port, target, headers=None):
    return exchange(port, "GET", target, headers)


def http_client(port, method, target, body=None, headers=None, timeout=IO_TIMEOUT):
    """One request through http.client: (status, headers as list, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        conn.close()


def curl(*args, timeout=60):
    """Runs curl (never through a proxy); returns the CompletedProcess (bytes)."""
    if shutil.which("curl") is None:
        raise unittest.SkipTest("curl not installed")
    cmd = ["curl", "-sS", "--noproxy", "*", "--max-time", str(int(scaled(30)))] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout * SCALE)


def connect_refused(port, timeout=2.0):
    """True when a connection to `port` is refused (nobody listening)."""
    try:
        s = socket.create_connection((HOST, port), timeout=timeout)
    except ConnectionRefusedError:
        return True
    except OSError as e:
        return e.errno == errno.ECONNREFUSED
    s.close()
    return False


def rss_kib(pid):
    """The resident set of a process, in KiB (VmRSS from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def wait_until(predicate, timeout, interval=0.05):
    """Polls `predicate` until it returns a true value (returned) or `timeout` passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# testapp helpers
# ---------------------------------------------------------------------------------------------

def unescape(value):
    """Undoes testapp's \\xNN escaping; returns a latin-1 str (bytes 1:1)."""
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), value)


def parse_scope(body):
    """testapp's /scope listing as a dict; 'headers' is a list of (name, value)."""
    out = {"headers": []}
    for line in body.decode("latin-1").splitlines():
        key, _, value = line.partition("=")
        if key == "header":
            name, _, v = value.partition(": ")
            out["headers"].append((unescape(name), unescape(v)))
        else:
            out[key] = unescape(value)
    return out


def parse_codes(text):
    """'a=1 b=-1001' (any separators) -> {'a': 1, 'b': -1001}."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return {k: int(v) for k, v in re.findall(r"([a-z_0-9]+)=(-?\d+)", text)}


def app_log(port):
    """testapp's log (GET /log) as text."""
    r = get(port, "/log")
    if r.status != 200:
        raise AssertionError(f"GET /log failed: {r!r}")
    return r.body.decode("latin-1")


def wait_log(port, needle, timeout=IO_TIMEOUT):
    """Polls GET /log until `needle` appears; returns the log (fails on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        text = app_log(port)
        if needle in text:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} not in the app's log within {timeout:.0f} s; "
                                 f"log:\n{text}")
        time.sleep(0.05)


def fnv1a(data):
    h = 2166136261
    for b in data:
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


class Thread(threading.Thread):
    """A daemon thread that keeps its exception for the main thread to re-raise."""

    def __init__(self, target, *args):
        super().__init__(daemon=True)
        self._target_fn = target
        self._fn_args = args
        self.result = None
        self.error = None

    def run(self):
        try:
            self.result = self._target_fn(*self._fn_args)
        except BaseException as e:  # noqa: B902 - reported by join_checked
            self.error = e

    def join_checked(self, timeout):
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(f"thread still running after {timeout:.0f} s")
        if self.error is not None:
            raise self.error
        return self.result


# ---------------------------------------------------------------------------------------------
# WebSocket: raw frames (RFC 6455)
# ---------------------------------------------------------------------------------------------

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def ws_accept_value(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (str or bytes)."""
    if isinstance(key, str):
        key = key.encode("latin-1")
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode("ascii")


def ws_new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def ws_mask(data, key):
    """`data` XOR the repeated 4-byte `key` (fast for large payloads)."""
    n = len(data)
    if n == 0:
        return b""
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None, length=None):
    """One frame as a client would send it. rsv: the RSV1..3 bits as a number 0..7 (4 = RSV1).
    length: the length to announce, when it must differ from len(payload)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 1 << 16:
        head += bytes([mbit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mbit | 127]) + n.to_bytes(8, "big")
    if mask:
        if mask_key is None:
            mask_key = os.urandom(4)
        return head + mask_key + ws_mask(payload, mask_key)
    return head + payload


def ws_close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return code.to_bytes(2, "big") + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.masked, self.payload = masked, payload

    @property
    def close_code(self):
        return int.from_bytes(self.payload[:2], "big") if len(self.payload) >= 2 else None

    @property
    def close_reason(self):
        return bytes(self.payload[2:])

    def __repr__(self):
        p = self.payload if len(self.payload) < 80 else self.payload[:80] + b"..."
        return (f"<Frame op={self.opcode:#x} fin={self.fin} rsv={self.rsv} masked={self.masked} "
                f"len={len(self.payload)} {bytes(p)!r}>")


def ws_parse_frame(buf):
    """(Frame, consumed) from the start of `buf`, or None when incomplete."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = int.from_bytes(buf[2:4], "big")
        pos = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = int.from_bytes(buf[2:10], "big")
        pos = 10
    masked = bool(b1 & 0x80)
    key = b""
    if masked:
        if len(buf) < pos + 4:
            return None
        key = bytes(buf[pos:pos + 4])
        pos += 4
    if len(buf) < pos + n:
        return None
    payload = bytes(buf[pos:pos + n])
    if masked:
        payload = ws_mask(payload, key)
    return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload), pos + n


def assemble_ws_message(next_frame, send_pong, answer_pings=True):
    """The next data message from a WebSocket frame source, for every raw client (over TCP and
    over an HTTP/2 stream): (opcode, payload) with fragments joined, pings answered with
    send_pong(payload) when `answer_pings`, pongs skipped; ("close", Frame) for a close frame;
    (None, None) when next_frame() returns None (the byte stream ended first)."""
    opcode, parts = None, []
    while True:
        f = next_frame()
        if f is None:
            return None, None
        if f.opcode == OP_CLOSE:
            return "close", f
        if f.opcode == OP_PING:
            if answer_pings:
                send_pong(f.payload)
            continue
        if f.opcode == OP_PONG:
            continue
        if f.opcode != OP_CONT:
            if opcode is not None:
                raise ProtocolError(f"new message inside a fragmented one: {f!r}")
            opcode = f.opcode
        elif opcode is None:
            raise ProtocolError(f"continuation without a message: {f!r}")
        parts.append(f.payload)
        if f.fin:
            return opcode, b"".join(parts)


class RawWS:
    """A WebSocket client on a plain socket: sends the handshake (plus `extra` bytes in the same
    sendall), reads the HTTP response, then reads and writes raw frames.

    headers: replaces the default handshake headers when given (a list of (name, value)).
    rcvbuf/sndbuf: socket buffer sizes set before connect (to keep the kernel's share small).
    handshake=False: connect only; call handshake() later.
    """

    def __init__(self, port, path="/ws/echo", headers=None, extra_headers=(), extra=b"",
                 timeout=IO_TIMEOUT, rcvbuf=None, sndbuf=None, handshake=True, method="GET"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self.timeout = timeout
        self.buf = bytearray()
        self.eof = False
        self.reset = False
        self.key = ws_new_key()
        self.response = None
        self.close_frame = None
        self.path = path
        self.method = method
        if headers is None:
            headers = [("Host", f"127.0.0.1:{port}"), ("Upgrade", "websocket"),
                       ("Connection", "Upgrade"), ("Sec-WebSocket-Key", self.key),
                       ("Sec-WebSocket-Version", "13")]
        self.headers = list(headers) + list(extra_headers)
        if handshake:
            self.handshake(extra)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def handshake(self, extra=b"", timeout=None):
        """Sends the request (and `extra`), returns the response (also kept in .response)."""
        self.sock.sendall(build_request(self.method, self.path, self.headers) + extra)
        self.response = self.read_http_response(timeout)
        return self.response

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        return data

    def read_http_response(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            parsed = parse_response(self.buf, eof=self.eof)
            if parsed is not None:
                resp, used = parsed
                del self.buf[:used]
                return resp
            try:
                self._recv(deadline)
            except socket.timeout:
                raise AssertionError(f"no handshake response within the timeout; got "
                                     f"{bytes(self.buf[:300])!r}") from None

    def upgraded(self):
        return self.response is not None and self.response.status == 101

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(ws_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=1000, reason=b"", **kw):
        try:
            self.send_frame(OP_CLOSE, ws_close_payload(code, reason), **kw)
        except (BrokenPipeError, ConnectionResetError):
            self.reset = True

    def read_frame(self, timeout=None):
        """The next frame; None when the server closed the TCP connection first. Fails on a
        timeout and on a masked server frame (RFC 6455 5.1)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            parsed = ws_parse_frame(self.buf)
            if parsed is not None:
                frame, used = parsed
                del self.buf[:used]
                if frame.masked:
                    raise ProtocolError(f"masked frame from the server: {frame!r}")
                return frame
            if self.eof:
                if self.buf:
                    raise ProtocolError(f"connection closed inside a frame: "
                                        f"{bytes(self.buf[:100])!r}")
                return None
            try:
                self._recv(deadline)
            except socket.timeout:
                raise AssertionError(f"no frame within {timeout or self.timeout} s; buffered "
                                     f"{bytes(self.buf[:100])!r}") from None

    def read_message(self, timeout=None, answer_pings=True):
        """(opcode, payload) of the next data message (fragments joined; pings answered, pongs
        skipped); ("close", Frame) for a close frame; (None, None) when TCP closed first."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        return assemble_ws_message(
            lambda: self.read_frame(max(0.01, deadline - time.monotonic())),
            lambda payload: self.send_frame(OP_PONG, payload), answer_pings)

    def expect_close(self, timeout=None, reply=True):
        """Reads until the server's close frame (data frames are collected, pings ignored) and
        returns (code, reason bytes, data frames before it). code is None when the TCP
        connection ended without a close frame (then .close_frame is None) or when the close
        frame had no code. With `reply`, answers the close and then requires the server to close
        TCP."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = []
        self.close_frame = None
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            if f is None:
                return None, b"", data
            if f.opcode == OP_CLOSE:
                break
            if f.opcode not in (OP_PING, OP_PONG):
                data.append(f)
        self.close_frame = f
        if reply:
            self.send_close(f.close_code if f.close_code not in (None, 1005) else 1000)
            closed = self.wait_eof(max(1.0, deadline - time.monotonic()))
            if not closed:
                raise AssertionError(f"server did not close TCP after the close handshake "
                                     f"(close code {f.close_code})")
        return f.close_code, f.close_reason, data

    def wait_eof(self, timeout):
        """True when the server closes TCP within `timeout` (bytes meanwhile are dropped)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._recv(deadline)
            except socket.timeout:
                return False
            except OSError:
                return True
            self.buf.clear()
        return True

    def abort(self):
        """Closes with a TCP RST (SO_LINGER 0)."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def send_until_blocked(sock, data, stall, limit):
    """Writes `data` over and over without reading until a write makes no progress for `stall`
    seconds or `limit` bytes went out. Returns the bytes written (they may end inside a copy of
    `data`)."""
    sock.setblocking(False)
    sent = 0
    view = memoryview(data)
    try:
        while sent < limit:
            _, w, _ = select.select([], [sock], [], stall)
            if not w:
                break
            off = sent % len(data)
            try:
                sent += sock.send(view[off:])
            except BlockingIOError:
                continue
    finally:
        sock.setblocking(True)
    return sent
