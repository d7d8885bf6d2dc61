"""A real InfluxDB 1.x server for tests and the stream demo.

Starts Debian's `influxd` (package `influxdb`) with a config file that puts
every directory in a fresh temporary folder and binds 127.0.0.1 on free
ports (HTTP and the RPC service), waits a bounded time for `/ping`, and
stops it again. Nothing here touches the system service or any other
address. Queries go over HTTP with InfluxQL (urllib, no client library).
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

START_TIMEOUT_S = 30


class InfluxdError(RuntimeError):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONFIG = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[logging]
  level = "warn"
"""


class Influxd:
    """`with Influxd() as server:` a running server at `server.url`."""

    def __init__(self, binary=None):
        self.binary = binary or shutil.which("influxd") or "/usr/bin/influxd"
        self.process = None
        self.root = None
        self.url = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        if not os.path.exists(self.binary):
            raise InfluxdError(
                "influxd not found: install Debian's influxdb package (apt-get install -y influxdb; .ci/run does)"
            )
        self.root = tempfile.mkdtemp(prefix="ecoreco-influxd-")
        http, rpc = free_port(), free_port()
        config = os.path.join(self.root, "influxdb.conf")
        with open(config, "w") as f:
            f.write(CONFIG.format(root=self.root, http=http, rpc=rpc))
        self.url = f"http://127.0.0.1:{http}"
        self.log = open(os.path.join(self.root, "influxd.log"), "wb")
        self.process = subprocess.Popen([self.binary, "-config", config], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise InfluxdError(f"influxd exited with code {self.process.returncode} at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as r:
                    if r.status == 204:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise InfluxdError(f"influxd did not answer /ping on {self.url} within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def log_tail(self):
        try:
            with open(os.path.join(self.root, "influxd.log"), "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def query(self, q, database=None, method="GET"):
        """Runs InfluxQL; returns the list of series of the first statement."""
        params = {"q": q}
        if database:
            params["db"] = database
        data = urllib.parse.urlencode(params)
        if method == "POST":
            request = urllib.request.Request(self.url + "/query", data=data.encode(), method="POST")
        else:
            request = urllib.request.Request(self.url + "/query?" + data)
        with urllib.request.urlopen(request, timeout=10) as r:
            body = json.loads(r.read())
        result = body["results"][0]
        if "error" in result:
            raise InfluxdError(result["error"])
        return result.get("series", [])

    def create_database(self, name):
        self.query(f'CREATE DATABASE "{name}"', method="POST")

    def scalar(self, q, database):
        """The first value of the first row (after the time column)."""
        series = self.query(q, database)
        return series[0]["values"][0][1] if series else None
