"""The real-or-fake study page: trial selection, a self-contained page, and a scripted run in Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix_lib.cli import main
from pix2pix_lib.evaluation import build_study_trials, render_study_page, write_study_page
from pix2pix_lib.evaluation.embedding import json_for_script

from .helpers import dump_dom, requires_chromium


def _images(folder: Path, count: int, suffix: str, seed: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(folder / f"img{index:02d}{suffix}")
    return folder


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    return _images(tmp_path / "real", 5, ".png", 0), _images(tmp_path / "fake", 6, ".jpg", 1)


def test_trials_are_seeded_balanced_and_shuffled(folders: tuple[Path, Path]) -> None:
    real, fake = folders
    everything = build_study_trials(real, fake)
    assert sorted(t.kind for t in everything) == ["fake"] * 6 + ["real"] * 5
    assert {t.path.parent for t in everything if t.kind == "real"} == {real}
    assert build_study_trials(real, fake, seed=3) == build_study_trials(real, fake, seed=3)
    orders = {tuple(t.path.name + t.kind for t in build_study_trials(real, fake, seed=s)) for s in range(5)}
    assert len(orders) > 1
    some = build_study_trials(real, fake, trials=7, seed=1)
    assert [t.kind for t in some].count("real") == 3 and [t.kind for t in some].count("fake") == 4
    assert len(set(some)) == 7


def test_bad_folders_and_counts_are_explained(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    real, fake = folders
    with pytest.raises(FileNotFoundError, match="nope"):
        build_study_trials(tmp_path / "nope", fake)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        build_study_trials(real, tmp_path / "empty")
    with pytest.raises(ValueError, match=r"needs 6 real.*has 5"):
        build_study_trials(real, fake, trials=12)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*x\.png"):
        write_study_page(real, tmp_path / "broken", tmp_path / "s.html")
    with pytest.raises(ValueError, match="seconds"):
        render_study_page(build_study_trials(real, fake), seconds=0)


def test_page_is_self_contained(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    real, fake = folders
    out = tmp_path / "study.html"
    trials = write_study_page(real, fake, out, seconds=0.5, seed=2)
    page = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link" not in page
    config = json.loads(re.search(r'<script id="study-config" type="application/json">(.*?)</script>', page, re.S)[1])
    assert config["seconds"] == 0.5
    assert [(t["kind"], t["name"]) for t in config["trials"]] == [(t.kind, t.path.name) for t in trials]
    assert all(t["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for t in config["trials"])
    assert not list(tmp_path.glob(".study.html.*"))  # no temp files left behind


def test_cli_writes_the_page(tmp_path: Path, folders: tuple[Path, Path], capsys: pytest.CaptureFixture) -> None:
    real, fake = folders
    out = tmp_path / "cli-study.html"
    assert main(["study", "--real", str(real), "--fake", str(fake), "--out", str(out), "--trials", "4"]) == 0
    assert "4 trials (2 real, 2 fake)" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8").count('"kind": "real"') == 2


def _results(dom: str) -> tuple[dict, list[dict]]:
    match = re.search(r'<pre id="results-json">(.*?)</pre>', dom, re.S)
    assert match and match[1].strip(), "the page did not finish: no results in the DOM"
    import html

    results = json.loads(html.unescape(match[1]))
    csv_text = html.unescape(re.search(r'<pre id="results-csv">(.*?)</pre>', dom, re.S)[1])
    return results, list(csv.DictReader(io.StringIO(csv_text)))


@pytest.mark.browser
@requires_chromium
@pytest.mark.parametrize("input_mode", ["buttons", "keys"])
def test_scripted_run_in_chromium_gives_the_right_tally(
    tmp_path: Path, folders: tuple[Path, Path], input_mode: str
) -> None:
    real, fake = folders
    page = tmp_path / "study.html"
    trials = write_study_page(real, fake, page, seconds=1.0, seed=5)
    script = "".join("rf"[(index * 7 + 3) % 3 == 0] for index in range(len(trials)))  # a fixed mix of answers

    dom = dump_dom(page, f"autoplay={script}&input={input_mode}", tmp_path)
    assert 'data-phase="done"' in dom
    results, rows = _results(dom)

    called_real = [answer == "r" for answer in script]
    fakes = [c for t, c in zip(trials, called_real, strict=True) if t.kind == "fake"]
    reals = [c for t, c in zip(trials, called_real, strict=True) if t.kind == "real"]
    tally = results["tally"]
    assert tally["num_answers"] == len(trials)
    assert (tally["fake_called_real"], tally["num_fake"]) == (sum(fakes), len(fakes))
    assert (tally["real_called_real"], tally["num_real"]) == (sum(reals), len(reals))
    assert tally["pct_fake_called_real"] == pytest.approx(100 * sum(fakes) / len(fakes))
    assert tally["pct_real_called_real"] == pytest.approx(100 * sum(reals) / len(reals))
    shown = f"{100 * sum(fakes) / len(fakes):.1f}% ({sum(fakes)} of {len(fakes)})"
    assert f'<td id="fake-called-real">{shown}</td>' in dom

    assert [a["name"] for a in results["answers"]] == [t.path.name for t in trials]
    assert [a["kind"] for a in results["answers"]] == [t.kind for t in trials]
    assert all(a["shown_ms"] == pytest.approx(1000, abs=20) for a in results["answers"])  # virtual time
    assert [row["answer"] for row in rows] == ["real" if c else "fake" for c in called_real]
    assert [row["name"] for row in rows] == [t.path.name for t in trials]


@pytest.mark.browser
@requires_chromium
def test_page_waits_for_answers_and_respects_the_display_time(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    real, fake = folders
    page = tmp_path / "study.html"
    write_study_page(real, fake, page, seconds=2.0, trials=4)
    # Two answers scripted, four trials: the page must stop at trial 3 and wait for an answer.
    dom = dump_dom(page, "autoplay=rf", tmp_path)
    assert 'data-phase="answering"' in dom
    assert "Image 3 of 4" in dom
    # Not enough virtual time for one 2 s exposure: still showing the first image.
    dom = dump_dom(page, "autoplay=rrrr", tmp_path, virtual_ms=1500)
    assert 'data-phase="showing"' in dom and "Image 1 of 4" in dom


# File names that break a page whose JSON escapes only "</": "<!--<script" puts the HTML parser in its
# "script data double escaped" state, so the config's </script> no longer ends it and no script runs.
# ("/" cannot be in a file name, so "</script>" is checked through json_for_script, and so is "-->",
# which would end that state again and hide the bug.)
HOSTILE_NAMES = ["a<!--<script>x", "b <!--<script & x", "c\u2028\u2029 é"]


@pytest.fixture()
def hostile_folders(tmp_path: Path) -> tuple[Path, Path]:
    real, fake = _images(tmp_path / "real", 1, ".png", 0), _images(tmp_path / "fake", 2, ".png", 1)
    try:
        for folder, names in ((real, HOSTILE_NAMES[:1]), (fake, HOSTILE_NAMES[1:])):
            for old, name in zip(sorted(folder.iterdir()), names, strict=False):
                old.rename(folder / f"{name}.png")
    except OSError as error:
        pytest.skip(f"the file system refuses these names: {error}")
    return real, fake


def test_json_for_script_escapes_what_html_would_parse() -> None:
    value = {"name": "</script><!--<script>-->&\u2028\u2029", "n": [1, 2.5, None]}
    text = json_for_script(value)
    assert json.loads(text) == value
    assert not re.search("[<>&\u2028\u2029]", text)
    assert "\\u003c/script\\u003e\\u003c!--" in text


def test_hostile_file_names_cannot_break_the_page(tmp_path: Path, hostile_folders: tuple[Path, Path]) -> None:
    real, fake = hostile_folders
    page = tmp_path / "study.html"
    trials = write_study_page(real, fake, page, title="__COUNT__ <i>")
    text = page.read_text(encoding="utf-8")
    assert "<!--" not in text and "-->" not in text
    assert text.count("</script") == 2 and text.count("<script") == 2  # only the two real script elements
    body = re.search(r'<script id="study-config" type="application/json">(.*?)</script>', text, re.S)[1]
    assert not re.search("[<>&\u2028\u2029]", body)
    assert sorted(t["name"] for t in json.loads(body)["trials"]) == sorted(t.path.name for t in trials)
    assert "<title>__COUNT__ &lt;i&gt;</title>" in text  # placeholders inside values are left alone


@pytest.mark.browser
@requires_chromium
def test_hostile_file_names_page_runs_in_chromium(tmp_path: Path, hostile_folders: tuple[Path, Path]) -> None:
    real, fake = hostile_folders
    page = tmp_path / "study.html"
    trials = write_study_page(real, fake, page, seconds=0.5)
    dom = dump_dom(page, "autoplay=rfr", tmp_path)
    assert 'data-phase="done"' in dom, "the page's script did not run"
    results, rows = _results(dom)
    assert [a["name"] for a in results["answers"]] == [t.path.name for t in trials]
    assert [row["name"] for row in rows] == [t.path.name for t in trials]
