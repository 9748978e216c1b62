"""Shared test set-up: small thread count (CI has 2 cores), no network, deterministic seeds."""

from __future__ import annotations

import os

# Fail loudly instead of reaching the Hugging Face Hub if some code path forgets a stand-in.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# translate(engine="auto") would export and time onnxruntime / OpenVINO graphs for every new model
# (seconds each) and remember choices in the user's cache: tests that want that opt in (test_engines.py).
os.environ["PIX2PIX_AUTO_ENGINES"] = "torch"
os.environ["PIX2PIX_ENGINE_CACHE"] = "off"

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True)
settings.register_profile("dev", deadline=None, max_examples=25)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def server():
    """A loopback HTTP server of dataset archives (``tests/archive_server.py``), shut down after the test."""
    import threading

    from .archive_server import ArchiveServer, build_archive

    server = ArchiveServer(build_archive())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()
