"""download_dataset against a loopback HTTP server serving a small archive the test builds (no network)."""

from __future__ import annotations

import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix_lib.data import (
    DATASET_NAMES,
    DatasetDownloadError,
    PairedImageDataset,
    download_dataset,
)


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
    """Serves ``/facades.tar.gz``; options decide Range support and an abrupt drop mid-file."""

    def __init__(self, archive: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.archive = archive
        self.support_range = True
        self.drop_after: int | None = None
        self.range_headers: list[str | None] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/datasets"


class _Handler(BaseHTTPRequestHandler):
    server: ArchiveServer

    def do_GET(self) -> None:
        if self.path != "/datasets/facades.tar.gz":
            self.send_error(404)
            return
        data, start = self.server.archive, 0
        requested = self.headers.get("Range")
        self.server.range_headers.append(requested)
        if requested and self.server.support_range:
            start = int(requested.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
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


@pytest.fixture
def server() -> Iterator[ArchiveServer]:
    server = ArchiveServer(build_archive())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leftovers(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir())


def download(root: Path, server: ArchiveServer, **kwargs) -> Path:
    return download_dataset("facades", root, base_url=server.base_url, progress=False, **kwargs)


def test_download_extracts_a_usable_dataset(tmp_path, server):
    path = download(tmp_path, server)
    assert path == tmp_path / "facades"
    assert leftovers(tmp_path) == ["facades"]  # no .part file, no staging folder
    assert len(PairedImageDataset(path / "train")) == 3
    assert len(PairedImageDataset(path, split="test", train=False)) == 2
    assert server.range_headers == [None]
    # Already there: returned without touching the network.
    assert download_dataset("facades", tmp_path, base_url=f"http://127.0.0.1:{unused_port()}", progress=False) == path


def test_base_url_from_environment(tmp_path, server, monkeypatch):
    monkeypatch.setenv("PIX2PIX_DATASETS_URL", server.base_url)
    assert download_dataset("facades", tmp_path, progress=False).is_dir()


def test_resume_partial_file_with_range(tmp_path, server):
    half = len(server.archive) // 2
    (tmp_path / ".facades.tar.gz.part").write_bytes(server.archive[:half])
    path = download(tmp_path, server)
    assert server.range_headers == [f"bytes={half}-"]
    assert len(PairedImageDataset(path / "train")) == 3


def test_server_ignoring_range_restarts_cleanly(tmp_path, server):
    server.support_range = False
    (tmp_path / ".facades.tar.gz.part").write_bytes(b"stale bytes from some other file")
    path = download(tmp_path, server)
    assert server.range_headers == ["bytes=32-"]
    assert len(PairedImageDataset(path / "train")) == 3


def test_dropped_connection_leaves_nothing_extracted_then_resumes(tmp_path, server):
    server.drop_after = len(server.archive) // 3
    with pytest.raises(DatasetDownloadError, match=r"facades\.tar\.gz.*2 attempt"):
        download(tmp_path, server, retries=1)
    assert leftovers(tmp_path) == [".facades.tar.gz.part"]  # partial file kept for resuming, no dataset
    assert (tmp_path / ".facades.tar.gz.part").stat().st_size < len(server.archive)
    server.drop_after = None
    assert len(PairedImageDataset(download(tmp_path, server) / "train")) == 3
    assert server.range_headers[-1] is not None and server.range_headers[-1].startswith("bytes=")


def test_http_404_is_a_clear_error(tmp_path, server):
    with pytest.raises(DatasetDownloadError, match=r"datasets/maps\.tar\.gz answered HTTP 404"):
        download_dataset("maps", tmp_path, base_url=server.base_url, progress=False, retries=0)
    assert not (tmp_path / "maps").exists()


def test_unreachable_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{unused_port()}/datasets"
    with pytest.raises(DatasetDownloadError, match=rf"cannot reach {url}/facades\.tar\.gz.*by hand"):
        download_dataset("facades", tmp_path, base_url=url, progress=False, retries=0)
    assert not (tmp_path / "facades").exists()


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'horses'.*facades, maps, cityscapes"):
        download_dataset("horses", tmp_path)
    assert set(DATASET_NAMES) == {"facades", "maps", "cityscapes", "edges2shoes", "edges2handbags", "night2day"}


@pytest.mark.parametrize(
    "archive", [b"not a gzip file at all", build_archive({"facades/train/1.jpg": b"x", "../escape.txt": b"evil"})],
    ids=["corrupt", "path-traversal"],
)
def test_bad_archive_is_rejected_and_nothing_extracted(tmp_path, server, archive):
    server.archive = archive
    root = tmp_path / "root"
    with pytest.raises(DatasetDownloadError, match="not a valid .tar.gz or holds unsafe paths"):
        download(root, server, retries=0)
    assert leftovers(root) == [] and not (tmp_path / "escape.txt").exists()


def test_cli_download(tmp_path, server, capsys):
    from pix2pix_lib.cli import main

    assert main(["download", "facades", "--root", str(tmp_path), "--base-url", server.base_url, "--no-progress"]) == 0
    assert f"facades is in {tmp_path / 'facades'}" in capsys.readouterr().out
    assert main(["download", "horses", "--root", str(tmp_path), "--no-progress"]) == 1
    assert "known datasets: facades" in capsys.readouterr().err
    url = f"http://127.0.0.1:{unused_port()}"
    assert main(["download", "maps", "--root", str(tmp_path), "--base-url", url, "--no-progress"]) == 1
    assert f"cannot reach {url}/maps.tar.gz" in capsys.readouterr().err
