"""A local HTTP listener and a file that record every attempt to fetch them.

Stylesheets in the tests point at both: ``@import url("<trap.http_url>")`` and
``@import url("<trap.file_url>")``. Nothing in the app may ever connect to the listener
or open the file, in this process or in a worker subprocess, so each test ends with
``trap.assert_untouched()``.

The file is a FIFO: opening it for reading (from Python, libxml2 or anything else)
wakes the thread blocked opening it for writing, which records the read, so a read is
seen whatever opened it, and a reader gets a little CSS, then end of file (never a
hang, never ``/dev/zero``; the next reader is served half a second later).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import tempfile
import threading
import time
from pathlib import Path


class FetchTrap:
    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []
        self.requests: list[str] = []
        self.file_reads = 0
        self._closing = False
        self._dir = tempfile.TemporaryDirectory(prefix="tm-fetch-trap-")
        self.path = Path(self._dir.name) / "trap.css"
        os.mkfifo(self.path)
        trap = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                trap.requests.append(self.path)
                body = b"p { color: blue }"
                self.send_response(200)
                self.send_header("Content-Type", "text/css")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                trap.connections.append(client_address)  # any connection counts
                return True

        self._server = Server(("127.0.0.1", 0), Handler)
        self._threads = [
            threading.Thread(target=self._server.serve_forever, daemon=True),
            threading.Thread(target=self._feed_file, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def http_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/trap.css"

    @property
    def file_url(self) -> str:
        return self.path.as_uri()

    def imports(self) -> str:
        """CSS that imports both traps."""
        return f'@import url("{self.http_url}");\n@import url("{self.file_url}");\n'

    def _feed_file(self) -> None:
        while True:
            fd = os.open(self.path, os.O_WRONLY)  # blocks until someone opens it to read
            if self._closing:
                os.close(fd)
                return
            self.file_reads += 1
            with contextlib.suppress(BrokenPipeError):  # the reader may be gone
                os.write(fd, b"p { color: green }")
            os.close(fd)
            # Reopening at once would find this reader still there and feed it again.
            time.sleep(0.5)

    def assert_untouched(self) -> None:
        assert self.connections == [], f"the listener was contacted: {self.requests}"
        assert self.file_reads == 0, f"{self.path} was opened {self.file_reads} time(s)"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._closing = True
        # Release the writer thread: open the FIFO for reading ourselves.
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self._threads[1].join(timeout=5)
        os.close(fd)
        self._dir.cleanup()
