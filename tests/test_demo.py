"""The web demo: ``pix2pix serve`` as a real server (gradio_client, headless Chromium), build_demo, write_space."""

from __future__ import annotations

import os
import runpy
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_lib import UNetGenerator
from pix2pix_lib.cli import main
from pix2pix_lib.data.image_io import read_image
from pix2pix_lib.inference import translate
from pix2pix_lib.models import TaskMetadata
from pix2pix_lib.pretrained import load_pretrained

gr = pytest.importorskip("gradio", reason='the demo tests need gradio: pip install "pix2pix_lib[demo]"')
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from pix2pix_lib import demo  # noqa: E402

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))), None
)
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a headless Chromium on PATH (Debian: apt-get install -y chromium); .ci/run installs it",
)
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TASK = TaskMetadata(
    direction="AtoB", input_domain="satellite photo", output_domain="street map", image_size=64,
    trained_on="synthetic test pairs", license="MIT",
)  # fmt: skip


def _small_model() -> UNetGenerator:
    torch.manual_seed(1)
    model = UNetGenerator(num_downs=5, base_channels=8)
    model.task = TASK
    return model.eval()


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo-model") / "model"
    _small_model().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training run (what ``pix2pix train`` leaves), served by ``--model RUN``."""
    from pix2pix_lib import PatchDiscriminator
    from pix2pix_lib.training import Pix2PixTrainer, TrainConfig

    run = tmp_path_factory.mktemp("demo-run") / "run"
    config = TrainConfig(out_dir=str(run), precision="fp32", progress_bar=False, tensorboard=False)
    trainer = Pix2PixTrainer(_small_model(), PatchDiscriminator(base_channels=4, n_layers=1), config, device="cpu", task=TASK)
    trainer.save_checkpoint()
    return run


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says width x height, followed by a few bytes of garbage image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"garbage") + chunk(b"IEND", b""))
    return path


def _rgba_image(path: Path, width: int = 56, height: int = 40) -> Path:
    """An RGBA PNG with a transparent band: decoders that do not composite on white give other pixels."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    pixels[:, : width // 3, 3] = 0
    Image.fromarray(pixels, mode="RGBA").save(path)
    return path


