"""The ``smart-tuner`` subcommands (parsing and error handling live in tuner/cli/__init__.py)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import yaml

from tuner.folders import check_writable, make_folder
from tuner.raytune.storage import fetch_experiment, is_empty, is_remote, publish_report, write_text
from tuner.raytune.storage import join as storage_join
from tuner.raytune.sweep import (SMART_CONFIG_FILE, SweepError, SweepSettings, build_tuner,
                         check_resumed_dataset, check_sweep, default_name, ensure_dataset,
                         resolve_storage, restore_tuner, smart_config)
from tuner.raytune.sweep_exit import closing_lines, exit_status, hide_ray_restore_hint, trial_ends

__all__ = ["cmd_tune", "cmd_resume", "cmd_analyze", "cmd_corpus", "print_summary"]


def _tracking_uri(storage: str, experiment_dir: Path) -> str:
    from tuner.reporting.mlflow_callback import default_tracking_uri

    if "://" in storage and not os.environ.get("MLFLOW_TRACKING_URI"):
        raise SweepError(f"--storage {storage} is remote: set MLFLOW_TRACKING_URI to an MLflow "
                         "tracking server (the SQLite default needs a local folder)")
    return default_tracking_uri(experiment_dir)


def cmd_tune(args: argparse.Namespace) -> int:
    """``smart-tuner tune``: validate everything, prepare the data, run the sweep, summarise."""
    from tuner.raytune.search_space import load_search_space

    space = load_search_space(args.search_space)
    cfg, overrides = smart_config(space.smart_tuner, args.config)
    storage = resolve_storage(args.storage)
    name = args.name or default_name(args.search_space)
    if "/" in name or name in (".", ".."):
        raise SweepError(f"--name {name!r} must be a plain folder name without '/'")
    experiment_dir = Path(storage) / name
    taken = not is_empty(storage_join(storage, name)) if is_remote(storage) else \
        experiment_dir.exists() and any(experiment_dir.iterdir())
    if taken:
        raise SweepError(
            f"experiment {name!r} already exists in {storage}; pick another --name or continue it "
            f"with `smart-tuner resume {name} --storage {storage}`")
    settings = SweepSettings(
        search_space=str(Path(args.search_space).resolve()), storage=storage, name=name,
        num_samples=args.num_samples or space.num_samples,
        max_concurrent=args.max_concurrent or space.max_concurrent,
        cpus_per_trial=space.cpus_per_trial,
        gpus_per_trial=space.gpus_per_trial if args.gpus_per_trial is None else args.gpus_per_trial,
        scheduler=args.scheduler or space.scheduler, metric=space.metric, mode=space.mode,
        tracking_uri=_tracking_uri(storage, experiment_dir), keep_checkpoints=args.keep_checkpoints)
    check_sweep(space, settings, cfg)
    fixed = ensure_dataset(space)
    param_space = dict(space.param_space(), data_dir=fixed["data_dir"])
    with _new_experiment(experiment_dir, local="://" not in storage):
        tuner = build_tuner(space, settings, cfg, param_space, verbose=args.verbose)
        if "://" not in storage:
            settings.save()
            (experiment_dir / SMART_CONFIG_FILE).write_text(
                yaml.safe_dump(overrides, sort_keys=False))
        else:
            settings.save()
            write_text(storage_join(settings.experiment_uri, SMART_CONFIG_FILE),
                       yaml.safe_dump(overrides, sort_keys=False))
    print(f"smart-tuner: sweep {name!r}: {settings.num_samples} trials, {settings.max_concurrent} "
          f"at a time, scheduler {settings.scheduler}, folder {settings.experiment_uri}", flush=True)
    start_ray(args.verbose, settings.experiment_uri if is_remote(storage) else experiment_dir)
    _fit(tuner, settings)
    return _finish(settings, settings.experiment_uri, cfg)   # a URI too (Ray's drops s3://)


@contextlib.contextmanager
def _new_experiment(experiment_dir: Path, local: bool) -> Iterator[None]:
    """Create the experiment folder (one line when it cannot be); should anything fail before
    the sweep starts, remove what was created, so a failed start never blocks the name."""
    existed = experiment_dir.exists()  # and empty: cmd_tune refuses a folder holding files
    if local:
        make_folder(experiment_dir, "--storage: experiment folder")
    try:
        yield
    except BaseException:
        if local:
            shutil.rmtree(experiment_dir, ignore_errors=True)
            if existed:
                experiment_dir.mkdir()
        raise


def cmd_resume(args: argparse.Namespace) -> int:
    """``smart-tuner resume NAME``: Tuner.restore with unfinished and errored trials resumed."""
    storage = resolve_storage(args.storage)
    experiment_dir = storage_join(storage, args.name)
    if is_empty(experiment_dir) if is_remote(storage) else not Path(experiment_dir).is_dir():
        raise SweepError(f"no experiment {args.name!r} in {storage}; check NAME and --storage "
                         "(default ./runs)")
    settings = SweepSettings.load(experiment_dir)
    if not is_remote(storage):
        check_writable(experiment_dir, "--storage: experiment folder")  # Ray writes there at once
    if settings.storage != storage:  # the folder was moved: follow it
        settings = SweepSettings(**{**settings.__dict__, "storage": storage})
    check_resumed_dataset(experiment_dir)   # a damaged feature cache: one line, before Ray
    print(f"smart-tuner: resuming sweep {args.name!r} in {experiment_dir}", flush=True)
    start_ray(args.verbose, experiment_dir if is_remote(storage) else Path(experiment_dir))
    _fit(restore_tuner(settings), settings)
    return _finish(settings, settings.experiment_uri)


def cmd_analyze(args: argparse.Namespace) -> int:
    """``smart-tuner analyze NAME|PATH``: write report.md + curves (+ report.html) and print it.

    NAME is looked up in --storage; a path (one with a '/', or an existing folder when --storage is
    not given) is used as the experiment folder itself. A remote --storage (s3://...) is read
    into a local working copy and report.md + curves are uploaded back (tuner/raytune/storage.py).
    """
    from tuner.reporting.analysis import analyze
    from tuner.reporting.analysis_report import to_markdown, write_html, write_report

    storage = resolve_storage(args.storage)
    if is_remote(storage):
        analysis = analyze(fetch_experiment(storage, args.name))
        path = publish_report(storage, args.name, write_report(analysis))
    else:
        analysis = analyze(experiment_folder(args.name, args.storage))
        path = str(write_report(analysis))
    print(to_markdown(analysis))
    print(f"report: {path}")
    if args.html:
        print(f"html:   {write_html(analysis)}")
    return 0


def experiment_folder(name: str, storage: str | None) -> Path:
    """``analyze``'s NAME|PATH: a name in --storage (default ./runs), else a path as given."""
    in_storage = Path(resolve_storage(storage)) / name
    if storage is not None or in_storage.is_dir():
        return in_storage
    return Path(name).expanduser().resolve()


def start_ray(verbose: bool, experiment_dir: Path) -> None:
    """Start (or join, with RAY_ADDRESS) Ray before the sweep; without -v quietly.

    Quiet: Ray logs errors only and does not forward the trials' own output (it stays in Ray's
    log folder); Optuna and MLflow log warnings only; Optuna's "step already reported" warning,
    which every rollback triggers (the searcher sees a validation step again), is dropped.
    Smart Tuner's own log (each intervention line, and the problems seen with it that were not
    acted on) goes to ``<experiment>/smart_tuner.log``.
    """
    import logging
    import warnings

    import ray

    log = logging.getLogger("tuner")
    for old in [h for h in log.handlers if getattr(h, "smart_tuner_log", False)]:
        log.removeHandler(old)  # an earlier sweep of this process
        old.close()
    if "://" not in str(experiment_dir):
        handler = logging.FileHandler(experiment_dir / "smart_tuner.log", encoding="utf-8")
        handler.smart_tuner_log = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    # Ray's classic console output: the new engine prints an experiment header and its own
    # TensorBoard hint (into Ray's staging folder) even at verbose=0; the classic one prints
    # nothing at verbose=0 and its CLIReporter tables with -v
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if not verbose:
        import optuna

        # its warning about experiment snapshots forced by CheckpointConfig(num_to_keep)
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=r".*`step=\d+` is already reported")
    if not ray.is_initialized():
        ray.init(logging_level=logging.INFO if verbose else logging.ERROR, log_to_driver=verbose)


