"""tuner.core.trial_errors.classify on a table of real Ray (and torch) exceptions, no Ray started.

The messages are the ones Ray 2.60 produces (gcs_server / raylet strings): an actor on a dead
node, on a preempted node, killed by the memory monitor, a worker that died on its own. Each is
also classified from its text alone, as the scheduler reads it when Ray's pickled copy of the
error cannot be loaded (error.txt's last "Failure #" section).
"""

from __future__ import annotations

import traceback

import pytest

ray_exceptions = pytest.importorskip("ray.exceptions")
from ray.core.generated import common_pb2  # noqa: E402
from ray.exceptions import (ActorDiedError, ActorUnavailableError, LocalRayletDiedError,  # noqa: E402
                            NodeDiedError, OutOfMemoryError, RayActorError, RayTaskError,
                            WorkerCrashedError)
from ray.tune.error import TuneError  # noqa: E402

from tuner.training.settings import TrainConfigError  # noqa: E402
from tuner.core.trial_errors import NODE_LOST, OUT_OF_MEMORY, TRIAL_CRASH, classify  # noqa: E402

ACTOR = b"\x01" * 16


def _actor_died(message: str, reason: int | None = None) -> ActorDiedError:
    info = None if reason is None else common_pb2.NodeDeathInfo(reason=reason)
    ctx = common_pb2.ActorDiedErrorContext(error_message=message, actor_id=ACTOR,
                                           class_name="ImplicitFunc", node_ip_address="10.0.0.7",
                                           node_death_info=info)
    return ActorDiedError(ctx)


def _raised(exc: BaseException) -> BaseException:
    """What Tune gets when the trial raises ``exc``: RayTaskError(<cause>) with the cause inside."""
    try:
        raise exc
    except BaseException as err:  # noqa: BLE001 - the point is to wrap anything
        return RayTaskError("train", traceback.format_exc(), err).as_instanceof_cause()


PREEMPTED = common_pb2.NodeDeathInfo.AUTOSCALER_DRAIN_PREEMPTED
CASES = [
    ("actor on a dead node", _actor_died(
        "The actor died because its node has died. Node Id: 5f3a\n"
        "\tthe actor's node was terminated unexpectedly: health check failed"), NODE_LOST),
    ("actor on a preempted node", _actor_died(
        "The actor died because its node has died. Node Id: 5f3a\n"
        "\tthe actor's node was preempted: spot instance reclaimed", PREEMPTED), NODE_LOST),
    ("preempted flag alone", RayActorError(error_msg="gone", preempted=True), NODE_LOST),
    ("actor unavailable", ActorUnavailableError("RPC error: connection reset", ACTOR), NODE_LOST),
    ("task on a dead node", NodeDiedError(
        "Task failed because the node it was running on is dead or unavailable. Node IP: "
        "10.0.0.7, node ID: 5f3a."), NODE_LOST),
    ("local raylet died", LocalRayletDiedError(), NODE_LOST),
    ("memory monitor killed the actor", _actor_died(
        "The actor is dead because its worker process has died. Worker exit type: "
        "NODE_OUT_OF_MEMORY Worker exit detail: Task was killed due to the node running low on "
        "memory."), OUT_OF_MEMORY),
    ("memory monitor killed a task", OutOfMemoryError(
        "Task was killed due to the node running low on memory. Memory on the node was 30.5GB / "
        "31.0GB (0.98)"), OUT_OF_MEMORY),
    ("CUDA out of memory raised", _raised(_torch_oom := __import__("torch").OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB")), OUT_OF_MEMORY),
    ("host MemoryError raised", _raised(MemoryError()), OUT_OF_MEMORY),
    ("ValueError raised", _raised(ValueError("shapes (3,) and (4,) differ")), TRIAL_CRASH),
    ("TrainConfigError raised", _raised(TrainConfigError("batch_size must be >= 1")), TRIAL_CRASH),
    ("worker segfault", _actor_died(
        "The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR "
        "Worker exit detail: Worker unexpectedly exits with a connection error code 2."),
     TRIAL_CRASH),
    ("worker crashed", WorkerCrashedError(), TRIAL_CRASH),
    ("actor died, no cause", ActorDiedError(None), TRIAL_CRASH),
    ("unreadable error", None, TRIAL_CRASH),
]


@pytest.mark.parametrize("name, error, kind", CASES, ids=[c[0] for c in CASES])
def test_classify(name: str, error: BaseException | None, kind: str) -> None:
    found = classify(error)
    assert found.kind == kind, name
    assert found.describe().startswith({NODE_LOST: "node lost", OUT_OF_MEMORY: "out of memory",
                                        TRIAL_CRASH: "trial crashed"}[kind])


@pytest.mark.parametrize("name, error, kind", [c for c in CASES if c[1] is not None
                                               and c[0] != "preempted flag alone"],
                         ids=[c[0] for c in CASES if c[1] is not None
                              and c[0] != "preempted flag alone"])
def test_classify_from_the_error_text(name: str, error: BaseException, kind: str) -> None:
    """Ray's error.txt holds ``str(error)``; read back as a TuneError it classifies the same."""
    assert classify(TuneError(str(error))).kind == kind, name


def test_the_cause_names_the_error() -> None:
    found = classify(_raised(ValueError("bad value")))
    assert (found.error_type, found.message) == ("ValueError", "bad value")
    assert found.describe() == "trial crashed (ValueError: bad value)"
