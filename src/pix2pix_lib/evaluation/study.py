"""A timed "real or fake?" perceptual study as one self-contained HTML page.

Like the human studies of the pix2pix paper, people see real photographs and generated images in a
shuffled order, each for a fixed time (1 s by default), and say whether it was real. The page needs
no server and no network: images are embedded as data URIs and the script is inline. At the end it
shows the tally -- the share of fakes called real (how often the model fooled people) and of reals
called real (the baseline) -- and offers the answers as JSON or CSV downloads.

The page can be driven by a script (tests use headless Chromium): ``study.html?autoplay=rfrf...``
answers trial *i* with ``r`` (real) or ``f`` (fake) as soon as its image has been hidden, by
clicking the answer buttons (``&input=keys``: by key presses), and ``window.study`` exposes
``start()``, ``answer("real" | "fake")``, ``state()`` and ``results()``.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..atomic_io import write_text_atomically
from ..data.image_io import read_image
from .embedding import data_uri, json_for_script

__all__ = [
    "IMAGE_TYPES",
    "StudyTrial",
    "build_study_trials",
    "list_images",
    "render_study_page",
    "write_study_page",
]

#: File suffixes the study accepts and the MIME type each is embedded with.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
}


@dataclass(frozen=True)
class StudyTrial:
    """One trial of the study: an image file and whether it is ``"real"`` or ``"fake"``."""

    kind: Literal["real", "fake"]
    path: Path


def list_images(folder: str | Path) -> list[Path]:
    """The image files (by suffix, see :data:`IMAGE_TYPES`) directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist or is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_TYPES)
    if not files:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_TYPES))}) in {folder}")
    return files


def build_study_trials(
    real_dir: str | Path, fake_dir: str | Path, trials: int | None = None, seed: int = 0
) -> list[StudyTrial]:
    """Choose and shuffle the trials: all images, or ``trials`` of them split evenly real/fake.

    With ``trials=N`` the study shows ``N // 2`` real and ``N - N // 2`` fake images drawn at random.
    The same ``seed`` gives the same trials in the same order.
    """
    real, fake = list_images(real_dir), list_images(fake_dir)
    rng = random.Random(seed)
    if trials is not None:
        if trials < 2:
            raise ValueError(f"trials={trials} must be at least 2 (one real and one fake)")
        n_real, n_fake = trials // 2, trials - trials // 2
        if n_real > len(real) or n_fake > len(fake):
            raise ValueError(
                f"trials={trials} needs {n_real} real and {n_fake} fake images, but {real_dir} has "
                f"{len(real)} and {fake_dir} has {len(fake)}"
            )
        real, fake = rng.sample(real, n_real), rng.sample(fake, n_fake)
    chosen = [StudyTrial("real", p) for p in real] + [StudyTrial("fake", p) for p in fake]
    rng.shuffle(chosen)
    return chosen


def _image_uri(path: Path) -> str:
    """The file's own bytes for the browser, after checking it decodes by the library's one rule."""
    read_image(path)  # ImageLoadError naming the file when it is corrupt, truncated or too large
    return data_uri(path.read_bytes(), IMAGE_TYPES[path.suffix.lower()])


