"""Process and check bookkeeping for relay_check.py: start a hush-relay on a free loopback
port with a temporary data directory, wait for /health, stop it with SIGTERM."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
import urllib.request


class Tally:
    """One line per check: `PASS name` / `FAIL name: detail`; `N passed, M failed` at the end."""

    def __init__(self, verbose=False):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f" ({detail})" if detail and self.verbose else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def error(self, name, exc):
        self.failed += 1
        print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
        if self.verbose:
            traceback.print_exc()

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Relay:
    """A live `hush-relay serve` child process."""

    def __init__(self, binary, args_for, keep=False):
        self.binary = binary
        self.args_for = args_for  # (port, data_dir) -> [arguments after the binary]
        self.work = tempfile.mkdtemp(prefix="relay-check.")
        self.data = os.path.join(self.work, "data")
        os.makedirs(self.data)
        self.log_path = os.path.join(self.work, "relay.log")
        self.keep = keep
        self.proc = None
        self.port = None

    @property
    def ws_url(self):
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, port=None, timeout=30.0):
        self.port = port or free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary] + self.args_for(self.port, self.data),
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay exited with {self.proc.returncode} before /health; log:\n{self.log()}")
            if self.health() is not None:
                return
            time.sleep(0.1)
        raise RuntimeError(f"/health did not answer within {timeout} s; log:\n{self.log()}")

    def health(self):
        try:
            with urllib.request.urlopen(self.http_url + "/health", timeout=1) as r:
                return r.status, r.read()
        except Exception:
            return None

    def get(self, path):
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        """Send `sig`; return the exit code, or None if it did not exit within `timeout`
        (the README promises 10 s; the margin is for a loaded machine: this is not a timing test)."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.proc = None
        return rc

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self.keep:
            print(f"relay-check: kept {self.work}", flush=True)
        else:
            shutil.rmtree(self.work, ignore_errors=True)
