r"""Runs one command on every worker (host) of a Cloud TPU VM slice, as multi-host JAX needs.

    python tools/tpu_pod_run.py --tpu=my-v4-32 --zone=us-central2-b -- \
      python -m flan_jax.train --gin_file=gin_configs/models/t5_1_1/xl.gin \
        --gin_file=gin_configs/runs/finetune.gin --gin.NUM_PARTITIONS=4 \
        --gin.PARAMETER_SHARDING=True --gin.MODEL_DIR="'gs://bucket/run'" ...

A pod slice has several hosts (a v4-32 has 4, a v4-128 16), and a JAX program spanning the
slice must be started on all of them at once with the same arguments; each process then joins
the others through jax.distributed.initialize(), which on TPU VMs finds the coordinator by
itself. This wraps

    gcloud compute tpus tpu-vm ssh TPU --zone=ZONE --worker=all --command='cd WORKDIR && CMD'

and adds --distributed to flan_jax.train / eval / infer launches that lack it (the flag that
makes them call jax.distributed.initialize()). MODEL_DIR must be storage every host can reach
(a gs:// bucket), since all hosts write their shards of each checkpoint. --dry_run prints the
gcloud command instead of running it.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from typing import Sequence

ENTRY_POINTS = ("flan_jax.train", "flan_jax.eval", "flan_jax.infer")


def with_distributed_flag(command: Sequence[str]) -> list[str]:
    """Appends --distributed to a `python -m flan_jax.{train,eval,infer}` command."""
    command = list(command)
    runs_entry_point = any(command[i] == "-m" and command[i + 1] in ENTRY_POINTS
                           for i in range(len(command) - 1))
    if runs_entry_point and "--distributed" not in command:
        command.append("--distributed")
    return command


def gcloud_command(tpu: str, zone: str, command: Sequence[str], project: str | None = None,
                   workdir: str = "flan_jax") -> list[str]:
    """The gcloud invocation that runs `command` in `workdir` on every worker of `tpu`."""
    remote = shlex.join(with_distributed_flag(command))
    if workdir:
        remote = f"cd {shlex.quote(workdir)} && {remote}"
    args = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", tpu, f"--zone={zone}", "--worker=all",
            f"--command={remote}"]
    if project:
        args.insert(6, f"--project={project}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tpu", required=True, help="the TPU VM (slice) name")
    parser.add_argument("--zone", required=True, help="its zone, e.g. us-central2-b")
    parser.add_argument("--project", default=None, help="GCP project (default: gcloud's)")
    parser.add_argument("--workdir", default="flan_jax",
                        help="directory on every worker to run in ('' for the home directory)")
    parser.add_argument("--dry_run", action="store_true", help="print, do not run")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="after --: the command every worker runs")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --, e.g. -- python -m flan_jax.train "
                     "--gin_file=gin_configs/pods/v4-8_base.gin ...")
    gcloud = gcloud_command(args.tpu, args.zone, command, args.project, args.workdir)
    if args.dry_run:
        print(shlex.join(gcloud))
        return 0
    return subprocess.run(gcloud).returncode


if __name__ == "__main__":
    sys.exit(main())
