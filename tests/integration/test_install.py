"""Installation: `cmake --install` gives a package that another project finds with
find_package(casgi) and with pkg-config, builds against, and runs (an embedded server that
starts, shuts down and leaves its loop empty)."""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("CASGI_BUILD_DIR", "")
SANITIZE = os.environ.get("CASGI_SANITIZE", "")


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


@unittest.skipUnless(BUILD and shutil.which("cmake"), "needs CASGI_BUILD_DIR and cmake")
class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="casgi-install-")
        cls.prefix = os.path.join(cls.tmp.name, "prefix")
        r = run("cmake", "--install", BUILD, "--prefix", cls.prefix)
        assert r.returncode == 0, r.stderr
        # A sanitizer build installs instrumented objects: its consumers link the runtime too.
        cls.flags = [f"-fsanitize={SANITIZE}"] if SANITIZE else []

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_consumer(self, exe):
        r = run(exe)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("port 1 state 2 loop_close 0", r.stdout)

    def test_installs_headers_library_and_package_files(self):
        for rel in ("include/casgi.h", "include/casgi/app.h", "lib/libcasgi.a",
                    "lib/pkgconfig/casgi.pc", "lib/cmake/casgi/casgiConfig.cmake"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)

    def test_find_package_consumer_builds_and_runs(self):
        out = os.path.join(self.tmp.name, "cmake-consumer")
        flags = " ".join(self.flags)
        r = run("cmake", "-S", os.path.join(HERE, "consumer"), "-B", out,
                f"-DCMAKE_PREFIX_PATH={self.prefix}", f"-DCMAKE_C_FLAGS={flags}",
                f"-DCMAKE_EXE_LINKER_FLAGS={flags}")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = run("cmake", "--build", out)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_consumer(os.path.join(out, "consumer"))

    @unittest.skipUnless(shutil.which("pkg-config") and shutil.which("cc"), "needs pkg-config")
    def test_pkg_config_consumer_builds_and_runs(self):
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(self.prefix, "lib", "pkgconfig"))
        r = run("pkg-config", "--cflags", "--libs", "casgi", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(self.prefix, r.stdout, "casgi.pc must point into the install prefix")
        exe = os.path.join(self.tmp.name, "pc-consumer")
        r = run("cc", "-std=c11", *self.flags, os.path.join(HERE, "consumer", "main.c"), "-o",
                exe, *r.stdout.split())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_consumer(exe)


if __name__ == "__main__":
    unittest.main()
