"""docs/deploy/: the CronJob manifest against the published Kubernetes schemas
(kubernetes-validate, strict), its pipeline through `mftrun validate`, and the
Containerfile through hadolint. The image is not built here: this machine reaches no
container registry for the base image (see docs/ci/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from mftrun.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
BIN = Path(sys.executable).parent


def _tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120, check=False
    )


def _docs() -> dict[str, dict]:
    docs = list(yaml.safe_load_all((DEPLOY / "cronjob.yaml").read_text()))
    return {d["kind"]: d for d in docs}


def test_manifest_passes_the_kubernetes_schemas_strictly(tmp_path: Path) -> None:
    done = _tool("kubernetes-validate", "--strict", str(DEPLOY / "cronjob.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("configmap", "secret", "persistentvolumeclaim", "cronjob"):
        assert f"passed for resource {kind}/" in done.stdout + done.stderr
    # The validator does reject: a misspelt field in the same manifest fails it.
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (DEPLOY / "cronjob.yaml").read_text().replace("concurrencyPolicy:", "concurrencyPolcy:")
    )
    assert _tool("kubernetes-validate", "--strict", str(broken)).returncode != 0


def test_cronjob_runs_one_at_a_time_with_state_secrets_as_files_and_a_report_volume() -> None:
    docs = _docs()
    job = docs["CronJob"]["spec"]
    assert job["concurrencyPolicy"] == "Forbid"
    pod = job["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MFTRUN_STATE"].startswith("postgresql://")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["credentials"]["secret"]["secretName"] == docs["Secret"]["metadata"]["name"]
    assert volumes["pipelines"]["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert "persistentVolumeClaim" in volumes["reports"]
    assert env["PGPASSFILE"].startswith(mounts["credentials"])
    args = container["args"]
    assert args[0] == "apply" and args[1].startswith(mounts["pipelines"]) and "--resume" in args
    assert args[args.index("--report-dir") + 1].startswith(mounts["reports"])
    # Every credential file the pipeline reads is a key of the mounted Secret.
    pipeline = docs["ConfigMap"]["data"]["nightly-exchange.yaml"]
    for path in yaml.safe_load(pipeline)["environments"]["mft"]["credentials"].values():
        assert path["file"].startswith(mounts["credentials"] + "/")
        assert path["file"].rsplit("/", 1)[1] in docs["Secret"]["stringData"]


def test_the_configmaps_pipeline_validates(tmp_path: Path) -> None:
    for name, text in _docs()["ConfigMap"]["data"].items():
        (tmp_path / name).write_text(text)
    assert main(["validate", str(tmp_path)]) == 0


def test_containerfile_passes_hadolint_non_root_pinned_mftrun_entrypoint(tmp_path: Path) -> None:
    containerfile = DEPLOY / "Containerfile"
    done = _tool("hadolint", str(containerfile))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.strip() for line in containerfile.read_text().splitlines()]
    base = next(line for line in lines if line.startswith("FROM ")).split()[1]
    assert ":" in base and not base.endswith(":latest") and base.count(".") >= 2  # x.y.z tag
    user = [line for line in lines if line.startswith("USER ")][-1].split()[1]
    assert user.split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["mftrun"]' in lines
    # hadolint does reject: an unpinned base is flagged.
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python\nRUN pip install mftrun\n")
    assert _tool("hadolint", str(bad)).returncode != 0
