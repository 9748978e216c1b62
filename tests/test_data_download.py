"""download_dataset against a loopback HTTP server serving a small archive the test builds (no network)."""

from __future__ import annotations

import hashlib
import socket
import warnings

import pytest

from pix2pix_lib.data import DatasetDownloadError, PairedImageDataset, download_dataset
from pix2pix_lib.data import download as download_module
from .archive_server import build_archive, download, leftovers
from pix2pix_lib.data.download import DATASET_NAMES, DatasetInfo, InsecureDownloadWarning, UnverifiedDownloadWarning

# Most tests download without a known hash; the warning that causes is tested on its own below.
pytestmark = pytest.mark.filterwarnings("ignore::pix2pix_lib.data.download.UnverifiedDownloadWarning")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    ("archive", "pattern"),
    [
        (b"not a gzip file at all", r"could not extract the archive .*facades\.tar\.gz .*not a valid \.tar\.gz"),
        (
            build_archive({"facades/train/1.jpg": b"x", "../escape.txt": b"evil"}),
            r"refused to extract the archive .*facades\.tar\.gz: member '\.\./escape\.txt' has a '\.\.' in its path",
        ),
    ],
    ids=["corrupt", "path-traversal"],
)
def test_bad_archive_is_rejected_and_nothing_extracted(tmp_path, server, archive, pattern):
    server.archive = archive
    root = tmp_path / "root"
    with pytest.raises(DatasetDownloadError, match=pattern):
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


# --- integrity: SHA-256 ---------------------------------------------------------------------------
def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_correct_hash_extracts_without_a_warning(tmp_path, server):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither unverified nor insecure
        path = download(tmp_path, server, sha256=sha256_of(server.archive).upper())  # case does not matter
    assert leftovers(tmp_path) == ["facades"]
    assert len(PairedImageDataset(path / "train")) == 3


def test_wrong_hash_deletes_the_download_and_extracts_nothing(tmp_path, server):
    wrong = "ab" * 32
    pattern = rf"SHA-256 mismatch for {server.base_url}/facades\.tar\.gz: expected {wrong}, got {sha256_of(server.archive)}"
    with pytest.raises(DatasetDownloadError, match=pattern):
        download(tmp_path, server, sha256=wrong)
    assert leftovers(tmp_path) == []  # no .part, no staging folder, no facades/


def test_malformed_hash_is_refused_before_any_request(tmp_path, server):
    with pytest.raises(ValueError, match="not a SHA-256 hex digest"):
        download(tmp_path, server, sha256="1234")
    assert server.requests == [] and leftovers(tmp_path) == []


def pin(monkeypatch, sha256: str | None, size: int | None = None) -> None:
    """Put a facades entry with this hash and size into the registry (for this test only)."""
    monkeypatch.setitem(download_module.DATASETS, "facades", DatasetInfo("facades", "facades.tar.gz", sha256, size))


def test_registry_hash_is_used_and_the_argument_wins(tmp_path, server, monkeypatch):
    pin(monkeypatch, "cd" * 32)
    with pytest.raises(DatasetDownloadError, match=f"expected {'cd' * 32}"):
        download(tmp_path / "a", server)
    assert leftovers(tmp_path / "a") == []
    pin(monkeypatch, sha256_of(server.archive))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnverifiedDownloadWarning)
        assert download(tmp_path / "b", server).is_dir()
    pin(monkeypatch, "cd" * 32)
    assert download(tmp_path / "c", server, sha256=sha256_of(server.archive)).is_dir()


def test_unknown_hash_warns_once_with_the_computed_digest(tmp_path, server, monkeypatch):
    pin(monkeypatch, None)  # as long as the real hashes are unknown, this is the registry's state
    digest = sha256_of(server.archive)
    with pytest.warns(UnverifiedDownloadWarning, match=rf'extracted WITHOUT verification.*sha256="{digest}"') as record:
        download(tmp_path, server)
    assert len([w for w in record if w.category is UnverifiedDownloadWarning]) == 1


