"""A Hugging Face Hub on 127.0.0.1 and an isolated huggingface_hub environment, for offline tests.

``FakeHub`` implements the endpoints ``hf_hub_download`` uses -- ``HEAD``/``GET
/{repo}/resolve/{revision}/{file}`` with the ``X-Repo-Commit``, ``ETag`` and ``Content-Length``
headers, and the ``X-Error-Code`` header on errors -- so the real client code runs end to end.
``isolate_hub`` points huggingface_hub at a temporary ``HF_HOME`` and at a given endpoint. It
patches ``huggingface_hub.constants`` as well as the environment, because the library reads
``HF_HOME`` / ``HF_ENDPOINT`` / ``HF_HUB_OFFLINE`` once, at import time.
"""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

#: A closed port: anything that is not supposed to talk to a server fails fast instead of going online.
NOWHERE = "http://127.0.0.1:9"


def isolate_hub(
    monkeypatch: pytest.MonkeyPatch, home: Path, endpoint: str = NOWHERE, offline: bool = True
) -> Path:
    """Point huggingface_hub at cache ``home/hub`` and ``endpoint``; returns the hub cache folder."""
    from huggingface_hub import constants

    cache = home / "hub"
    values = {
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(cache),
        "HF_ENDPOINT": endpoint,
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_TOKEN_PATH": str(home / "token"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    return cache


def populate_cache(
    cache: Path, repo_id: str, commit: str, files: dict[str, bytes], ref: str | None = "main"
) -> Path:
    """Lay out ``files`` in a huggingface_hub cache the way ``hf_hub_download`` does; returns the snapshot folder.

    ``models--{owner}--{name}/blobs/{sha256}`` holds the bytes, ``snapshots/{commit}/{file}`` is a
    relative symlink to the blob, and ``refs/{ref}`` holds the commit.
    """
    storage = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for name, content in files.items():
        blob = storage / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(content)
        pointer = snapshot / name
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    if ref is not None:
        (storage / "refs").mkdir(parents=True, exist_ok=True)
        (storage / "refs" / ref).write_text(commit)
    return snapshot


class FakeHub:
    """Serves model repos from memory: ``add_repo(repo_id, files, commit)``; ``requests`` logs (method, path)."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo -> commit -> files
        self.refs: dict[str, dict[str, str]] = {}  # repo -> branch -> commit
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, body=False)

            def do_GET(self) -> None:
                hub._serve(self, body=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_repo(self, repo_id: str, files: dict[str, bytes], commit: str, branch: str = "main") -> None:
        self.repos.setdefault(repo_id, {})[commit] = files
        self.refs.setdefault(repo_id, {})[branch] = commit

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _serve(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = unquote(urlsplit(handler.path).path)
        self.requests.append((handler.command, path))
        parts = path.strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve":
            return self._reply(handler, 404, {"X-Error-Code": "RepoNotFound"}, b"", body)
        repo_id, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
        if repo_id not in self.repos:
            return self._reply(
                handler,
                401,
                {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                b"",
                body,
            )
        commit = self.refs[repo_id].get(revision, revision)
        if commit not in self.repos[repo_id]:
            return self._reply(handler, 404, {"X-Error-Code": "RevisionNotFound"}, b"", body)
        files = self.repos[repo_id][commit]
        if filename not in files:
            return self._reply(
                handler, 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b"", body
            )
        content = files[filename]
        headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(content).hexdigest()}"'}
        return self._reply(handler, 200, headers, content, body)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], content: bytes, body: bool
    ) -> None:
        handler.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(content))}.items():
            handler.send_header(name, value)
        handler.end_headers()
        if body:
            handler.wfile.write(content)
