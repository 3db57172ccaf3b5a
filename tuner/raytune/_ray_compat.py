"""Every use of Ray Tune internals by Smart Tuner, in one place.

Ray Tune has no public API for "pause this trial, give it a new config and resume it from an
*older* checkpoint". PBT (``ray/tune/schedulers/pbt.py: _exploit``) does it with three moves that
this module copies, and nothing else in Smart Tuner touches Ray's private state:

1. ``tune_controller.pause_trial(trial, should_checkpoint=False)`` stops the trial's actor without
   saving (the result that triggered the rollback is the unhealthy one) and marks it PAUSED;
2. ``trial.set_config(new_config)``;
3. ``trial.run_metadata.checkpoint_manager._latest_checkpoint_result = _TrainingResult(ckpt,
   metrics)``: when the scheduler picks the paused trial again, Ray restores it from this
   checkpoint, and ``metrics["training_iteration"]`` becomes the trial's iteration counter.

What Ray 2.60 does around ``on_trial_result`` (read in ``execution/tune_controller.py``):
a function trainable calling ``tune.report(metrics, checkpoint=c)`` produces one result with
``should_checkpoint=True``. ``_process_trial_result`` calls the scheduler's ``on_trial_result``
*first*; only afterwards does it schedule the actor's ``save`` task, which registers ``c`` with the
trial's checkpoint manager. The trial's next ``train`` call is held back until that save has been
processed. So inside ``on_trial_result`` for result N, ``trial.checkpoint`` is the checkpoint of
result N-1 (or older), never the one of result N; :func:`latest_checkpoint` returns it with the
metrics it was reported with, so the caller can tell which result it belongs to.

``CheckpointConfig(num_to_keep=K)`` deletes all but the K most recent checkpoints (always keeping
the latest). The last *healthy* checkpoint may be older than that: :func:`protect_checkpoint`
takes it out of the manager's deletion list, and :func:`release_checkpoint` deletes it once a
newer healthy one protects the trial; :func:`unprotect_checkpoint` hands it back to Ray's rule
when the trial ends (kept only if it ranks among the ``num_to_keep`` best by
``checkpoint_score_attribute``). With ``num_to_keep=None`` nothing is ever deleted.

Resuming promptly: after the pause, the scheduler's ``choose_trial_to_run`` returns the trial and
Ray stages it, i.e. asks its actor manager for a new actor
(``execution/tune_controller.py: _maybe_add_actors``, step 1). That manager starts pending actors
strictly first come, first served when resources free up
(``air/execution/_internal/actor_manager.py: _try_start_actors``, ``candidate_actors.pop(0)``),
and trials waiting to start were staged earlier: with ``ConcurrencyLimiter(max_concurrent=N)``
Ray keeps up to N of them staged (``_get_max_pending_trials``), and the limiter counts the
PAUSED trial as live, so it also does not replace it. The repaired trial would resume only after
all of them started (with Ray's default ``reuse_actors=False`` no cached actor short-cuts this).
PBT's exploited trials have the same queue; PBT does not fix it either (its
``choose_trial_to_run`` picks the least-trained trial for fairness, and in asynchronous mode it
pauses the *reporting* trial whenever others wait). :func:`prioritize_trial` moves the trial's
pending actor request to the head of that queue, so the freed resources go to it. The scheduler
calls it from ``choose_trial_to_run`` on the step after Ray staged the trial; that runs before the
step's ``actor_manager.next()``, which is where the paused trial's freed resources come back (a
placement group becomes ready only after the stopped actor's one is removed), so the move is in
time. Covered end to end by ``tests/test_e2e_recovery.py::test_mutated_trial_resumes_before_*``.

Trial errors: :func:`trial_error` reads the error Ray recorded for a failed trial (its driver-side
``error.pkl`` / ``error.txt``), :func:`forgive_failure` takes a lost node off
``trial.run_metadata.num_failures``, and :func:`trial_folder` gives a running trial its folder on
Ray's storage filesystem (``ray.train._internal.session.get_storage()``), where each attempt
claims the folder (tuner/training/attempts.py). Covered by ``tests/test_cluster.py`` and
``tests/test_e2e_recovery.py`` on Ray 2.60.0.

Tested by ``tests/test_ray_compat.py``: passes on Ray 2.41.0 and 2.60.0. Ray 2.40 lacks
``ray.tune.report``/``tune.Checkpoint``/``tune.get_checkpoint`` (used by train_tts and the test
trainable), so the project needs ``ray[tune]>=2.41,<2.61``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.train import Checkpoint
from ray.train._internal.session import _TrainingResult
from ray.tune.experiment import Trial

logger = logging.getLogger(__name__)

__all__ = [
    "as_checkpoint",
    "checkpoint_path",
    "experiment_dir",
    "forgive_failure",
    "latest_checkpoint",
    "mutate_trial",
    "num_to_keep",
    "prioritize_trial",
    "protect_checkpoint",
    "release_checkpoint",
    "sync_down_root_files",
    "trial_error",
    "trial_folder",
    "unprotect_checkpoint",
    "will_retry",
]

def as_checkpoint(checkpoint: Checkpoint | str | Path, filesystem: Any = None) -> Checkpoint:
    """A Ray ``Checkpoint`` from a checkpoint or a directory path (from saved state) on
    ``filesystem`` (a pyarrow filesystem; None: the local one)."""
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if filesystem is not None:
        return Checkpoint(str(checkpoint), filesystem=filesystem)
    return Checkpoint.from_directory(str(checkpoint))


def checkpoint_path(checkpoint: Checkpoint | str | Path) -> str:
    """The path of a checkpoint on its filesystem, as a plain string."""
    if isinstance(checkpoint, Checkpoint):
        return str(checkpoint.path)
    return str(checkpoint)


def experiment_dir(trial: Trial) -> Path:
    """The experiment folder of ``trial`` where Smart Tuner writes its files.

    On a local storage filesystem this is ``<storage_path>/<experiment name>`` itself, which
    survives the driver and is where ``Tuner.restore`` looks. On cloud storage it is the driver's
    local staging folder, which Ray uploads to the storage path periodically.
    """
    storage = trial.storage
    if storage.storage_filesystem.type_name == "local":
        return Path(storage.experiment_fs_path)
    return Path(storage.experiment_driver_staging_path)


def _storage_filesystem(trial: Trial) -> Any:
    """The trial's pyarrow storage filesystem (None when it has no storage context)."""
    storage = getattr(trial, "storage", None)
    return None if storage is None else storage.storage_filesystem