def test_resume_hashes_the_whole_file(tmp_path, server):
    half, good = len(server.archive) // 2, sha256_of(server.archive)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / ".facades.tar.gz.part").write_bytes(server.archive[:half])
    assert download(tmp_path / "a", server, sha256=good).is_dir()
    # A partial file that is not the archive's prefix: only the whole resumed file's hash can tell.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / ".facades.tar.gz.part").write_bytes(bytes(half))
    with pytest.raises(DatasetDownloadError, match=f"SHA-256 mismatch.*expected {good}"):
        download(tmp_path / "b", server, sha256=good)
    assert leftovers(tmp_path / "b") == []
    assert server.range_headers == [f"bytes={half}-", f"bytes={half}-"]  # both resumed, never refetched


# --- a complete .part file (killed between download and extraction) --------------------------------
@pytest.mark.parametrize("content_range", [True, False], ids=["416-content-range", "416-then-HEAD"])
def test_complete_part_file_is_not_downloaded_again(tmp_path, server, content_range):
    server.content_range_on_416 = content_range
    size = len(server.archive)
    (tmp_path / ".facades.tar.gz.part").write_bytes(server.archive)
    path = download(tmp_path, server, sha256=sha256_of(server.archive))
    assert len(PairedImageDataset(path / "train")) == 3 and leftovers(tmp_path) == ["facades"]
    assert server.requests == [("GET", f"bytes={size}-")] + ([] if content_range else [("HEAD", None)])


def test_part_file_longer_than_the_archive_is_refetched(tmp_path, server):
    size = len(server.archive)
    (tmp_path / ".facades.tar.gz.part").write_bytes(server.archive + b"junk")
    assert download(tmp_path, server, sha256=sha256_of(server.archive)).is_dir()
    assert server.requests == [("GET", f"bytes={size + 4}-"), ("GET", None)]


def test_complete_part_file_of_known_size_needs_no_network(tmp_path, server, monkeypatch):
    pin(monkeypatch, sha256_of(server.archive), size=len(server.archive))
    (tmp_path / ".facades.tar.gz.part").write_bytes(server.archive)
    path = download_dataset("facades", tmp_path, base_url=f"http://127.0.0.1:{unused_port()}", progress=False)
    assert len(PairedImageDataset(path / "train")) == 3 and leftovers(tmp_path) == ["facades"]


# --- https only; http fallback for the default server only when allowed ------------------------------
@pytest.fixture
def default_server_is(monkeypatch, server):
    """Point DEFAULT_BASE_URL at ``https://`` on the loopback server's plain-HTTP port (TLS fails there)."""
    monkeypatch.delenv("PIX2PIX_DATASETS_URL", raising=False)
    https_url = server.base_url.replace("http://", "https://")
    monkeypatch.setattr(download_module, "DEFAULT_BASE_URL", https_url)
    return https_url


def test_default_server_never_falls_back_to_http_unless_allowed(tmp_path, server, default_server_is):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureDownloadWarning)
        with pytest.raises(
            DatasetDownloadError,
            match=rf"cannot reach {default_server_is}/facades\.tar\.gz .*NOT retried over plain HTTP.*"
            r"allow_insecure_http=True \(CLI: --allow-http\)",
        ):
            download_dataset("facades", tmp_path, progress=False, retries=0)
    assert server.requests == [("TLS", None)]  # no plain-HTTP request at all
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("known_hash", [False, True])
def test_default_server_falls_back_to_http_when_allowed_with_a_warning(tmp_path, server, default_server_is, known_hash):
    url = f"{server.base_url}/facades.tar.gz"
    sha256 = sha256_of(server.archive) if known_hash else None
    check = "checked against its known SHA-256" if known_hash else "NOT verified"
    with pytest.warns(InsecureDownloadWarning, match=rf"over HTTPS .*UNENCRYPTED {url} as allow_insecure_http=True.*{check}"):
        path = download_dataset("facades", tmp_path, sha256=sha256, progress=False, retries=0, allow_insecure_http=True)
    assert len(PairedImageDataset(path / "train")) == 3
    assert server.requests == [("TLS", None), ("GET", None)]


