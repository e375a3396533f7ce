"""The ``mcunas`` console script: one subcommand per module in this package.

Each subcommand module defines ``register(subparsers)`` and keeps heavy
imports (TensorFlow above all: ~2.5 s and ~640 MB) inside its handler, so
``mcunas estimate`` stays instant.  A :class:`~mcunas.errors.UserError`
anywhere becomes one ``mcunas: error: ...`` line and exit status 2, and so
does a full disk or an unwritable folder (:data:`DISK_ERRORS`).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import re
import sys

from mcunas.errors import UserError, did_you_mean

# Subcommand modules, in the order `mcunas --help` lists them.
COMMANDS = [
    "estimate",
    "sample",
    "presets",
    "boards",
    "data",
    "evaluate",
    "train",
    "search",
    "supernet",
    "bench",
    "query",
    "frontier",
    "export",
    "measure",
]

BUDGET_HELP = (
    "Budgets are written with units: 250KB, 0.25MB, 256KiB for memory, 60M for MACs. "
    "KB/MB are powers of 1000 (as in the VWW paper); KiB/MiB are powers of 1024."
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line, like every other bad input.

    The line names the command only in its ``--help`` pointer (``mcunas: error:
    mcunas: ...`` said it twice), and a misspelt subcommand gets a suggestion.
    """

    def error(self, message: str):
        choice = re.match(r"argument ([^:]+): invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            name, given, options = choice.group(1), choice.group(2), re.findall(r"'([^']*)'", choice.group(3))
            what = f"argument {name}: invalid choice" if name.startswith("-") else "unknown command"
            message = f"{what} '{given}'{did_you_mean(given, options)}: choose one of {', '.join(options)}"
        self.exit(2, f"mcunas: error: {message} (see `{self.prog} --help`)\n")


# Flags whose values may look like options to argparse ("-5KB"): passed on as --flag=VALUE so the
# budget parser can say what is wrong with them instead of argparse's "expected one argument".
VALUE_FLAGS = ("--sram", "--flash", "--macs", "--latency", "--timeout", "--candidate-timeout")


def _attach_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_FLAGS and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1] != "--":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})


def _check_options(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse an option the chosen (sub)command does not have, before argparse parses.

    argparse reports unknown options last, so ``estimate --preset X --sram 250KB``
    first failed on "argument arch: not allowed with argument --preset" (the
    stray value filled ``arch``).  This names the option itself, the close
    spelling if there is one, and which commands do take it.
    """
    command = parser
    for token in argv:
        if token == "--":
            return
        if not token.startswith("-") and token in _subparsers(command):
            command = _subparsers(command)[token]
            continue
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        known = [o for o in command._option_string_actions if o.startswith("--")]
        if any(o.startswith(name) for o in known):  # argparse accepts unambiguous prefixes
            continue
        takers = sorted(n for n, p in _subparsers(parser).items() if name in p._option_string_actions)
        where = f"; it is an option of {', '.join(f'`mcunas {t}`' for t in takers)}" if takers else ""
        command.error(f"`{command.prog}` has no option {name}{did_you_mean(name, known)}{where}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcunas",
        description="Neural architecture search for microcontrollers: find tiny CNNs that fit "
        "an MCU's SRAM, flash and compute budget, train them on Visual Wake Words, export them.",
        epilog=BUDGET_HELP,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"mcunas.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from mcunas.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything can import TensorFlow (see mcunas.quiet)
    parser = build_parser()
    argv = _attach_values(sys.argv[1:] if argv is None else list(argv))
    _check_options(parser, argv)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"mcunas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcunas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        print(f"mcunas: error: {disk_error(exc)}", file=sys.stderr)
        return 2


# A full disk or a folder mcunas may not write is the user's to fix, wherever it strikes.
# Every writer writes to a temporary name and renames (mcunas.atomic), and removes the
# temporary on failure, so nothing half-written is left and earlier results stand.
DISK_ERRORS = {errno.ENOSPC: "free some space (or give a folder on another disk)",
               errno.EDQUOT: "free some space (or give a folder on another disk)",
               errno.EFBIG: "the file would exceed the size limit (ulimit -f) or the file system's",
               errno.EROFS: "give a folder on a writable file system",
               errno.EACCES: "check its permissions, or give another folder",
               errno.EPERM: "check its permissions, or give another folder"}


def disk_error(exc: OSError) -> str:
    """One line for an OSError in DISK_ERRORS: what failed, on which file, what to do."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or os.strerror(exc.errno)}{where}: {DISK_ERRORS[exc.errno]}; rerun the same command afterwards"


if __name__ == "__main__":
    sys.exit(main())
