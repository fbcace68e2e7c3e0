"""tools/bench_decode.py: it runs end to end, on exactly the CPU devices it times."""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))
import bench_decode  # noqa: E402


def test_decode_benchmark_creates_only_the_devices_it_times():
    # A fresh process under XLA_FLAGS' 8 fake devices (as `make` exports): the tool asks for
    # its --devices, so XLA:CPU's intra-op pool is not sized by 8 (flan_jax.cpu_runtime).
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    result = subprocess.run(
        [sys.executable, "tools/bench_decode.py", "--no-hf", "--devices", "2", "--batch", "4",
         "--input-length", "8", "--decode-length", "2", "--num-beams", "2", "--options", "2",
         "--option-length", "2", "--repeats", "1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cpu_runtime"]["cpu_devices"] == 2 and report["cpu_runtime"]["notes"] == []
    assert report["shapes"]["devices"] == 2
    assert set(report["jax"]) == {"greedy", "beam2", "score", "rank"}
    assert all(run["seconds_median"] > 0 for run in report["jax"].values())


def test_a_device_count_below_one_is_refused_with_the_flag_named(capsys):
    with pytest.raises(SystemExit) as error:
        bench_decode.parse_args(["--devices", "0"])
    assert error.value.code == 2 and "--devices 0: give at least 1" in capsys.readouterr().err