# --- uploads and the page's text (no server) ----------------------------------------------------------
def test_uploads_are_checked_from_the_header_before_decoding(tmp_path: Path) -> None:
    big = _png_header_only(tmp_path / "big.png", 3000, 3000)  # its pixel data is garbage: decoding would fail
    with pytest.raises(ValueError, match=r"big\.png: the image is 3000x3000 = 9,000,000 pixels; the limit is max_pixels=4,194,304"):
        demo.check_upload(big)
    huge = _png_header_only(tmp_path / "huge.png", 20000, 20000)  # over Pillow's own bomb limit too
    with pytest.raises(ValueError, match=r"huge\.png: the image has 400,000,000 pixels; the limit is max_pixels=1,000"):
        demo.check_upload(huge, max_pixels=1000)
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")
    with pytest.raises(ValueError, match=r"dot\.png: the image is 1x1; both sides must be at least 8 pixels"):
        demo.check_upload(tmp_path / "dot.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png: not an image file"):
        demo.check_upload(tmp_path / "notes.png")
    with pytest.raises(ValueError, match=r"small\.png: corrupt or truncated"):
        demo.check_upload(_png_header_only(tmp_path / "small.png", 16, 16))
    # A good file decodes exactly as read_image does (alpha on white, 16-bit scaled).
    rgba = _rgba_image(tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(demo.check_upload(rgba)), np.asarray(read_image(rgba)))
    Image.fromarray(np.full((12, 12), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(demo.check_upload(tmp_path / "deep.png")).min() == 255


def test_task_text_names_the_domains_or_says_not_recorded() -> None:
    text = demo.describe_task(TASK, "owner/maps")
    for expected in ("satellite photo", "street map", "AtoB", "synthetic test pairs", "MIT", "owner/maps"):
        assert expected in text
    assert "not recorded" in text  # recommended_norm_mode is None
    unknown = demo.describe_task(None)
    assert "not recorded" in unknown and unknown.count("not recorded") >= 6
    hostile = demo.describe_task(TaskMetadata(input_domain="<script>x</script> | row", output_domain="map"))
    assert "<script>" not in hostile and "\\| row" in hostile


def test_bundled_examples_are_images() -> None:
    examples = demo.example_images()
    assert len(examples) == 2
    assert all(read_image(path).size == (128, 128) for path in examples)


def _function(blocks: gr.Blocks, api_name: str | None = None, name: str | None = None):
    return next(f.fn for f in blocks.fns.values() if f.api_name == api_name or getattr(f.fn, "__name__", "") == name)


def _page_text(blocks: gr.Blocks) -> str:
    return " ".join(block.value for block in blocks.blocks.values() if isinstance(block, gr.Markdown))


def test_importing_the_demo_module_does_not_import_gradio() -> None:
    code = "import sys, pix2pix_lib, pix2pix_lib.demo; assert 'gradio' not in sys.modules, 'gradio imported eagerly'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_build_demo_shows_the_task_and_enforces_the_limit(tmp_path: Path) -> None:
    model = _small_model()
    blocks = demo.build_demo(model, max_pixels=32 * 32)
    assert isinstance(blocks, gr.Blocks)
    assert "satellite photo" in _page_text(blocks) and "street map" in _page_text(blocks)
    run, preview = _function(blocks, api_name="translate"), _function(blocks, name="preview")
    Image.new("RGB", (40, 40), "red").save(tmp_path / "large.png")
    with pytest.raises(gr.Error, match=r"large\.png: the image is 40x40 = 1,600 pixels; the limit is max_pixels=1,024"):
        run(str(tmp_path / "large.png"), "native", "per_image")
    with pytest.raises(gr.Error, match=r"large\.png: the image is 40x40"):
        preview(str(tmp_path / "large.png"))  # the upload's preview says so at once
    with pytest.raises(gr.Error, match="size_mode='huge' is not supported"):
        run(str(tmp_path / "large.png"), "huge", "per_image")
    with pytest.raises(gr.Error, match="upload an image first"):
        run(None, "native", "per_image")
    rgba = _rgba_image(tmp_path / "rgba.png", 24, 20)
    assert np.array_equal(np.asarray(preview(str(rgba))), np.asarray(read_image(rgba)))
    result = run(str(rgba), "native", "running")
    expected = translate(read_image(rgba), model, size="native", norm_mode="running")
    assert np.abs(np.asarray(result, dtype=int) - np.asarray(expected, dtype=int)).max() <= 1

    assert "not recorded" in _page_text(demo.build_demo(UNetGenerator(num_downs=5, base_channels=8)))
    with pytest.raises(ValueError, match="max_pixels"):
        demo.build_demo(model, max_pixels=0)


def test_a_multiband_model_is_refused_at_startup_naming_its_channels(tmp_path: Path, capsys) -> None:
    four_band = UNetGenerator(in_channels=4, out_channels=4, num_downs=5, base_channels=8)
    with pytest.raises(ValueError, match=r"4-channel input and gives 4-channel output.*1-channel \(gray\) and 3-channel"):
        demo.build_demo(four_band)
    four_band.save_pretrained(tmp_path / "four-band")
    assert main(["serve", "--model", str(tmp_path / "four-band")]) == 1
    err = capsys.readouterr().err
    assert "4-channel input" in err and "pix2pix translate" in err and err.count("\n") == 1
    gray_to_rgb = UNetGenerator(in_channels=1, out_channels=3, num_downs=5, base_channels=8)
    assert isinstance(demo.build_demo(gray_to_rgb), gr.Blocks)  # 1 and 3 channels still work


def test_a_saved_folder_is_named_without_its_server_path(saved_model: Path) -> None:
    text = _page_text(demo.build_demo(saved_model))
    assert "`model`" in text and str(saved_model.parent) not in text and "street map" in text


def test_without_gradio_the_error_names_the_extra(monkeypatch, saved_model: Path, capsys) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails
    with pytest.raises(ImportError, match=r'pip install "pix2pix_lib\[demo\]"'):
        demo.build_demo(saved_model)
    assert main(["serve", "--model", str(saved_model)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "pix2pix_lib[demo]"' in err and "Traceback" not in err


def test_serve_reports_a_model_that_does_not_load(tmp_path: Path, capsys) -> None:
    assert main(["serve", "--model", str(tmp_path / "missing-folder")]) == 1
    err = capsys.readouterr().err
    assert "--model" in err and "missing-folder" in err and err.count("\n") == 1


# --- Spaces and the example script ----------------------------------------------------------------------
def test_write_space_writes_a_runnable_app(tmp_path: Path, capsys) -> None:
    folder = demo.write_space(tmp_path / "space", "owner/facades-pix2pix", title='My "demo"')
    app = (folder / "app.py").read_text(encoding="utf-8")
    code = compile(app, "app.py", "exec")
    assert "build_demo" in code.co_names and "'owner/facades-pix2pix'" in app and "launch" in app
    readme = (folder / "README.md").read_text(encoding="utf-8")
    header = readme.split("---")[1]
    assert "sdk: gradio" in header and "app_file: app.py" in header and '"owner/facades-pix2pix"' in header
    assert '"My \\"demo\\""' in header
    assert (folder / "requirements.txt").read_text().startswith("pix2pix_lib[demo]>=")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "app.py", "requirements.txt"]  # no temp files
    with pytest.raises(ValueError, match="cannot read local files"):
        demo.write_space(tmp_path / "bad", str(tmp_path / "model"))

    assert main(["serve", "--model", "maps", "--write-space", str(tmp_path / "cli-space")]) == 0
    assert "build_demo('maps'" in (tmp_path / "cli-space" / "app.py").read_text()
    assert main(["serve", "--model", "./here", "--write-space", str(tmp_path / "x")]) == 1
    assert "pix2pix serve: error: write_space:" in capsys.readouterr().err


def test_example_script_builds_the_demo(capsys) -> None:
    example = runpy.run_path(str(EXAMPLES / "serve_demo.py"), run_name="example")
    assert example["main"](["--check"]) == 0
    assert "built the demo for" in capsys.readouterr().out


# --- the real server ----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(run_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m pix2pix_lib serve --model RUN`` on a free loopback port; yields its URL, stops it afterwards."""
    port = _free_port()
    work = tmp_path_factory.mktemp("demo-server")
    env = {
        **os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(work / "gradio"),
        "HF_HUB_OFFLINE": "1", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        "OMP_NUM_THREADS": "1",
    }  # fmt: skip
    log = open(work / "server.log", "w+b")  # noqa: SIM115 -- closed in the finally below
    command = [sys.executable, "-m", "pix2pix_lib", "serve", "--model", str(run_folder), "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"pix2pix serve exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail("pix2pix serve did not answer within 60 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_gradio_client_gets_the_pixels_translate_gives(server: str, run_folder: Path, tmp_path: Path) -> None:
    client = Client(server, verbose=False, download_files=str(tmp_path / "downloads"))
    model = load_pretrained(run_folder, device="cpu")
    assert model.task == TASK
    image = _rgba_image(tmp_path / "in.png")
    for size_mode, norm_mode in (("native", "per_image"), ("resize", "running")):
        result = client.predict(handle_file(str(image)), size_mode, norm_mode, api_name="/translate")
        expected = translate(read_image(image), model, size=size_mode, norm_mode=norm_mode)
        got = np.asarray(Image.open(result).convert("RGB"), dtype=int)
        assert got.shape == np.asarray(expected).shape == (40, 56, 3)
        assert np.abs(got - np.asarray(expected, dtype=int)).max() <= 1, (size_mode, norm_mode)

    (tmp_path / "notes.png").write_text("these are notes, not pixels")
    with pytest.raises(AppError, match=r"notes\.png: not an image file"):
        client.predict(handle_file(str(tmp_path / "notes.png")), "native", "per_image", api_name="/translate")
    (tmp_path / "notes.txt").write_text("not an image either")
    with pytest.raises(AppError, match="Invalid file type"):
        client.predict(handle_file(str(tmp_path / "notes.txt")), "native", "per_image", api_name="/translate")
    with pytest.raises(AppError, match="max_pixels=4,194,304"):
        client.predict(handle_file(str(_png_header_only(tmp_path / "big.png", 4000, 4000))), "tile", "paper", api_name="/translate")
    # The server survived the bad requests.
    again = client.predict(handle_file(str(image)), "native", "per_image", api_name="/translate")
    assert np.asarray(Image.open(again)).shape == (40, 56, 3)


def _chromium(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # the page may not reach the internet
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,900",
        "--virtual-time-budget=15000", *args, url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


@pytest.mark.browser
@requires_chromium
def test_the_page_renders_in_chromium(server: str, tmp_path: Path) -> None:
    shot = tmp_path / "page.png"
    _chromium(server, tmp_path, f"--screenshot={shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert pixels.shape[:2] == (900, 1280) and len(colours) > 50, f"looks blank: {len(colours)} colours"
    dom = _chromium(server, tmp_path, "--dump-dom").stdout
    for expected in ("satellite photo", "street map", "Translate", "Size mode", "Norm mode", "per_image"):
        assert expected in dom, expected
