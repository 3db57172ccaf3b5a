"""Build, run and resume a Ray Tune sweep of ``train_tts`` from a search space (used by the CLI).

Experiment folder: ``<storage>/<name>`` (Ray's ``RunConfig(storage_path, name)``; ``storage``
defaults to ``./runs``, made absolute). Smart Tuner adds to it:
- ``smart_tuner_sweep.json``: how the sweep was started (search space, resources, scheduler,
  metric, mode, tracking URI), read by ``resume``;
- ``smart_tuner_config.yaml``: the smart_tuner overrides in force (search space section, then
  ``--config`` merged over it), read by ``analyze`` and ``resume``;
- ``mlflow.db`` + ``mlartifacts/`` (unless ``MLFLOW_TRACKING_URI`` points elsewhere);
- ``interventions.jsonl``, ``smart_tuner_state.jsonl`` (its state journal), ``recovery.db``
  (SmartScheduler);
- ``report.md`` and ``curves_*.png`` (analysis).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tuner.contract import SMART_CONFIG_FILE, SWEEP_FILE
from tuner.errors import UserError, read_yaml
from tuner.folders import check_writable, make_folder
from tuner.raytune.search_space import SCHEDULERS, SearchSpace
from tuner.raytune.storage import is_remote, read_text, working_copy, write_text
from tuner.raytune.storage import join as storage_join

__all__ = [
    "SweepError",
    "SweepSettings",
    "SWEEP_FILE",
    "SMART_CONFIG_FILE",
    "resolve_storage",
    "smart_config",
    "check_sweep",
    "check_optuna_storage",
    "make_scheduler",
    "check_resumed_dataset",
    "ensure_dataset",
    "build_tuner",
    "restore_tuner",
]



class SweepError(UserError):
    """A user mistake about the sweep itself (name taken, unknown name, bad option value)."""


@dataclass(frozen=True)
class SweepSettings:
    """The resolved options of one sweep (search-space values with command-line overrides)."""

    search_space: str
    storage: str
    name: str
    num_samples: int
    max_concurrent: int
    cpus_per_trial: float
    gpus_per_trial: float
    scheduler: str
    metric: str
    mode: str
    tracking_uri: str
    # checkpoints kept per trial: this many best by ``metric``, plus the latest and the last
    # healthy one (pinned by SmartScheduler); None keeps every checkpoint
    keep_checkpoints: int | None = 1

    @property
    def experiment_uri(self) -> str:
        """``<storage>/<name>``: a local folder or a URI (``s3://bucket/prefix/name``)."""
        return storage_join(self.storage, self.name)

    @property
    def experiment_dir(self) -> Path:
        """The local experiment folder (for remote storage its working copy, tuner/raytune/storage.py)."""
        if is_remote(self.storage):
            return working_copy(self.experiment_uri)
        return Path(self.storage) / self.name

    def save(self) -> str:
        path = storage_join(self.experiment_uri, SWEEP_FILE)
        if is_remote(path):
            write_text(path, json.dumps(asdict(self), indent=2))
        else:
            Path(path).write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, experiment_dir: str | Path) -> SweepSettings:
        path = storage_join(str(experiment_dir), SWEEP_FILE)
        try:
            text = read_text(path) if is_remote(path) else Path(path).read_text()
        except (FileNotFoundError, IsADirectoryError):
            raise SweepError(
                f"{path} not found: {experiment_dir} was not started by `smart-tuner tune`; "
                "check NAME and --storage") from None
        return cls(**json.loads(text))


def resolve_storage(storage: str | None) -> str:
    """``--storage``: a URI (``s3://...``) as is, a local folder made absolute (default ./runs)."""
    if storage and "://" in storage:
        return storage
    return str(Path(storage or "runs").expanduser().resolve())


def default_name(search_space: str | Path) -> str:
    """``<search space stem>-<UTC date-time>``, e.g. ``quickstart-20261125-001500``."""
    return f"{Path(search_space).stem}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"


def smart_config(space_overrides: dict[str, Any], config_path: str | None) -> tuple[Any, dict]:
    """The SmartConfig in force and the overrides dict that produced it.

    Order: packaged tuner/core/config.yaml <- the search space's ``smart_tuner`` section <- ``--config``.
    A bad ``--config`` file raises ConfigError naming that file.
    """
    from tuner.core.config import config_from_dict, current_layout, deep_merge, load_config

    overrides = current_layout(space_overrides, "search space smart_tuner section")
    if config_path is not None:
        load_config(config_path)  # validates the file on its own, errors name it, V2 keys announced
        user = read_yaml(Path(config_path), UserError) or {}
        overrides = deep_merge(overrides, current_layout(user, config_path, announce=False))
    return config_from_dict(overrides, source="search space smart_tuner section"
                            + (f" + {config_path}" if config_path else "")), overrides


