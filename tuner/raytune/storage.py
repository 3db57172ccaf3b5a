"""Experiment storage: a local folder or a URI (``s3://bucket/prefix``, ``gs://...``).

URIs are opened with ``pyarrow.fs.FileSystem.from_uri``, the filesystem Ray Tune itself uses
for ``RunConfig(storage_path=...)``, so credentials and endpoints come from the same place
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_DEFAULT_REGION``, an instance profile,
and ``AWS_ENDPOINT_URL`` for S3-compatible servers such as MinIO).

How Smart Tuner's own files live with a remote experiment ``<uri>/<name>``:

- ``smart_tuner_sweep.json`` and ``smart_tuner_config.yaml`` are written straight to the URI by
  ``tune`` and read from there by ``resume``;
- ``interventions.jsonl``, ``smart_tuner_state.jsonl`` and ``recovery.db`` are written by the
  SmartScheduler into the driver's local copy of the experiment folder (Ray's driver staging
  folder), which Ray uploads to the URI at each experiment checkpoint and at the end of the
  sweep; ``resume`` downloads them back before the scheduler reads them
  (``_ray_compat.sync_down_root_files``). SQLite in that copy is only ever opened by the one
  driver; a recovery study shared by several drivers needs ``optuna.storage`` (PostgreSQL);
- MLflow needs ``MLFLOW_TRACKING_URI`` (a tracking server, e.g. one backed by PostgreSQL);
- ``analyze`` (and the summary at the end of ``tune``/``resume``) downloads the experiment's
  results, without checkpoints, into a local working copy (:func:`working_copy`) and uploads
  ``report.md`` and the curve pictures back to the URI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["is_remote", "join", "filesystem", "exists", "is_empty", "read_text", "write_text",
           "working_copy", "download", "upload_files", "fetch_experiment", "publish_report",
           "SKIP_DOWNLOAD"]

# Folder names not needed for the analysis: checkpoints and TensorBoard event files stay remote.
SKIP_DOWNLOAD = ("checkpoint_", "tensorboard")


def is_remote(storage: str | os.PathLike[str]) -> bool:
    """True for a URI with a scheme other than ``file://`` (``s3://...``)."""
    text = str(storage)
    return "://" in text and not text.startswith("file://")


def join(storage: str, *parts: str) -> str:
    """``storage/part/...`` for a local folder or a URI (no ``Path`` mangling of ``s3://``)."""
    if not is_remote(storage):
        return str(Path(storage, *parts))
    base, sep, query = storage.partition("?")   # s3://b/p?endpoint_override=...: keep the query
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)]) + sep + query


def filesystem(uri: str) -> tuple[Any, str]:
    """``(pyarrow filesystem, path inside it)`` for ``uri``, resolved as Ray Tune does."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(uri)


def exists(uri: str) -> bool:
    """True when ``uri`` is a file or a folder holding anything (S3 has no empty folders)."""
    import pyarrow.fs

    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def is_empty(uri: str) -> bool:
    """True when nothing exists under ``uri``."""
    import pyarrow.fs

    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pyarrow.fs.FileType.NotFound:
        return True
    if info.type == pyarrow.fs.FileType.File:
        return False
    return not fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))


def read_text(uri: str) -> str:
    """The text of the file at ``uri`` (FileNotFoundError when it does not exist)."""
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def write_text(uri: str, text: str) -> None:
    """Write ``text`` to the file at ``uri`` (parents created)."""
    fs, path = filesystem(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(text.encode("utf-8"))


def working_copy(uri: str) -> Path:
    """The local folder that mirrors the remote experiment ``uri``.

    ``$SMART_TUNER_CACHE`` (default ``~/.cache/smart-tuner``) ``/<scheme>/<bucket>/<path>``.
    """
    scheme, rest = uri.split("://", 1)
    root = Path(os.environ.get("SMART_TUNER_CACHE") or "~/.cache/smart-tuner").expanduser()
    return root / scheme / rest.split("?", 1)[0].strip("/")


def _skipped(relative: str) -> bool:
    return any(part.startswith(SKIP_DOWNLOAD) for part in relative.split("/")[:-1])


def download(uri: str, local: Path | None = None) -> Path:
    """Copy the experiment ``uri`` (without checkpoints and TensorBoard files) to ``local``
    (default :func:`working_copy`), overwriting what is there. Returns the local folder."""
    import pyarrow.fs

    fs, root = filesystem(uri)
    local = working_copy(uri) if local is None else Path(local)
    local.mkdir(parents=True, exist_ok=True)
    selector = pyarrow.fs.FileSelector(root, allow_not_found=True, recursive=True)
    for info in fs.get_file_info(selector):
        if info.type != pyarrow.fs.FileType.File:
            continue
        relative = info.path[len(root):].lstrip("/")
        if not relative or _skipped(relative):
            continue
        target = local / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(info.path) as src, open(target, "wb") as dst:
            dst.write(src.read())
    return local


def upload_files(local: Path, uri: str, names: list[str]) -> list[str]:
    """Upload the files ``local/<name>`` that exist to ``uri/<name>``; returns their URIs."""
    fs, root = filesystem(uri)
    fs.create_dir(root, recursive=True)
    done = []
    for name in names:
        source = Path(local, name)
        if not source.is_file():
            continue
        with open(source, "rb") as src, fs.open_output_stream(f"{root}/{name}") as dst:
            dst.write(src.read())
        done.append(join(uri, name))
    return done


def fetch_experiment(storage: str, name: str) -> Path:
    """The local folder to analyse experiment ``name``: ``<storage>/<name>`` itself when local,
    else its working copy, downloaded now (ExperimentNotFoundError when nothing is there)."""
    if not is_remote(storage):
        return Path(storage) / name
    from tuner.reporting.analysis_io import ExperimentNotFoundError

    uri = join(storage, name)
    if is_empty(uri):
        raise ExperimentNotFoundError(f"no experiment {name!r} in {storage}; check NAME and "
                                      "--storage (and the credentials/AWS_ENDPOINT_URL)")
    return download(uri)


def publish_report(storage: str, name: str, report: Path) -> str:
    """Upload ``report.md`` and the ``curves_*.png`` beside it to a remote experiment; returns
    where the report now is (``report`` itself for local storage)."""
    if not is_remote(storage):
        return str(report)
    names = [report.name] + sorted(p.name for p in report.parent.glob("curves_*.png"))
    upload_files(report.parent, join(storage, name), names)
    return join(storage, name, report.name)
