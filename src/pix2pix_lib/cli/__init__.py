"""The ``pix2pix`` command line: ``pix2pix COMMAND --help`` describes each command.

Also reachable as ``python -m pix2pix_lib`` (so ``torchrun -m pix2pix_lib train ...`` works).
Each command has an ``add_<command>`` function that declares its arguments and a ``_run_<command>``
function that calls the library; the library does the work, this package only parses arguments.
Errors print one line (``error: ...``); ``--debug`` or ``PIX2PIX_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence

from ..models.integrity import skip_verification
from ._options import UsageError, apply_threads
from .cyclegan import add_cyclegan
from .deploy import add_export, add_serve
from .evaluation import add_evaluate, add_study
from .models import add_convert, add_download, add_translate
from .training import add_demo, add_train

__all__ = ["build_parser", "main"]

DEBUG_ENV = "PIX2PIX_DEBUG"


def _add_bench(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("bench", help="moved: run `python benchmarks/bench.py` from a source checkout")


def _bench_moved() -> int:
    print(
        "error: `pix2pix bench` moved out of the package; from a source checkout run "
        "`python benchmarks/bench.py` (same options; see docs/performance.md)",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="pix2pix", description="pix2pix paired image-to-image translation")
    parser.add_argument("--version", action="version", version=f"pix2pix_lib {__version__}")
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks of errors (or set {DEBUG_ENV}=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (
        add_demo, add_train, add_cyclegan, add_evaluate, add_study, add_translate, add_export, add_serve, add_convert,
        add_download,
        _add_bench,
    ):  # fmt: skip
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (1 for an error, printed as one line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # whatever options follow: the benchmark is a developer script now
        return _bench_moved()
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    try:
        apply_threads(getattr(args, "threads", None))
        with warnings.catch_warnings():
            if not debug:  # "pix2pix train: warning: ..." instead of Python's source line
                warnings.formatwarning = _warning_line(args.command)
            with skip_verification() if getattr(args, "no_verify", False) else contextlib.nullcontext():
                return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except UsageError as error:  # a value that cannot work: one line naming the option, like argparse's
        print(f"pix2pix {args.command}: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - every error becomes one readable line
        if debug:
            raise
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"pix2pix {args.command}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 1


def _warning_line(command: str):  # noqa: ANN202 - the signature of warnings.formatwarning
    def format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
        return f"pix2pix {command}: warning: {' '.join(str(message).split())}\n"

    return format_warning