def sync_down_root_files(trial: Trial) -> list[str]:
    """On cloud storage, download the experiment's top-level files that the driver's local
    copy (:func:`experiment_dir`) lacks; returns their names.

    Ray's restore brings back only the ``*.json``/``*.pkl`` files of the experiment root;
    Smart Tuner's ``interventions.jsonl`` and ``recovery.db`` must come back too, before the
    scheduler opens them, or Ray's next upload would replace them with fresh ones.
    """
    import pyarrow.fs

    storage = trial.storage
    if storage.storage_filesystem.type_name == "local":
        return []
    fs, root = storage.storage_filesystem, storage.experiment_fs_path
    local = Path(storage.experiment_driver_staging_path)
    fetched = []
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
        name = info.path.rsplit("/", 1)[-1]
        if info.type != pyarrow.fs.FileType.File or (local / name).exists():
            continue
        local.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(local / name, "wb") as dst:
            dst.write(src.read())
        fetched.append(name)
    return fetched


def latest_checkpoint(trial: Trial) -> tuple[Checkpoint, dict[str, Any]] | None:
    """The trial's most recently registered checkpoint and the metrics reported with it."""
    result = trial.latest_checkpoint_result
    if result is None or result.checkpoint is None:
        return None
    return result.checkpoint, dict(result.metrics or {})


