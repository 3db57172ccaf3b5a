"""cluster.yaml through Ray's own config preparation and schema, and what the recipe relies on.

No AWS is reached: ``prepare_config`` + ``validate_config`` are what ``ray up`` runs first
(ray/autoscaler/_private/util.py), and ``_check_ami`` is the AWS launcher's image step (it maps
"" / ``latest_dlami`` to Ray's own AMI table). The checks: the images are not Ray's table
(Ubuntu 18.04, CUDA 11.2, Python < 3.10); every pip install uses constraints.txt, which pins the
versions installed here; the dataset path of search_spaces/tacotron2.yaml is where the recipe
syncs it, on the shared mount; no failure is hidden; PostgreSQL (no SQLite) behind MLflow and the
recovery study; dashboard and MLflow on localhost; spot GPU workers.
"""

from __future__ import annotations

import copy
import re
import shlex
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ray")
from ray.autoscaler._private.util import prepare_config, validate_config  # noqa: E402

from tuner.core.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND_LISTS = ("initialization_commands", "setup_commands", "head_setup_commands",
                 "worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


@pytest.fixture(scope="module")
def prepared(raw: dict[str, Any]) -> dict[str, Any]:
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)          # Ray's JSON schema: raises on any bad field
    return config


def _commands(config: dict[str, Any]) -> list[str]:
    return [c for key in COMMAND_LISTS for c in config.get(key, [])]


def _header_command(prefix: str) -> list[str]:
    """The words of the header's first recipe line starting with ``prefix`` (e.g. rsync-up)."""
    for line in (ROOT / "cluster.yaml").read_text().splitlines():
        if line.startswith("#") and prefix in line:
            return shlex.split(line.lstrip("# ").strip())
    raise AssertionError(f"cluster.yaml's header has no {prefix!r} line")


def _tune_args() -> list[str]:
    """The words of the ``smart-tuner tune`` command inside the header's ``ray exec`` line."""
    return shlex.split(_header_command("smart-tuner tune")[-1].split("&&")[-1])


def _recipe_lines(text: str, prefix: str) -> list[str]:
    """Lines (comment markers and trailing comments removed) that start with ``prefix``."""
    out = []
    for line in text.splitlines():
        line = line.lstrip("#").strip().split("  #")[0].strip()
        if line.startswith(prefix):
            out.append(line)
    return out


def test_readme_recipe_is_the_headers(raw: dict[str, Any]) -> None:
    header = _recipe_lines((ROOT / "cluster.yaml").read_text().split("cluster_name:")[0], "ray ")
    readme = _recipe_lines((ROOT / "README.md").read_text(), "ray ")
    assert len(header) >= 8 and set(header) <= set(readme), set(header) - set(readme)


def test_images_are_not_rays_old_default(prepared: dict[str, Any]) -> None:
    from ray.autoscaler._private.aws.config import DEFAULT_AMI, DEFAULT_AMI_NAME, _check_ami

    assert "18.04" in DEFAULT_AMI_NAME   # why `latest_dlami` cannot be used (see the header)
    config = copy.deepcopy(prepared)
    _check_ami(config)
    images = {name: t["node_config"]["ImageId"]
              for name, t in config["available_node_types"].items()}
    assert not set(images.values()) & set(DEFAULT_AMI.values()), images
    assert images["gpu_worker"].startswith(
        "resolve:ssm:/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/")
    assert images["head"].startswith("resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/")


def test_every_install_uses_the_constraints_of_this_install(prepared: dict[str, Any]) -> None:
    installs = [c for c in _commands(prepared) if re.search(r"\bpip install\b", c)
                and "--upgrade pip" not in c]
    assert installs, "no pip install in the set-up"
    assert all("-c ~/smart-tuner/constraints.txt" in c for c in installs), installs
    assert any("[aws,postgres]" in c for c in installs)   # boto3 + ray[default]; psycopg
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    makefile = (ROOT / "Makefile").read_text()
    torch_pin = re.search(r"TORCH_SPEC \?= torch==(\S+)", makefile).group(1)
    assert pins["torch"] == torch_pin and f'"torch=={torch_pin}"' in " ".join(installs)
    stale = {name: (pins.get(name), metadata.version(name).split("+")[0])
             for name in ("torch", "ray", "optuna", "mlflow", "numpy", "pyyaml")
             if pins.get(name) != metadata.version(name).split("+")[0]}
    assert not stale, f"constraints.txt differs from this install {stale}: run `make constraints`"
    for package in ("boto3", "aiohttp-cors", "opencensus"):   # aws extra: launcher, ray[default]
        assert package in pins, package
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("boto3") for r in extras["aws"])
    assert any(r.startswith("ray[default]") for r in extras["aws"])


def test_no_set_up_failure_is_hidden(prepared: dict[str, Any]) -> None:
    for command in _commands(prepared):
        assert not re.search(r"\|\|\s*(echo|true|:)(\s|$)", command), command
        assert not re.search(r";\s*true\s*$", command), command
    mount = next(c for c in prepared["initialization_commands"] if "mount -t nfs4" in c)
    assert mount.startswith("mountpoint -q /shared || sudo mount")   # mounted once; a failure fails


def test_data_path_is_what_the_recipe_syncs(prepared: dict[str, Any]) -> None:
    space = yaml.safe_load((ROOT / "search_spaces" / "tacotron2.yaml").read_text())
    rsync = _header_command("ray rsync-up cluster.yaml")
    assert space["config"]["data_dir"] == rsync[-1].rstrip("/") == "/shared/data/LJSpeech-1.1"
    assert any(" /shared" in c and "mount -t nfs4" in c for c in prepared["initialization_commands"])
    tune = _tune_args()
    assert tune[tune.index("--search-space") + 1] == "search_spaces/tacotron2.yaml"
    assert tune[tune.index("--storage") + 1] == "/shared/runs"


def test_postgresql_behind_mlflow_and_the_recovery_study(prepared: dict[str, Any]) -> None:
    commands = _commands(prepared)
    assert not any("sqlite" in c for c in commands)
    assert any("apt-get" in c and "postgresql" in c for c in prepared["head_setup_commands"])
    server = next(c for c in prepared["head_start_ray_commands"] if "bin/mlflow server" in c)
    assert '--backend-store-uri "postgresql://' in server and "--host 127.0.0.1" in server
    cfg = load_config(ROOT / "cluster_config.yaml")
    assert cfg.optuna.storage.startswith("postgresql://")
    for db in ("mlflow", "recovery"):
        assert any(f"CREATE DATABASE {db}" in c for c in prepared["head_setup_commands"]), db
    assert _tune_args()[_tune_args().index("--config") + 1] == "cluster_config.yaml"


def test_dashboard_local_and_workers_on_spot(prepared: dict[str, Any]) -> None:
    head = " ".join(prepared["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head
    worker = prepared["available_node_types"]["gpu_worker"]
    assert worker["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"
    assert worker["resources"]["GPU"] == 1
    assert prepared["available_node_types"]["head"]["resources"]["CPU"] == 0
    assert any("torch.cuda.is_available()" in c for c in prepared["worker_setup_commands"])
