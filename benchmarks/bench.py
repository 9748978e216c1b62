"""Run the pix2pix speed benchmark: ``python benchmarks/bench.py [--quick] [--device cuda] [--json out.json]``.

A thin wrapper: the harness is :mod:`pix2pix_lib.benchmark` (also ``pix2pix bench``), the baseline it
compares against is ``baseline.py`` next to this file. ``--help`` lists the options; the method and
the recorded results are in ``docs/performance.md``.
"""

import sys
from pathlib import Path

from pix2pix_lib.cli import main

if __name__ == "__main__":
    options = sys.argv[1:]
    if not any(option.startswith("--baseline-file") for option in options):
        options = ["--baseline-file", str(Path(__file__).with_name("baseline.py")), *options]
    sys.exit(main(["bench", *options]))
