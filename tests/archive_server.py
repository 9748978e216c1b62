"""A loopback archive server for the download tests: builds small dataset archives and serves them (with
Range support and switchable misbehaviour), plus the helpers those tests share."""

from __future__ import annotations

import io
import socket
import tarfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from pix2pix_lib.data import download_dataset


def build_archive(members: dict[str, bytes] | None = None) -> bytes:
    """A facades-like .tar.gz: ``facades/{train,test}/N.jpg`` holding aligned 32x16 A|B images."""
    if members is None:
        members = {}
        rng = np.random.default_rng(0)
        for split, count in (("train", 3), ("test", 2)):
            for index in range(1, count + 1):
                buffer = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8)).save(buffer, format="JPEG")
                members[f"facades/{split}/{index}.jpg"] = buffer.getvalue()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class ArchiveServer(ThreadingHTTPServer):
    """Serves ``/facades.tar.gz``; options decide Range support, 416 details, ``Content-Length`` and a drop mid-file.

    ``requests`` logs ``(method, Range header)`` per request, and ``("TLS", None)`` for a TLS handshake
    (answered like a plain-HTTP port does: a 400 in clear text, so the client's TLS fails at once).
    """

    def __init__(self, archive: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.archive = archive
        self.support_range = True
        self.content_range_on_416 = True
        self.drop_after: int | None = None
        self.content_length = True  # False: no Content-Length, the body ends when the connection closes
        self.requests: list[tuple[str, str | None]] = []

    range_headers = property(lambda self: [value for method, value in self.requests if method == "GET"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/datasets"


class _Handler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def handle(self) -> None:
        if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello on this plain-HTTP port
            self.server.requests.append(("TLS", None))
            self.connection.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        super().handle()

    def do_HEAD(self) -> None:
        self.server.requests.append(("HEAD", None))
        if self.path != "/datasets/facades.tar.gz":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.archive)))
        self.end_headers()

    def do_GET(self) -> None:
        requested = self.headers.get("Range")
        self.server.requests.append(("GET", requested))
        if self.path != "/datasets/facades.tar.gz":
            self.send_error(404)
            return
        data, start = self.server.archive, 0
        if requested and self.server.support_range:
            start = int(requested.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                if self.server.content_range_on_416:
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if self.server.content_length:
            self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Content-Type", "application/gzip")
        self.end_headers()
        body = data[start:]
        if self.server.drop_after is not None:
            self.wfile.write(body[: self.server.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir())


def download(root: Path, server: ArchiveServer, **kwargs) -> Path:
    return download_dataset("facades", root, base_url=server.base_url, progress=False, **kwargs)