def cmd_corpus(args: argparse.Namespace) -> int:
    """``smart-tuner corpus DIR``: build the built-in eSpeak NG corpus and its mel features.

    Both are cached: a complete corpus is reused, and the feature cache is keyed by the audio
    settings and the metadata, so re-running costs a second.
    """
    from model.corpus import build_corpus
    from model.data import prepare_features

    check_writable(args.dir, "corpus folder")
    out = build_corpus(args.dir, n_utterances=args.n, seed=args.seed, progress=True)
    print(f"corpus: {out}")
    if not args.no_features:
        print(f"features: {prepare_features(out, progress=True)}")
    return 0


def _fit(tuner: Any, settings: SweepSettings) -> Any:
    """``tuner.fit()``. Ray turns a first Ctrl+C into a clean stop (state saved, fit returns);
    a second one raises KeyboardInterrupt, which the CLI reports with the resume command."""
    hide_ray_restore_hint()
    try:
        return tuner.fit()
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"continue with `smart-tuner resume {settings.name} --storage "
                                f"{settings.storage}`") from None


def _finish(settings: SweepSettings, experiment_path: str, cfg: Any | None = None) -> int:
    """Summary, then the closing lines (failed trials, resume command); the exit status
    (tuner/raytune/sweep_exit.py: 0 ok, 1 a trial errored or diverged, 130 interrupted)."""
    from tuner.reporting.analysis import ExperimentNotFoundError

    ends = trial_ends(experiment_path)
    try:
        analysis = print_summary(settings, cfg, interrupted={e.trial_id for e in ends if e.unfinished})
        outcomes = {t.trial_id: t.outcome for t in analysis.trials}
        ends = [dataclasses.replace(e, outcome=outcomes.get(e.trial_id)) for e in ends]
    except ExperimentNotFoundError:  # interrupted before any trial reported
        print("\nno trial has reported a result yet")
    for line in closing_lines(ends, settings.name, settings.storage, settings.num_samples):
        print(line)
    return exit_status(ends, settings.num_samples)


