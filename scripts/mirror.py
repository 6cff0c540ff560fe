#!/usr/bin/env python3
"""Serve a directory read-only over HTTP on 127.0.0.1, for container builds that download release assets.

usage: mirror.py DIR [--port N] [--port-file FILE]

Binds 127.0.0.1 only. --port asks for a port (0, the default, lets the kernel pick one); when that port is
taken another free one is used instead. The chosen port is written to --port-file (and to stdout) once
the server is listening, so a caller can wait for that file. Serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType


class _Handler(http.server.SimpleHTTPRequestHandler):
    def list_directory(self, path: str | bytes) -> None:  # type: ignore[override]
        self.send_error(404, "Not Found")

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"mirror: {self.address_string()} {format % args}\n")


def _bind(directory: Path, port: int) -> http.server.ThreadingHTTPServer:
    handler = functools.partial(_Handler, directory=str(directory))
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        if port == 0:
            raise
        return http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"not a directory: {args.directory}")

    server = _bind(args.directory.resolve(), args.port)
    server.daemon_threads = True
    port = server.server_address[1]

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file is not None:
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(args.port_file)
    print(port, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    sys.exit(main())