def render_study_page(
    trials: Sequence[StudyTrial],
    seconds: float = 1.0,
    title: str = "Real or fake?",
    gap_seconds: float = 0.25,
) -> str:
    """The study page's HTML for ``trials`` (in order), each image shown for ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    if gap_seconds < 0:
        raise ValueError(f"gap_seconds={gap_seconds} must be >= 0")
    if not trials:
        raise ValueError("the study needs at least one trial")
    payload = [
        {"id": index, "kind": trial.kind, "name": trial.path.name, "src": _image_uri(trial.path)}
        for index, trial in enumerate(trials)
    ]
    config = {"seconds": seconds, "gapSeconds": gap_seconds, "trials": payload}
    values = {
        "TITLE": html.escape(title),
        "SECONDS": f"{seconds:g}",
        "COUNT": str(len(trials)),
        "CONFIG": json_for_script(config),
    }
    # One pass, so a placeholder inside a value (a title "__COUNT__") is left as it is.
    return re.sub(r"__(TITLE|SECONDS|COUNT|CONFIG)__", lambda match: values[match[1]], _PAGE)


def write_study_page(
    real_dir: str | Path,
    fake_dir: str | Path,
    out: str | Path,
    seconds: float = 1.0,
    trials: int | None = None,
    seed: int = 0,
    title: str = "Real or fake?",
) -> list[StudyTrial]:
    """Build the study from two image folders and write it to ``out`` (atomically).

    Returns the trials in the order the page shows them.
    """
    chosen = build_study_trials(real_dir, fake_dir, trials=trials, seed=seed)
    write_text_atomically(out, render_study_page(chosen, seconds=seconds, title=title))
    return chosen


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #808080; color: #111; }
main { max-width: 52em; margin: 0 auto; padding: 1.5em; }
.panel { background: #f4f4f4; border-radius: 8px; padding: 1.2em 1.5em; }
#stage { height: 70vh; display: flex; align-items: center; justify-content: center; }
#stimulus { max-width: 100%; max-height: 70vh; visibility: hidden; }
#question { text-align: center; font-size: 1.3em; }
button { font-size: 1.1em; padding: 0.5em 1.4em; margin: 0.3em; cursor: pointer; }
table { border-collapse: collapse; } td, th { border: 1px solid #bbb; padding: 4px 8px; text-align: left; }
.hidden { display: none; }
#progress { text-align: center; color: #333; }
</style></head>
<body data-phase="intro">
<main>
<section id="intro" class="panel">
  <h1>__TITLE__</h1>
  <p>You will see __COUNT__ images, one at a time, each for __SECONDS__ second(s).
     Some are real photographs, some were generated by a computer.
     After each image, say whether you think it was <b>real</b> or <b>fake</b>.</p>
  <p>Keys: <b>R</b> or <b>&larr;</b> = real, <b>F</b> or <b>&rarr;</b> = fake (or click the buttons).
     Go with your first impression.</p>
  <p><label>Your name or ID (optional): <input id="participant" type="text"></label></p>
  <p><button id="start-button" type="button">Start (Space)</button></p>
</section>
<section id="trial" class="hidden">
  <p id="progress"></p>
  <div id="stage"><img id="stimulus" alt="stimulus"></div>
  <div id="question" class="panel">
    Was this image real or fake?<br>
    <button id="answer-real" type="button">Real (R / &larr;)</button>
    <button id="answer-fake" type="button">Fake (F / &rarr;)</button>
  </div>
</section>
<section id="done" class="panel hidden">
  <h1>Thank you!</h1>
  <table id="tally"><tbody>
    <tr><th>fakes called real</th><td id="fake-called-real"></td></tr>
    <tr><th>reals called real</th><td id="real-called-real"></td></tr>
    <tr><th>answers correct</th><td id="accuracy"></td></tr>
  </tbody></table>
  <p><button id="download-json" type="button">Download answers (JSON)</button>
     <button id="download-csv" type="button">Download answers (CSV)</button></p>
  <details><summary>answers (JSON)</summary><pre id="results-json"></pre></details>
  <details><summary>answers (CSV)</summary><pre id="results-csv"></pre></details>
</section>
</main>
<script id="study-config" type="application/json">__CONFIG__</script>
<script>
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("study-config").textContent);
  var trials = config.trials, msShown = config.seconds * 1000, msGap = config.gapSeconds * 1000;
  var $ = function (id) { return document.getElementById(id); };
  var img = $("stimulus");
  var phase = "intro", current = -1, shownAt = null, hiddenAt = null, hideTimer = null;
  var answers = [], autoplay = null, started = null;
  var preloaded = trials.map(function (t) { var i = new Image(); i.src = t.src; return i; });

  var query = new URLSearchParams(window.location.search);
  if (query.has("autoplay")) autoplay = query.get("autoplay").toLowerCase().replace(/[^rf]/g, "");
  var inputMode = query.get("input") === "keys" ? "keys" : "buttons";

  function setPhase(p) { phase = p; document.body.dataset.phase = p; }
  function show(id, visible) { $(id).classList.toggle("hidden", !visible); }

  function start() {
    if (phase !== "intro") return;
    started = new Date().toISOString();
    show("intro", false); show("trial", true);
    next();
  }

  function next() {
    current += 1;
    if (current >= trials.length) { finish(); return; }
    setPhase("waiting");
    img.style.visibility = "hidden";
    $("question").style.visibility = "hidden";
    $("progress").textContent = "Image " + (current + 1) + " of " + trials.length;
    var pre = preloaded[current];
    // Wait until the image is loaded so its exposure starts when it is really on screen.
    var go = function () { pre.onload = pre.onerror = null; setTimeout(present, msGap); };
    if (pre.complete) go(); else { pre.onload = go; pre.onerror = go; }
  }

  function present() {
    img.src = trials[current].src;
    img.style.visibility = "visible";
    $("question").style.visibility = "visible";
    shownAt = performance.now(); hiddenAt = null;
    setPhase("showing");
    hideTimer = setTimeout(hide, msShown);
  }

  function hide() {
    if (hideTimer !== null) { clearTimeout(hideTimer); hideTimer = null; }
    if (hiddenAt === null) hiddenAt = performance.now();
    img.style.visibility = "hidden";
    if (phase === "showing") {
      setPhase("answering");
      if (autoplay !== null && current < autoplay.length) scriptedAnswer(autoplay.charAt(current) === "r");
    }
  }

  // ?autoplay answers go through the same controls a person uses: buttons, or keys with &input=keys.
  function scriptedAnswer(real) {
    if (inputMode === "keys") {
      document.dispatchEvent(new KeyboardEvent("keydown", { key: real ? "r" : "f", bubbles: true }));
    } else {
      $(real ? "answer-real" : "answer-fake").click();
    }
  }

  function answer(label) {
    if (phase !== "showing" && phase !== "answering") return false;
    if (label !== "real" && label !== "fake") throw new Error("answer must be 'real' or 'fake'");
    var now = performance.now();
    hide();
    var t = trials[current];
    answers.push({
      trial: current + 1, id: t.id, name: t.name, kind: t.kind, answer: label,
      called_real: label === "real", correct: label === t.kind,
      response_ms: Math.round(now - shownAt), shown_ms: Math.round(hiddenAt - shownAt)
    });
    setPhase("waiting");
    next();
    return true;
  }

  function tally() {
    function count(kind, calledReal) {
      return answers.filter(function (a) {
        return a.kind === kind && (calledReal === null || a.called_real === calledReal);
      }).length;
    }
    var fakes = count("fake", null), reals = count("real", null);
    var fakeReal = count("fake", true), realReal = count("real", true);
    var correct = answers.filter(function (a) { return a.correct; }).length;
    return {
      num_trials: trials.length, num_answers: answers.length, num_fake: fakes, num_real: reals,
      fake_called_real: fakeReal, real_called_real: realReal, num_correct: correct,
      pct_fake_called_real: fakes ? 100 * fakeReal / fakes : null,
      pct_real_called_real: reals ? 100 * realReal / reals : null,
      pct_correct: answers.length ? 100 * correct / answers.length : null
    };
  }

  function results() {
    return {
      participant: $("participant").value || null, started: started,
      finished: phase === "done" ? new Date().toISOString() : null,
      seconds_per_image: config.seconds, tally: tally(), answers: answers.slice()
    };
  }

  function pct(n, d) { return d ? (100 * n / d).toFixed(1) + "% (" + n + " of " + d + ")" : "n/a"; }

  function finish() {
    setPhase("done");
    show("trial", false); show("done", true);
    var t = tally();
    $("fake-called-real").textContent = pct(t.fake_called_real, t.num_fake);
    $("real-called-real").textContent = pct(t.real_called_real, t.num_real);
    $("accuracy").textContent = pct(t.num_correct, t.num_answers);
    $("results-json").textContent = JSON.stringify(results(), null, 2);
    $("results-csv").textContent = csv();
    document.title = "study finished";
  }

  function csv() {
    var cols = ["trial", "id", "name", "kind", "answer", "called_real", "correct", "response_ms", "shown_ms"];
    var quote = function (v) { v = String(v); return /[",\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; };
    return [cols.join(",")].concat(answers.map(function (a) {
      return cols.map(function (c) { return quote(a[c]); }).join(",");
    })).join("\n") + "\n";
  }

  function download(text, name, type) {
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: type }));
    link.download = name;
    document.body.appendChild(link); link.click(); link.remove();
  }

  $("start-button").addEventListener("click", start);
  $("answer-real").addEventListener("click", function () { answer("real"); });
  $("answer-fake").addEventListener("click", function () { answer("fake"); });
  $("download-json").addEventListener("click", function () {
    download(JSON.stringify(results(), null, 2), "study-answers.json", "application/json");
  });
  $("download-csv").addEventListener("click", function () { download(csv(), "study-answers.csv", "text/csv"); });
  document.addEventListener("keydown", function (e) {
    if (e.repeat || e.target.tagName === "INPUT") return;
    var key = e.key.toLowerCase();
    if (phase === "intro" && (key === " " || key === "enter")) { e.preventDefault(); start(); }
    else if (key === "r" || key === "arrowleft") answer("real");
    else if (key === "f" || key === "arrowright") answer("fake");
  });

  window.study = {
    start: start, answer: answer, results: results, csv: csv,
    state: function () { return { phase: phase, trial: current, num_trials: trials.length }; },
    trials: trials.map(function (t) { return { id: t.id, kind: t.kind, name: t.name }; })
  };
  if (autoplay !== null) start();
})();
</script>
</body></html>
"""
