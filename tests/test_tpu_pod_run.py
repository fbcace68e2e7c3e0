"""tools/tpu_pod_run.py: one launch line on every worker of a TPU VM slice, through gcloud."""
import json
import os
import shlex
import subprocess
import sys

from flan_jax import launch

SCRIPT = os.path.join(launch.REPO_ROOT, "tools", "tpu_pod_run.py")
LAUNCH = ["python", "-m", "flan_jax.train", "--gin_file=gin_configs/pods/v4-8_base.gin",
          "--gin.MIXTURE_OR_TASK_NAME='flan2021_train'", "--gin.MODEL_DIR='gs://b/run 1'"]


def test_runs_the_launch_on_all_workers_with_distributed(tmp_path):
    # A stand-in gcloud on PATH that records the arguments it was given.
    record = tmp_path / "argv.json"
    fake = tmp_path / "gcloud"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"json.dump(sys.argv[1:], open({str(record)!r}, 'w'))\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    subprocess.run([sys.executable, SCRIPT, "--tpu=pod", "--zone=us-central2-b",
                    "--project=proj", "--", *LAUNCH], env=env, check=True, timeout=60)
    argv = json.loads(record.read_text())
    assert argv[:5] == ["compute", "tpus", "tpu-vm", "ssh", "pod"]
    assert "--zone=us-central2-b" in argv and "--project=proj" in argv
    assert "--worker=all" in argv
    remote = next(a for a in argv if a.startswith("--command="))[len("--command="):]
    # The remote shell sees exactly the launch words (quotes intact) plus --distributed.
    words = shlex.split(remote)
    assert words[:3] == ["cd", "flan_jax", "&&"]
    assert words[3:] == LAUNCH + ["--distributed"]


def test_distributed_is_added_once_and_only_to_entry_points():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    import tpu_pod_run
    assert tpu_pod_run.with_distributed_flag(LAUNCH + ["--distributed"]).count(
        "--distributed") == 1
    assert tpu_pod_run.with_distributed_flag(["make", "install-tpu"]) == ["make", "install-tpu"]
    dry = subprocess.run([sys.executable, SCRIPT, "--tpu=p", "--zone=z", "--workdir=",
                          "--dry_run", "--", "make", "install-tpu"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert shlex.split(dry) == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "p", "--zone=z",
                                "--worker=all", "--command=make install-tpu"]
