"""The ``smart-tuner`` command.

    smart-tuner tune --search-space FILE [--config FILE] [--num-samples N] [--gpus-per-trial F]
                     [--storage DIR] [--name NAME] [--scheduler smart|fifo|asha|pbt]
                     [--max-concurrent N]
    smart-tuner resume NAME [--storage DIR]     # continue a sweep after the driver died
    smart-tuner analyze NAME [--storage DIR]    # failure analysis report of a sweep
    smart-tuner corpus DIR [--n N] [--seed S]   # build the built-in speech corpus (LJSpeech layout)

User mistakes (missing or bad file, bad option value, a name already taken) print one line
``smart-tuner: error: ...`` on stderr and exit with status 2, without a traceback. ``tune`` and
``resume`` exit 0 when every trial finished, recovered or was stopped by a rule, 1 when a trial
errored or diverged (the last lines name them and their error files), 130 when interrupted
(Ctrl+C: Ray saves the state; the last line gives the ``smart-tuner resume`` command). This is the only
module that touches global state (Ray's local instance via Tuner.fit, the process exit code).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from tuner.errors import UserError, user_error_types
from tuner.search_space import SCHEDULERS

__all__ = ["main", "build_parser", "UsageError"]

PROG = "smart-tuner"


class UsageError(UserError):
    """A bad command-line value (one line, names the option and the fix)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block), exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message}; see `{self.prog} --help`\n")
        sys.exit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands tune, resume, analyze, corpus)."""
    parser = _Parser(prog=PROG, description="Ray Tune sweeps of Tacotron2 that detect and "
                                            "recover failing trials.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    storage_help = "experiment storage folder or URI (default ./runs)"

    tune = sub.add_parser("tune", help="run a sweep")
    tune.add_argument("--search-space", required=True, metavar="FILE",
                      help="search-space YAML (see search_spaces/quickstart.yaml)")
    tune.add_argument("--config", metavar="FILE",
                      help="smart-tuner config YAML merged over the defaults (tuner/config.yaml)")
    tune.add_argument("--num-samples", type=_positive_int, metavar="N")
    tune.add_argument("--gpus-per-trial", type=_non_negative_float, metavar="F")
    tune.add_argument("--storage", metavar="DIR", help=storage_help)
    tune.add_argument("--name", metavar="NAME",
                      help="experiment name (default <search space>-<date-time>)")
    tune.add_argument("--scheduler", choices=SCHEDULERS)
    tune.add_argument("--max-concurrent", type=_positive_int, metavar="N")

    resume = sub.add_parser("resume", help="continue a sweep after the driver died")
    resume.add_argument("name", metavar="NAME")
    resume.add_argument("--storage", metavar="DIR", help=storage_help)

    analyze = sub.add_parser("analyze", help="failure analysis report of a sweep")
    analyze.add_argument("name", metavar="NAME")
    analyze.add_argument("--storage", metavar="DIR", help=storage_help)

    corpus = sub.add_parser("corpus", help="build the built-in speech corpus (LJSpeech layout)")
    corpus.add_argument("dir", metavar="DIR")
    corpus.add_argument("--n", type=_positive_int, default=600, metavar="N",
                        help="number of utterances (default 600)")
    corpus.add_argument("--seed", type=int, default=0, metavar="S")
    corpus.add_argument("--no-features", action="store_true",
                        help="skip computing the mel feature cache")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a trial failed, 2 user mistake, 130
    interrupted)."""
    args = build_parser().parse_args(argv)
    from tuner import cli_commands

    commands = {"tune": cli_commands.cmd_tune, "resume": cli_commands.cmd_resume,
                "analyze": cli_commands.cmd_analyze, "corpus": cli_commands.cmd_corpus}
    try:
        return commands[args.command](args)
    except user_error_types() as err:
        message = " ".join(str(err).split("\n")).strip()
        sys.stderr.write(f"{PROG}: error: {message}\n")
        return 2
    except KeyboardInterrupt as err:  # before the sweep started, or a second Ctrl+C during it
        sys.stderr.write(f"{PROG}: interrupted" + (f"; {err}" if str(err) else "") + "\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