def check_sweep(space: SearchSpace, settings: SweepSettings, cfg: Any) -> None:
    """What Ray would find out only after the experiment folder exists: a search space with
    nothing to search, PBT without a top-level searched value, an ``optuna.storage`` that cannot be
    opened, a ``--storage`` folder that cannot be written. Creates nothing."""
    if not space.search:
        raise SweepError(
            f"{space.path}: search: is empty or missing, so there is nothing to tune; add at least "
            "one searched value, e.g. search: {seed: {randint: [0, 1000]}}")
    if settings.scheduler == "pbt" and all("." in p.name for p in space.search):
        raise SweepError(f"{space.path}: --scheduler pbt mutates top-level search: values only; "
                         "search at least one such as learning_rate")
    check_optuna_storage(cfg.optuna.storage)
    if "://" not in settings.storage:
        check_writable(settings.storage, "--storage")


def check_optuna_storage(url: str | None) -> None:
    """``optuna.storage``: null, or a database URL whose driver is installed and which opens
    (SQLite: its folder can be written; a server: one connection, 10 s timeout)."""
    if url is None:
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    fix = ("use sqlite:////absolute/path/recovery.db, postgresql://user@host/db, or null for the "
           "default (recovery.db in the experiment folder)")
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as err:
        raise SweepError(f"optuna.storage {url!r} cannot be opened ({_first_line(err)}); "
                         f"{fix}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            check_writable(Path(parsed.database).parent, f"optuna.storage {url!r}: folder")
        return
    timeout = {"connect_timeout": 10} if parsed.get_backend_name() in ("postgresql", "mysql") else {}
    try:
        with create_engine(url, connect_args=timeout).connect():
            pass
    except (SQLAlchemyError, ImportError) as err:
        raise SweepError(f"optuna.storage {url!r} cannot be opened "
                         f"({_first_line(getattr(err, 'orig', None) or err)}); {fix}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines() or [type(err).__name__])[0][:200]


def ensure_dataset(space: SearchSpace) -> dict[str, Any]:
    """The trial config's dataset, built and featurised once before the sweep.

    ``data_dir`` not set -> the built-in corpus at train_tts's default folder (built when missing);
    set and missing -> built there when the search space says ``build_corpus: true``. Features are
    computed once here (with a progress bar) so trials only load the cache, and an existing cache
    is read whole first (a truncated one is named with its fix before any trial starts).
    Returns the fixed config with an absolute ``data_dir``.
    """
    from tuner.training.settings import DEFAULT_CORPUS_DIR

    config = dict(space.config)
    data_dir = Path(config.get("data_dir") or DEFAULT_CORPUS_DIR)
    builtin = config.get("data_dir") is None or space.build_corpus
    if not (data_dir / "metadata.csv").is_file():
        if not builtin:
            raise SweepError(
                f"{space.path}: config.data_dir = {str(data_dir)!r} holds no metadata.csv; point it "
                "at an LJSpeech-layout dataset or set build_corpus: true to build the built-in one")
        from model.corpus import build_corpus

        check_writable(data_dir, "config.data_dir (the built-in corpus goes there)")
        print(f"smart-tuner: building the built-in corpus in {data_dir} (once)", flush=True)
        build_corpus(data_dir, progress=True)
    from model.data import check_features, prepare_features

    try:
        features = prepare_features(data_dir, cache_dir=config.get("cache_dir"), progress=True)
    except OSError as err:  # e.g. a dataset on a read-only disk: the cache beside it fails
        raise SweepError(f"cannot write the feature cache: {err.filename or data_dir}: "
                         f"{err.strerror or err}; set config.cache_dir to a writable folder") from None
    check_features(features)
    config["data_dir"] = str(data_dir.resolve())
    return config


def check_resumed_dataset(experiment_dir: str | Path) -> None:
    """Before ``resume``: the feature cache the sweep's trials load (their ``params.json``'s
    ``data_dir``/``cache_dir``) read whole, or rebuilt once here when it was deleted."""
    params = next(Path(experiment_dir).glob("*/params.json"), None)
    config = {} if params is None else json.loads(params.read_text(encoding="utf-8"))
    if not config.get("data_dir"):
        return
    from model.data import check_features, prepare_features

    check_features(prepare_features(config["data_dir"], cache_dir=config.get("cache_dir"),
                                    progress=True))


def make_scheduler(kind: str, cfg: Any, space: SearchSpace) -> Any:
    """``smart`` (SmartScheduler), or Ray's ``fifo``, ``asha`` or ``pbt`` for comparison."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, PopulationBasedTraining

    if kind == "smart":
        from tuner.raytune.scheduler import SmartScheduler

        return SmartScheduler(config=cfg)
    if kind == "fifo":
        return FIFOScheduler()
    max_steps = int(space.config.get("max_steps", 2000))
    interval = int(space.config.get("validation_interval", 50))
    reports = max(1, max_steps // max(1, interval))
    if kind == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=reports,
                             grace_period=max(1, reports // 4), reduction_factor=2)
    if kind == "pbt":
        mutations = {p.name: p.to_tune() for p in space.search if "." not in p.name}
        return PopulationBasedTraining(time_attr="training_iteration",
                                       perturbation_interval=max(1, reports // 4),
                                       hyperparam_mutations=mutations)
    raise SweepError(f"--scheduler {kind!r} is unknown; use one of {', '.join(SCHEDULERS)}")


def attach_listener(scheduler: Any, fn: Any) -> bool:
    """Register ``fn`` for the SmartScheduler's interventions; False for Ray's schedulers."""
    if hasattr(scheduler, "add_listener"):
        scheduler.add_listener(fn)
        return True
    supervisor = getattr(scheduler, "supervisor", None)
    if supervisor is not None and hasattr(supervisor, "add_listener"):
        supervisor.add_listener(fn)
        return True
    return False


def _trainable(settings: SweepSettings) -> Any:
    from ray import tune

    from tuner.trainable import train_tts

    return tune.with_resources(train_tts, {"cpu": settings.cpus_per_trial,
                                           "gpu": settings.gpus_per_trial})


def trial_dirname(trial: Any) -> str:
    """``train_tts_<trial id>``: short trial folder names (Ray's default appends the config)."""
    return f"{trial.trainable_name}_{trial.trial_id}"


def _checkpoint_config(settings: SweepSettings) -> Any:
    """Latest + last healthy (pinned by SmartScheduler) + ``keep_checkpoints`` best by the metric.

    Ray keeps the ``num_to_keep`` best checkpoints by ``checkpoint_score_attribute`` and always
    the latest; SmartScheduler takes the last healthy one out of Ray's deletion list
    (``_ray_compat.protect_checkpoint``). ``keep_checkpoints=None`` keeps every checkpoint.
    """
    from ray import tune

    if settings.keep_checkpoints is None:
        return tune.CheckpointConfig(num_to_keep=None)
    return tune.CheckpointConfig(num_to_keep=settings.keep_checkpoints,
                                 checkpoint_score_attribute=settings.metric,
                                 checkpoint_score_order=settings.mode)


def _run_config(settings: SweepSettings, callbacks: list, verbose: bool = False) -> Any:
    from ray import tune

    from tuner.reporting.trial_logs import trial_loggers

    return tune.RunConfig(
        storage_path=settings.storage,
        name=settings.name,
        callbacks=[*trial_loggers(), *callbacks],
        checkpoint_config=_checkpoint_config(settings),
        failure_config=tune.FailureConfig(max_failures=2),
        # Smart Tuner's own progress table (tuner/reporting/console.py) replaces Ray's output; -v adds it back
        verbose=2 if verbose else 0,
    )


def build_tuner(space: SearchSpace, settings: SweepSettings, cfg: Any,
                param_space: dict[str, Any], verbose: bool = False) -> Any:
    """The Tuner: Optuna searcher (concurrency-limited) + the chosen scheduler + callbacks
    (Smart Tuner's progress table, MLflow, TensorBoard intervention markers)."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from tuner.reporting.console import SweepProgress
    from tuner.reporting.mlflow_callback import MLflowCallback
    from tuner.reporting.trial_logs import InterventionMarkers

    scheduler = make_scheduler(settings.scheduler, cfg, space)
    callbacks = [
        SweepProgress(settings.metric, settings.mode, settings.experiment_dir),
        MLflowCallback(experiment_name=settings.name, tracking_uri=settings.tracking_uri,
                       experiment_dir=settings.experiment_dir, metric=settings.metric,
                       mode=settings.mode),
        InterventionMarkers(settings.experiment_dir),
    ]
    search_alg = None
    if settings.scheduler != "pbt":  # PBT refuses searchers; it samples param_space itself
        search_alg = ConcurrencyLimiter(OptunaSearch(), max_concurrent=settings.max_concurrent)
    tune_config = tune.TuneConfig(
        search_alg=search_alg, scheduler=scheduler, num_samples=settings.num_samples,
        metric=settings.metric, mode=settings.mode, trial_dirname_creator=trial_dirname,
        max_concurrent_trials=settings.max_concurrent if search_alg is None else None)
    return tune.Tuner(_trainable(settings), param_space=param_space, tune_config=tune_config,
                      run_config=_run_config(settings, callbacks, verbose))


def restore_tuner(settings: SweepSettings) -> Any:
    """``Tuner.restore`` of a sweep, unfinished and errored trials resumed."""
    from ray import tune

    return tune.Tuner.restore(settings.experiment_uri, trainable=_trainable(settings),
                              resume_unfinished=True, resume_errored=True)