def num_to_keep(trial: Trial) -> int | None:
    """``CheckpointConfig.num_to_keep`` of the trial (None = keep every checkpoint)."""
    return trial.run_metadata.checkpoint_manager.checkpoint_config.num_to_keep


def will_retry(trial: Trial) -> bool:
    """True when Ray will restart this errored trial (``FailureConfig(max_failures)`` allows it).

    Valid inside ``on_trial_error``: Ray has already counted the failure then.
    """
    return bool(trial.should_recover())


def trial_error(trial: Trial) -> BaseException | None:
    """The error of the trial's latest failure, as Ray recorded it (None when unreadable).

    Ray writes it in ``trial.handle_error`` before ``on_trial_error`` runs, in the driver's
    staging copy of the trial folder (``trial.local_path``; uploaded to the storage later):
    pickled (``trial.pickled_error_file``) and as text (``trial.error_file``, every failure
    appended as "Failure # N (occurred at ...)"). The pickled error when it loads; else the text
    of the last failure as a TuneError (tuner/core/trial_errors.py reads its message).
    """
    from ray import cloudpickle
    from ray.tune.error import TuneError

    pickled, text_file = trial.pickled_error_file, trial.error_file
    if pickled and Path(pickled).is_file():
        try:
            with open(pickled, "rb") as f:
                return cloudpickle.load(f)
        except Exception as err:   # e.g. a cause that does not unpickle; the text still tells
            logger.debug("could not read the pickled error of %s: %s", trial, err)
    if not text_file or not Path(text_file).is_file():
        return None
    last = Path(text_file).read_text(errors="replace").split("Failure # ")[-1]
    return TuneError(last.split("\n", 1)[-1] if "\n" in last else last)


def trial_folder() -> tuple[Any, str]:
    """Inside a running trial: (pyarrow filesystem, path of the trial folder on it)."""
    from ray.train._internal.session import get_storage   # Ray's StorageContext

    storage = get_storage()
    return storage.storage_filesystem, storage.trial_fs_path


def forgive_failure(trial: Trial) -> None:
    """Take the latest failure off the trial's count for ``FailureConfig(max_failures)``.

    Ray itself does not count an error whose ``preempted`` flag is set
    (``Trial._handle_ray_actor_error``); a node that just died (spot instance without a drain
    notice, lost host) is counted. Called from ``on_trial_error`` for a lost node, so such
    losses do not use up the retries meant for crashes.
    """
    metadata = trial.run_metadata
    if metadata.num_failures > 0:
        metadata.num_failures -= 1
        metadata.invalidate_cache()


