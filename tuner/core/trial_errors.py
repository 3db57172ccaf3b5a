"""Why a trial failed, read from Ray's error types: its node was lost, memory ran out, or it raised.

Ray hands Tune the error of a failed trial (``trial.get_pickled_error()`` reads it back): a
``RayTaskError`` wrapping what the trial raised, or a ``RayActorError`` when the trial's actor
(its process) went away. :func:`classify` sorts it into one of three kinds, without starting Ray
(only class names, attributes and messages are read, so a table of real Ray exceptions tests it):

- ``node_lost``: the node under the trial died, was preempted (spot instance taken back, Ray's
  ``preempted`` flag), or the actor is unreachable for now: ``NodeDiedError``,
  ``LocalRayletDiedError``, ``ActorUnavailableError``, any ``RayActorError`` with
  ``preempted=True``, and an ``ActorDiedError`` whose message says its node died or was
  preempted ("The actor died because its node has died", "the actor's node was preempted").
  Nothing is wrong with the trial: the SmartScheduler retries it unchanged from its latest
  checkpoint, and the loss counts against neither Ray's ``max_failures`` nor
  ``max_recoveries_per_trial``.
- ``out_of_memory``: Ray's memory monitor killed the worker (``ray.exceptions.OutOfMemoryError``,
  or an ``ActorDiedError`` saying so: "... killed due to memory pressure (OOM)" /
  ``NODE_OUT_OF_MEMORY``), or the trial raised ``torch.OutOfMemoryError`` / ``MemoryError`` /
  "CUDA out of memory": retried with the ``out_of_memory`` adjustment of
  ``training_recovery.actions`` (default: ``batch_size`` halved, min 8).
- ``trial_crash``: anything else the trial raised (and a worker process that died on its own):
  retried with the ``trial_crash`` adjustment (default: the same batch halving).

An error that cannot be read back (``None``) counts as ``trial_crash``.
"""

from __future__ import annotations

from dataclasses import dataclass

NODE_LOST = "node_lost"
OUT_OF_MEMORY = "out_of_memory"
TRIAL_CRASH = "trial_crash"
ERROR_KINDS: tuple[str, ...] = (NODE_LOST, OUT_OF_MEMORY, TRIAL_CRASH)

# Class names (anywhere in the error's MRO) and message fragments (lower case) per kind.
_NODE_TYPES = ("NodeDiedError", "LocalRayletDiedError", "ActorUnavailableError")
_NODE_TEXT = ("its node has died", "node was preempted", "node it was running on is dead",
              "node is dead", "raylet died", "is unavailable:")
_OOM_TYPES = ("OutOfMemoryError", "MemoryError")
_OOM_TEXT = ("out of memory", "out_of_memory", "memory pressure", "running low on memory",
             "memoryerror")   # also a traceback's last line: "MemoryError", "torch.OutOfMemoryError"

__all__ = ["ERROR_KINDS", "NODE_LOST", "OUT_OF_MEMORY", "TRIAL_CRASH", "TrialError", "classify"]


@dataclass(frozen=True)
class TrialError:
    """A classified trial error. kind: one of ERROR_KINDS; error_type: the class name of the
    error (the cause inside a RayTaskError); message: its first non-empty line (<= 200 chars)."""
    kind: str
    error_type: str
    message: str

    def describe(self) -> str:
        """E.g. ``node lost (ActorDiedError: The actor died because its node has died...)``."""
        label = {NODE_LOST: "node lost", OUT_OF_MEMORY: "out of memory",
                 TRIAL_CRASH: "trial crashed"}[self.kind]
        return f"{label} ({self.error_type}: {self.message})" if self.message else \
            f"{label} ({self.error_type})"


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _cause(error: BaseException) -> BaseException:
    """The exception a RayTaskError wraps (what the trial raised), else the error itself."""
    seen = 0
    while "RayTaskError" in _names(error) and seen < 5:
        inner = getattr(error, "cause", None)
        if not isinstance(inner, BaseException) or inner is error:
            break
        error, seen = inner, seen + 1
    return error


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= 200 else line[:197] + "..."
    return ""


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a broken __str__ must not break the classification
        return ""


def classify(error: BaseException | None) -> TrialError:
    """The kind of a trial's error (see the module docstring)."""
    if error is None:
        return TrialError(TRIAL_CRASH, "unknown", "the error could not be read back")
    cause = _cause(error)
    names = _names(error) | _names(cause)
    text = f"{_text(error)}\n{_text(cause)}".lower()
    kind = TRIAL_CRASH
    if getattr(error, "preempted", False) is True or getattr(cause, "preempted", False) is True:
        kind = NODE_LOST
    elif names & set(_OOM_TYPES) or any(t in text for t in _OOM_TEXT):
        kind = OUT_OF_MEMORY
    elif names & set(_NODE_TYPES) or any(t in text for t in _NODE_TEXT):
        kind = NODE_LOST
    return TrialError(kind, type(cause).__name__, _first_line(_text(cause)))
