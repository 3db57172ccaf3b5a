"""The ``smart-tuner`` command.

    smart-tuner tune --search-space FILE [--config FILE] [--num-samples N] [--gpus-per-trial F]
                     [--storage DIR] [--name NAME] [--scheduler smart|fifo|asha|pbt]
                     [--max-concurrent N] [--keep-checkpoints N|all] [-v]
    smart-tuner resume NAME [--storage DIR] [-v]         # continue a sweep after the driver died
    smart-tuner analyze NAME|PATH [--storage DIR] [--html]  # failure analysis report of a sweep
    smart-tuner --version
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
from tuner.raytune.search_space import SCHEDULERS

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


def _keep(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    return _positive_int(text)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("smart-tuner")
    except PackageNotFoundError:  # running from a source tree that was not installed
        ours = "unknown (not installed)"
    parts = [f"{PROG} {ours}"]
    for package in ("ray", "torch", "optuna", "mlflow"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (subcommands tune, resume, analyze, corpus)."""
    parser = _Parser(prog=PROG, description="Ray Tune sweeps of Tacotron2 that detect and "
                                            "recover failing trials.")
    parser.add_argument("--version", action="version", version=_version(),
                        help="print the versions of smart-tuner, Ray, torch, Optuna and MLflow")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    storage_help = "experiment storage folder or URI (default ./runs)"
    verbose_help = ("also print Ray's own output (its status tables, trial configs, "
                    "checkpoint lines and worker logs)")

    tune = sub.add_parser("tune", help="run a sweep",
                          description="Run a sweep; values on the command line override the "
                                      "search-space file.")
    tune.add_argument("--search-space", required=True, metavar="FILE",
                      help="search-space YAML (see search_spaces/quickstart.yaml)")
    tune.add_argument("--config", metavar="FILE",
                      help="smart-tuner config YAML merged over the defaults (tuner/core/config.yaml)")
    tune.add_argument("--num-samples", type=_positive_int, metavar="N",
                      help="number of trials (default: num_samples of the search space)")
    tune.add_argument("--gpus-per-trial", type=_non_negative_float, metavar="F",
                      help="GPUs per trial, fractions allowed (default: resources.gpu of the "
                           "search space)")
    tune.add_argument("--storage", metavar="DIR", help=storage_help)
    tune.add_argument("--name", metavar="NAME",
                      help="experiment name (default <search space>-<date-time>)")
    tune.add_argument("--scheduler", choices=SCHEDULERS,
                      help="smart: detect and repair failing trials; fifo, asha, pbt: Ray's own, "
                           "for comparison (default: scheduler of the search space)")
    tune.add_argument("--max-concurrent", type=_positive_int, metavar="N",
                      help="trials running at a time (default: max_concurrent of the search "
                           "space)")
    tune.add_argument("--keep-checkpoints", type=_keep, default=1, metavar="N|all",
                      help="per trial keep the N best checkpoints by the sweep's metric, plus the "
                           "latest and the last healthy one (default 1); 'all' keeps every one")
    tune.add_argument("-v", "--verbose", action="store_true", help=verbose_help)

    resume = sub.add_parser("resume", help="continue a sweep after the driver died")
    resume.add_argument("name", metavar="NAME", help="experiment name (a folder in --storage)")
    resume.add_argument("--storage", metavar="DIR", help=storage_help)
    resume.add_argument("-v", "--verbose", action="store_true", help=verbose_help)

    analyze = sub.add_parser("analyze", help="failure analysis report of a sweep")
    analyze.add_argument("name", metavar="NAME|PATH",
                         help="experiment name in --storage, or the path of an experiment folder")
    analyze.add_argument("--storage", metavar="DIR", help=storage_help)
    analyze.add_argument("--html", action="store_true",
                         help="also write a self-contained report.html (images inline)")

    corpus = sub.add_parser("corpus", help="build the built-in speech corpus (LJSpeech layout)")
    corpus.add_argument("dir", metavar="DIR", help="folder to build it in")
    corpus.add_argument("--n", type=_positive_int, default=600, metavar="N",
                        help="number of utterances (default 600)")
    corpus.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed of the sentence choice (default 0)")
    corpus.add_argument("--no-features", action="store_true",
                        help="skip computing the mel feature cache")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 a trial failed, 2 user mistake, 130
    interrupted)."""
    args = build_parser().parse_args(argv)
    from tuner.cli import commands as cli_commands

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
