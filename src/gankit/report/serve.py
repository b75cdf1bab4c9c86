"""``gankit serve``: the report page of one or more runs, live while they train.

A small read-only HTTP server on the loopback address (nothing else can reach it): ``/`` is
the page of :func:`gankit.report.page.render` with a script that asks ``/state`` every
couple of seconds and reloads when the runs have written something new (a log row, a sample
picture, an evaluation). The page is made again only when that digest changes. Only GET and
HEAD of those two paths are answered; everything else is 404 or 405.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ConfigError
from .page import MAX_FRAMES, collect, last_step, render, signature

__all__ = ["ReportServer", "serve"]

HOST = "127.0.0.1"


class ReportServer:
    """Serves the live page of ``run_dirs`` at ``http://127.0.0.1:PORT/`` (port 0: any free
    one; :attr:`url` says which). ``start()`` serves from a thread, ``serve_forever()`` here."""

    def __init__(self, run_dirs: Sequence, port: int = 8000, interval_ms: int = 2000,
                 max_frames: int = MAX_FRAMES):
        if not run_dirs:
            raise ConfigError("give at least one run directory")
        self.run_dirs = [Path(d) for d in run_dirs]
        for d in self.run_dirs:
            collect(d, max_frames=1)   # a wrong folder fails now, with the message of `gankit report`
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port must be between 0 and 65535, got {port}")
        self.interval_ms, self.max_frames = interval_ms, max_frames
        self._lock = threading.Lock()
        self._cache: Optional[tuple] = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner._answer(self, body=True)

            def do_HEAD(self):
                owner._answer(self, body=False)

            def _refuse(self):
                self.send_error(405, "read-only: only GET and HEAD are answered")

            do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

            def log_message(self, *args):  # quiet: the terminal is the training's
                pass

        try:
            self.httpd = ThreadingHTTPServer((HOST, port), Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc}); pick another --port "
                              "(0 takes any free one)") from exc
        self.httpd.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}/"

    def state(self) -> dict:
        return {"signature": signature(self.run_dirs), "steps": [last_step(d) for d in self.run_dirs]}

    def page(self) -> str:
        sig = signature(self.run_dirs)
        with self._lock:
            if self._cache is None or self._cache[0] != sig:
                records = [collect(d, self.max_frames) for d in self.run_dirs]
                self._cache = (sig, render(records, live={"signature": sig, "interval_ms": self.interval_ms}))
            return self._cache[1]

    def _answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        route = handler.path.split("?", 1)[0]
        try:
            if route in ("/", "/index.html"):
                data, kind = self.page().encode("utf-8"), "text/html; charset=utf-8"
            elif route == "/state":
                data, kind = json.dumps(self.state()).encode(), "application/json"
            else:
                handler.send_error(404, "the report is at /")
                return
        except ConfigError as exc:   # the run directory went away while serving
            handler.send_error(500, str(exc))
            return
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def start(self) -> "ReportServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()


def serve(run_dirs: Sequence, port: int = 8000, interval_ms: int = 2000) -> int:
    server = ReportServer(run_dirs, port=port, interval_ms=interval_ms)
    print(f"gankit serve: {server.url} (read-only, this machine only; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
