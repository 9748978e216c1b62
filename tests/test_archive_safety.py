"""Hostile archives and servers against download_dataset: nothing may be written outside the dataset root.

Each crafted ``.tar.gz`` is served by the loopback server of ``test_data_download`` to ``root = tmp_path/root``;
``tmp_path/victim.txt`` sits beside it. Every test checks that the download fails with a
``DatasetDownloadError`` naming the archive and the member, that ``victim.txt`` is unchanged and nothing
else appeared next to ``root``, and that ``root`` holds no dataset, staging folder or partial file.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import tarfile
import urllib.request
import warnings

import pytest

from pix2pix_lib.data import DatasetDownloadError, PairedImageDataset
from pix2pix_lib.data import download as download_module
from pix2pix_lib.data._archive import UnsafeArchiveError, member_path
from pix2pix_lib.data.download import InsecureDownloadWarning
from pix2pix_lib.data._fetch import _RedirectHandler
from .archive_server import build_archive, download, leftovers

pytestmark = pytest.mark.filterwarnings("ignore::pix2pix_lib.data.download.UnverifiedDownloadWarning")

VICTIM = b"the victim's own content\n"


# --- building hostile archives -----------------------------------------------------------------------
def member(name: str, kind: bytes = tarfile.REGTYPE, *, data: bytes = b"", linkname: str = "", mode: int = 0o644):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size = kind, linkname, mode, len(data)
    return info, data


def tar_gz(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def symlink_chain_escape() -> bytes:
    """CVE-2025-4517: symlinks nested past PATH_MAX, so ``os.path.realpath`` stops resolving them and the
    ``"data"`` filter of an unpatched Python (3.11.7 here) takes ``escape`` for a link inside the folder.

    ``a/b/.../p`` resolves to 16 nested 247-character folders; ``a/.../p/lll...`` climbs back 16 levels to
    the extraction folder ``root/.facades.extract-*``; ``escape`` goes two more up, to ``tmp_path``. Then a
    hard link to ``escape/victim.txt`` is overwritten, and ``escape/pwned.txt`` is written.
    """
    component, steps = "d" * 247, "abcdefghijklmnop"
    members, path = [], ""
    for step in steps:
        members.append(member(posixpath.join(path, component), tarfile.DIRTYPE, mode=0o755))
        members.append(member(posixpath.join(path, step), tarfile.SYMTYPE, linkname=component))
        path = posixpath.join(path, component)
    long_link = posixpath.join(*steps, "l" * 254)
    members.append(member(long_link, tarfile.SYMTYPE, linkname=posixpath.join(*[".."] * len(steps))))
    members.append(member("escape", tarfile.SYMTYPE, linkname=long_link + "/../.."))
    members.append(member("victim-link", tarfile.LNKTYPE, linkname="escape/victim.txt"))
    members.append(member("victim-link", data=b"OVERWRITTEN through a hard link\n"))
    members.append(member("escape/pwned.txt", data=b"pwned\n"))
    return tar_gz(*members)


def hostile_archives(tmp_path) -> dict[str, tuple[bytes, str]]:
    """id -> (archive, the start of the refusal message naming the member, as text)."""
    image = member("facades/train/1.jpg", data=b"x")
    absolute = str(tmp_path / "pwned.txt")
    return {
        "symlink-chain-CVE-2025-4517": (symlink_chain_escape(), "member 'a' is a symbolic link"),
        "hard-link-outside": (
            tar_gz(image, member("facades/v", tarfile.LNKTYPE, linkname="../victim.txt"), member("facades/v", data=b"X")),
            "member 'facades/v' is a hard link (to '../victim.txt')",
        ),
        "symlink-outside-then-file-through-it": (
            tar_gz(member("facades/out", tarfile.SYMTYPE, linkname="../.."), member("facades/out/pwned.txt", data=b"X")),
            "member 'facades/out' is a symbolic link (to '../..')",
        ),
        "absolute-path": (tar_gz(image, member(absolute, data=b"X")), f"member '{absolute}' has an absolute path"),
        "dot-dot": (tar_gz(image, member("../pwned.txt", data=b"X")), "member '../pwned.txt' has a '..' in its path"),
        "dot-dot-inside": (
            tar_gz(member("facades/../../pwned.txt", data=b"X")),
            "member 'facades/../../pwned.txt' has a '..' in its path",
        ),
        "backslash": (tar_gz(member("..\\pwned.txt", data=b"X")), "member '..\\\\pwned.txt' has a control character"),
        "drive-letter": (tar_gz(member("C:/pwned.txt", data=b"X")), "member 'C:/pwned.txt' has a control character"),
        "device": (tar_gz(image, member("facades/null", tarfile.CHRTYPE)), "member 'facades/null' is a device file"),
        "fifo": (tar_gz(image, member("facades/pipe", tarfile.FIFOTYPE)), "member 'facades/pipe' is a FIFO"),
        # Links that stay inside are refused too: the datasets have none, so no link is ever created.
        "symlink-inside": (
            tar_gz(image, member("facades/train/2.jpg", tarfile.SYMTYPE, linkname="1.jpg")),
            "member 'facades/train/2.jpg' is a symbolic link (to '1.jpg')",
        ),
        "hard-link-inside": (
            tar_gz(image, member("facades/train/2.jpg", tarfile.LNKTYPE, linkname="facades/train/1.jpg")),
            "member 'facades/train/2.jpg' is a hard link",
        ),
        # A second member of the same name would overwrite the first (or write through a link to it).
        "duplicate": (
            tar_gz(image, member("facades/train/1.jpg", data=b"y")),
            "member 'facades/train/1.jpg' is in the archive twice",
        ),
    }


HOSTILE_IDS = [
    "symlink-chain-CVE-2025-4517", "hard-link-outside", "symlink-outside-then-file-through-it", "absolute-path",
    "dot-dot", "dot-dot-inside", "backslash", "drive-letter", "device", "fifo", "symlink-inside", "hard-link-inside",
    "duplicate",
]  # fmt: skip


@pytest.fixture
def victim(tmp_path):
    """``tmp_path/victim.txt`` beside the dataset root; the test asserts it is untouched and alone."""
    (tmp_path / "victim.txt").write_bytes(VICTIM)
    yield tmp_path / "victim.txt"
    assert (tmp_path / "victim.txt").read_bytes() == VICTIM, "a file outside the dataset root was overwritten"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["root", "victim.txt"], "a file appeared outside the root"
    assert not any(path.name == "pwned.txt" for path in tmp_path.rglob("*"))


def refused(tmp_path, server, archive: bytes, pattern: str, **kwargs) -> None:  # noqa: F811 - server fixture value
    server.archive = archive
    root = tmp_path / "root"
    with pytest.raises(DatasetDownloadError, match=pattern):
        download(root, server, retries=0, **kwargs)
    assert leftovers(root) == []  # no dataset, no staging folder, no partial file


# --- links, special members and paths ----------------------------------------------------------------
@pytest.mark.parametrize("case", HOSTILE_IDS)
def test_hostile_archive_is_refused_and_nothing_leaves_the_root(tmp_path, server, victim, case):  # noqa: F811
    archive, message = hostile_archives(tmp_path)[case]
    refused(tmp_path, server, archive, re.escape(f"refused to extract the archive {server.base_url}/facades.tar.gz: {message}"))


def test_the_cve_archive_escapes_tarfiles_own_data_filter_here(tmp_path):
    """Documents why the library does not use ``extractall(filter="data")``: on this Python it is bypassed.

    Skipped on a Python with the CVE-2025-4517 fix, where the filter refuses the archive.
    """
    (tmp_path / "victim.txt").write_bytes(VICTIM)
    folder = tmp_path / "root" / "extract"
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(symlink_chain_escape()), mode="r:gz") as tar:
        try:
            tar.extractall(folder, filter="data")
        except (tarfile.TarError, OSError):
            pytest.skip("this Python's tarfile refuses the CVE-2025-4517 archive")
    assert (tmp_path / "pwned.txt").exists() and (tmp_path / "victim.txt").read_bytes() != VICTIM


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x", "a/../../x", "a/..", "..\\x", "a\\b", "C:x", "C:/x", "c:\\x", "a\x00b", "a\nb", "a:b"],
)
def test_member_path_refuses_names_that_could_leave_the_folder(name):
    with pytest.raises(UnsafeArchiveError, match="member"):
        member_path(name)


@pytest.mark.parametrize(
    ("name", "expected"), [("facades/train/1.jpg", "facades/train/1.jpg"), ("./facades//a.jpg", "facades/a.jpg"), (".", ".")]
)
def test_member_path_normalises_harmless_names(name, expected):
    assert str(member_path(name)) == expected


def test_dot_prefixed_archive_and_modes(tmp_path, server):  # noqa: F811
    """``tar -C dir .`` archives (``./`` names, a ``.`` member) extract; setuid/setgid and o+w bits are dropped."""
    server.archive = tar_gz(
        member(".", tarfile.DIRTYPE, mode=0o777),
        member("./facades/", tarfile.DIRTYPE, mode=0o755),
        *(member(f"./facades/train/{i}.jpg", data=build_image(), mode=0o6777) for i in (1, 2)),
    )
    path = download(tmp_path, server)
    assert len(PairedImageDataset(path / "train")) == 2 and leftovers(tmp_path) == ["facades"]
    mode = stat.S_IMODE(os.stat(path / "train" / "1.jpg").st_mode)
    assert mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWOTH) == 0 and mode & stat.S_IRUSR


def build_image() -> bytes:
    with tarfile.open(fileobj=io.BytesIO(build_archive()), mode="r:gz") as tar:
        return tar.extractfile("facades/train/1.jpg").read()


# --- size limits ---------------------------------------------------------------------------------------
def bomb(size: int = 4 << 20) -> bytes:
    """A few KB that extract to ``size`` bytes of zeros."""
    return tar_gz(member("facades/train/1.jpg", data=build_image()), member("facades/train/zeros.jpg", data=bytes(size)))


def test_decompression_bomb_is_refused_by_default(tmp_path, server, victim):  # noqa: F811
    archive = bomb()
    assert len(archive) * download_module.MAX_EXPANSION_RATIO < 4 << 20  # the default bound is the ratio here
    refused(
        tmp_path, server, archive,
        r"member 'facades/train/zeros\.jpg' \(4,194,304 bytes\) takes the extracted files past [\d,]+ bytes.*"
        r"raise max_extracted_bytes= \(CLI: --max-extracted-gb\)",
    )  # fmt: skip


def test_extracted_size_limit_can_be_lowered_and_raised(tmp_path, server, victim):  # noqa: F811
    refused(tmp_path, server, build_archive(), r"takes the extracted files past 100 bytes", max_extracted_bytes=100)
    server.archive = bomb()
    path = download(tmp_path / "root", server, max_extracted_bytes=8 << 20)
    assert (path / "train" / "zeros.jpg").stat().st_size == 4 << 20


def test_member_count_is_bounded(tmp_path, server, victim, monkeypatch):  # noqa: F811
    monkeypatch.setattr(download_module, "MAX_ARCHIVE_MEMBERS", 3)
    refused(tmp_path, server, build_archive(), r"it holds more than 3 members \(at 'facades/test/1\.jpg'\)")


def test_limits_must_be_positive(tmp_path, server):  # noqa: F811
    for option in ("max_download_bytes", "max_extracted_bytes"):
        with pytest.raises(ValueError, match=rf"{option}=0 must be a positive number of bytes"):
            download(tmp_path, server, **{option: 0})
    assert server.requests == []


@pytest.mark.parametrize("content_length", [False, True], ids=["no-content-length", "content-length"])
def test_download_size_is_bounded(tmp_path, server, victim, content_length):  # noqa: F811
    server.content_length = content_length
    pattern = (
        r"sent more than max_download_bytes=1,000 bytes.*the partial file was deleted"
        if not content_length
        else rf"is {len(server.archive):,} bytes, more than max_download_bytes=1,000; nothing more was downloaded"
    )
    refused(tmp_path, server, server.archive, pattern + r".*--max-download-gb", max_download_bytes=1000)


def test_body_without_content_length_within_the_limit_is_fine(tmp_path, server):  # noqa: F811
    server.content_length = False
    assert len(PairedImageDataset(download(tmp_path, server) / "train")) == 3


# --- plain HTTP -----------------------------------------------------------------------------------------
def test_plain_http_to_another_machine_warns(tmp_path, server, monkeypatch):  # noqa: F811
    monkeypatch.setattr(download_module, "is_loopback", lambda url: False)  # as if the server were elsewhere
    with pytest.warns(InsecureDownloadWarning, match=r"facades\.tar\.gz is plain HTTP: .*unencrypted.*NOT verified"):
        assert download(tmp_path, server).is_dir()


@pytest.mark.parametrize("new_url", ["http://mirror.invalid/facades.tar.gz", "ftp://mirror.invalid/facades.tar.gz"])
def test_https_redirect_to_another_scheme_is_refused_unless_allowed(new_url):
    request = urllib.request.Request("https://server.invalid/facades.tar.gz")
    with pytest.raises(DatasetDownloadError, match=r"redirects to .* which is not HTTPS; refused.*--allow-http"):
        _RedirectHandler(allow_http=False).redirect_request(request, None, 302, "Found", {}, new_url)
    with pytest.warns(InsecureDownloadWarning, match="redirects to UNENCRYPTED"):
        assert _RedirectHandler(allow_http=True).redirect_request(request, None, 302, "Found", {}, new_url) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        https = "https://mirror.invalid/facades.tar.gz"
        assert _RedirectHandler(allow_http=False).redirect_request(request, None, 302, "Found", {}, https).full_url == https


# --- the CLI ------------------------------------------------------------------------------------------
def test_cli_limits(tmp_path, server, capsys):  # noqa: F811
    from pix2pix_lib.cli import main

    server.archive = bomb()
    common = ["download", "facades", "--base-url", server.base_url, "--no-progress"]
    assert main([*common, "--root", str(tmp_path / "a")]) == 1
    assert "raise max_extracted_bytes= (CLI: --max-extracted-gb)" in capsys.readouterr().err
    assert main([*common, "--root", str(tmp_path / "b"), "--max-extracted-gb", "0.01"]) == 0
    assert main([*common, "--root", str(tmp_path / "c"), "--max-download-gb", "0.000001"]) == 1
    assert "more than max_download_bytes=1,073" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*common, "--root", str(tmp_path / "d"), "--max-extracted-gb", "-1"])
    assert "not a positive number of GiB" in capsys.readouterr().err