def best_checkpoints(experiment_dir: Path, metric: str, mode: str) -> dict[str, str]:
    """Trial id -> path of its best kept checkpoint by ``metric`` (Ray's experiment state)."""
    try:
        from ray.tune import ExperimentAnalysis

        ea = ExperimentAnalysis(str(experiment_dir), default_metric=metric, default_mode=mode)
        found = {str(t.trial_id): ea.get_best_checkpoint(t) for t in ea.trials}
    except Exception:  # no experiment state (a dead driver before the first save): no paths
        return {}
    return {t: str(c.path) for t, c in found.items() if c is not None}


def print_summary(settings: SweepSettings, cfg: Any | None = None,
                  interrupted: Collection[str] = ()) -> Any:
    """The hint block after a sweep: the summary ranked by the sweep's metric (best trial marked,
    with its best checkpoint), the interventions, then report, MLflow and TensorBoard commands;
    returns the Analysis. The same summary, report and best checkpoint go to the sweep's MLflow
    parent run.

    ``cfg``: the SmartConfig the sweep ran with (default: the one saved in the experiment folder).
    ``interrupted``: ids of the trials an interruption left unfinished (outcome "interrupted").
    """
    from tuner.reporting.analysis import analyze
    from tuner.reporting.analysis_report import ranked, summary_table, write_report

    experiment_dir = fetch_experiment(settings.storage, settings.name)
    analysis = analyze(experiment_dir, cfg)
    for trial in analysis.trials:
        if trial.trial_id in interrupted:
            trial.outcome = "interrupted"
    local_report = write_report(analysis)
    report = publish_report(settings.storage, settings.name, local_report)  # remote: uploaded
    order = ranked(analysis, settings.metric, settings.mode)
    checkpoints = best_checkpoints(experiment_dir, settings.metric, settings.mode)
    best = order[0] if order and settings.metric in order[0].final else None
    print()
    print(f"Summary, ranked by the final {settings.metric} ({settings.mode}); * = best trial")
    print(summary_table(analysis, settings.metric, settings.mode))
    issues = [(t.trial_id, i) for t in order for i in t.issues]
    if issues:
        print()
    for trial_id, issue in issues[:20]:
        print(f"  {trial_id}: {issue}")
    if len(issues) > 20:
        print(f"  ... {len(issues) - 20} more in the report")
    print()
    if best is not None:
        value = best.final[settings.metric]
        print(f"best trial:  {best.trial_id} ({settings.metric} {value:.4g})")
        if best.trial_id in checkpoints:
            print(f"checkpoint:  {checkpoints[best.trial_id]}")
    print(f"report:      {report}")
    print(f"MLflow:      mlflow ui --backend-store-uri {settings.tracking_uri}")
    print(f"TensorBoard: tensorboard --logdir {settings.experiment_uri}")
    _summary_to_mlflow(settings, analysis, local_report, best,
                       None if best is None else checkpoints.get(best.trial_id))
    return analysis


def _summary_to_mlflow(settings: SweepSettings, analysis: Any, report: Path, best: Any,
                       checkpoint: str | None) -> None:
    from tuner.reporting.analysis_report import summary_table
    from tuner.reporting.mlflow_callback import log_sweep_summary

    summary = settings.experiment_dir / "summary.txt"
    summary.write_text(summary_table(analysis, settings.metric, settings.mode) + "\n")
    metrics = {"trials": len(analysis.trials),
               "interventions": sum(len(t.interventions) for t in analysis.trials)}
    tags = {}
    if best is not None:
        metrics[f"best.{settings.metric}"] = best.final[settings.metric]
        tags = {"smart_tuner.best_trial": best.trial_id}
    try:
        log_sweep_summary(settings.tracking_uri, settings.name, metrics=metrics, tags=tags,
                          files=[report, summary, *analysis.images],
                          best=None if best is None or checkpoint is None
                          else (best.trial_id, Path(checkpoint)))
    except Exception as err:  # the console summary stands on its own
        print(f"smart-tuner: could not log the summary to MLflow: {err}")