def test_fallback_still_verifies_the_hash(tmp_path, server, default_server_is):
    with pytest.warns(InsecureDownloadWarning), pytest.raises(DatasetDownloadError, match="SHA-256 mismatch"):
        download_dataset("facades", tmp_path, sha256="ef" * 32, progress=False, retries=0, allow_insecure_http=True)
    assert leftovers(tmp_path) == []  # the unencrypted, wrong archive was deleted, nothing extracted


def test_user_base_url_is_used_as_given(tmp_path, server, default_server_is, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("error", InsecureDownloadWarning)
        assert download(tmp_path / "http", server).is_dir()  # plain http to a loopback mirror: no warning
        monkeypatch.setenv("PIX2PIX_DATASETS_URL", server.base_url)
        assert download_dataset("facades", tmp_path / "env", progress=False).is_dir()
        # A user's https URL that fails is an error, not a downgrade, even with allow_insecure_http.
        with pytest.raises(DatasetDownloadError, match=rf"cannot reach {default_server_is}/facades\.tar\.gz"):
            download_dataset(
                "facades", tmp_path / "https", base_url=default_server_is, progress=False, retries=0,
                allow_insecure_http=True,
            )  # fmt: skip
    assert server.requests == [("GET", None), ("GET", None), ("TLS", None)]
    assert not (tmp_path / "https" / "facades").exists()


def test_cli_allow_http(tmp_path, server, default_server_is, capsys):
    from pix2pix_lib.cli import main

    assert main(["download", "facades", "--root", str(tmp_path / "a"), "--no-progress"]) == 1
    assert "NOT retried over plain HTTP" in capsys.readouterr().err and leftovers(tmp_path / "a") == []
    assert main(["download", "facades", "--root", str(tmp_path / "b"), "--no-progress", "--allow-http"]) == 0
    err = capsys.readouterr().err
    assert f"warning: cannot connect to {default_server_is}/facades.tar.gz over HTTPS" in err and "UNENCRYPTED" in err
    assert server.requests == [("TLS", None), ("TLS", None), ("GET", None)]


def test_cli_download_checks_the_hash(tmp_path, server, capsys):
    from pix2pix_lib.cli import main

    common = ["--base-url", server.base_url, "--no-progress"]
    assert main(["download", "facades", "--root", str(tmp_path / "bad"), "--sha256", "12" * 32, *common]) == 1
    assert f"SHA-256 mismatch for {server.base_url}/facades.tar.gz" in capsys.readouterr().err
    assert main(["download", "facades", "--root", str(tmp_path / "x"), "--sha256", "xyz", *common]) == 1
    assert "not a SHA-256 hex digest" in capsys.readouterr().err
    good = sha256_of(server.archive)
    assert main(["download", "facades", "--root", str(tmp_path / "ok"), "--sha256", good, *common]) == 0
    assert "warning" not in capsys.readouterr().err


def test_cli_prints_the_hash_to_pin(tmp_path, server, capsys):
    from pix2pix_lib.cli import main

    with warnings.catch_warnings():
        warnings.simplefilter("default", UnverifiedDownloadWarning)  # undo this module's "ignore"
        assert main(["download", "facades", "--root", str(tmp_path), "--base-url", server.base_url, "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: the archive") and f"--sha256 {sha256_of(server.archive)}" in err


def test_registry_entries_are_well_formed():
    assert tuple(download_module.DATASETS) == DATASET_NAMES
    for name, info in download_module.DATASETS.items():
        assert info.name == name and info.archive == f"{name}.tar.gz" and info.description
        assert info.sha256 is None or (len(info.sha256) == 64 and set(info.sha256) <= set("0123456789abcdef"))
        assert info.size is None or info.size > 0