def mutate_trial(
    tune_controller: Any,
    trial: Trial,
    new_config: Mapping[str, Any],
    checkpoint: Checkpoint | str | Path | None,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Pause ``trial`` (if running), replace its config and make it resume from ``checkpoint``.

    ``checkpoint=None`` starts the trial from scratch (no restore at all). ``metrics`` are the
    metrics reported with ``checkpoint``; their ``training_iteration`` becomes the trial's
    iteration counter again. Call from ``on_trial_result`` and return ``TrialScheduler.NOOP``, or
    on a PENDING/PAUSED trial (e.g. to re-apply a mutation after ``Tuner.restore``).
    """
    if trial.status == Trial.RUNNING:
        tune_controller.pause_trial(trial, should_checkpoint=False)
    trial.set_config(dict(new_config))
    manager = trial.run_metadata.checkpoint_manager
    if checkpoint is None:
        manager._latest_checkpoint_result = None
        trial._restore_checkpoint_result = None
    else:
        manager._latest_checkpoint_result = _TrainingResult(
            checkpoint=as_checkpoint(checkpoint, _storage_filesystem(trial)),
            metrics=dict(metrics or {})
        )
    trial.invalidate_json_state()
    trial.run_metadata.invalidate_cache()


def prioritize_trial(tune_controller: Any, trial: Trial) -> bool:
    """Put ``trial``'s pending actor request first in line for resources; True if it was moved.

    ``tune_controller`` is what Ray passes to scheduler hooks (a ``TrialRunnerWrapper`` around the
    ``TuneController``, or the controller itself). Does nothing (False) while the trial has no
    pending actor request: not staged yet, already started, or already first.
    """
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    tracked = getattr(controller, "_trial_to_actor", {}).get(trial)
    manager = getattr(controller, "_actor_manager", None)
    if tracked is None or manager is None:
        return False
    queue = manager._resource_request_to_pending_actors.get(trial.placement_group_factory)
    if not queue or tracked not in queue or queue[0] is tracked:
        return False
    queue.remove(tracked)
    queue.insert(0, tracked)
    return True


def protect_checkpoint(trial: Trial, checkpoint: Checkpoint | str | Path) -> None:
    """Keep ``checkpoint`` from being deleted by ``CheckpointConfig(num_to_keep)``."""
    path = checkpoint_path(checkpoint)
    manager = trial.run_metadata.checkpoint_manager
    manager._checkpoint_results = [
        r for r in manager._checkpoint_results if checkpoint_path(r.checkpoint) != path
    ]
    trial.run_metadata.invalidate_cache()


def release_checkpoint(trial: Trial, checkpoint: Checkpoint | str | Path) -> bool:
    """Delete a protected checkpoint that is no longer needed; returns True if deleted.

    Only when the trial keeps a limited number of checkpoints (``num_to_keep`` set), and never the
    trial's latest checkpoint or one the checkpoint manager still tracks.
    """
    if num_to_keep(trial) is None:
        return False
    path = checkpoint_path(checkpoint)
    manager = trial.run_metadata.checkpoint_manager
    tracked = {checkpoint_path(r.checkpoint) for r in manager._checkpoint_results}
    latest = latest_checkpoint(trial)
    if path in tracked or (latest is not None and checkpoint_path(latest[0]) == path):
        return False
    ckpt = as_checkpoint(checkpoint)
    try:
        ckpt.filesystem.delete_dir(ckpt.path)
    except (FileNotFoundError, OSError) as err:  # already gone: nothing to free
        logger.debug("could not delete released checkpoint %s: %s", path, err)
        return False
    return True


def unprotect_checkpoint(trial: Trial, checkpoint: Checkpoint | str | Path,
                         metrics: Mapping[str, Any]) -> bool:
    """Give a protected checkpoint back to ``CheckpointConfig`` retention; True if deleted.

    For a checkpoint that is no rollback target any more (a newer healthy one replaced it, or the
    trial ended): with ``checkpoint_score_attribute`` set it joins Ray's ranked list (``metrics`` are the ones reported with it) when it is among the ``num_to_keep``
    best, and is deleted otherwise; without one it is deleted (:func:`release_checkpoint`). Never
    the latest one, nothing when ``num_to_keep`` is None.
    """
    from ray.train._internal.checkpoint_manager import _insert_into_sorted_list

    keep = num_to_keep(trial)
    if keep is None:
        return False
    manager = trial.run_metadata.checkpoint_manager
    if manager.checkpoint_config.checkpoint_score_attribute is None:
        return release_checkpoint(trial, checkpoint)  # "the K most recent": an old one goes
    path = checkpoint_path(checkpoint)
    latest = latest_checkpoint(trial)
    if any(checkpoint_path(r.checkpoint) == path for r in manager._checkpoint_results) or \
            (latest is not None and checkpoint_path(latest[0]) == path):
        return False
    result = _TrainingResult(checkpoint=as_checkpoint(checkpoint), metrics=dict(metrics))
    score = manager._get_checkpoint_score
    better = [r for r in manager._checkpoint_results if score(r) > score(result)]
    if len(better) < keep:
        _insert_into_sorted_list(manager._checkpoint_results, result, key=score)
        trial.run_metadata.invalidate_cache()
        return False
    ckpt = result.checkpoint
    try:
        ckpt.filesystem.delete_dir(ckpt.path)
    except (FileNotFoundError, OSError) as err:
        logger.debug("could not delete unprotected checkpoint %s: %s", path, err)
        return False
    return True
