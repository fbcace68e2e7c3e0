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
    # Scoring in FLOP terms: one forward pass of the bench-cpu model over 4 x (8 + 2) tokens.
    from flan_jax import flops
    gflop = flops.forward_flops(bench_decode.bench_cpu_model(), 4, 8, 2) / 1e9
    scoring = report["scoring"]
    assert scoring["model_gflop_per_call"] == round(gflop, 3)
    assert scoring["jax_gflop_s"] == pytest.approx(
        gflop / report["jax"]["score"]["seconds_median"], rel=0.01)
    assert "hf_gflop_s" not in scoring and "peak_gflop_s" not in scoring  # --no-hf, no peak
    # Greedy's one-token run is timed in the same rounds and reported apart.
    steps = report["greedy_steps"]
    assert set(steps) == {"jax"} and 0 < steps["jax"]["first_token_s"]
    assert steps["jax"]["next_token_ms"] == pytest.approx(
        1e3 * (report["jax"]["greedy"]["seconds_median"] - steps["jax"]["first_token_s"]),
        abs=0.2)


def test_scoring_rates_name_what_twice_hf_would_need():
    args = bench_decode.parse_args(["--batch", "16", "--input-length", "256",
                                    "--decode-length", "64"])
    timings = {"jax_score": (9.0, 0.25), "hf_score": (1.0, 0.5)}
    rates = bench_decode.scoring_rates(args, timings, {"jnp_dot": 320.0, "torch_mm": None})
    # bench-cpu's forward pass: a third of tools/bench.py's 212,399,554,560 per train step.
    assert rates["model_gflop_per_call"] == round(212_399_554_560 / 3 / 1e9, 3)
    assert rates["jax_gflop_s"] == round(212.399554560 / 3 / 0.25, 1)
    assert rates["hf_gflop_s"] == round(212.399554560 / 3 / 0.5, 1)
    # Twice HF's speed: HF's time halved, so twice its FLOP rate.
    assert rates["twice_hf_needs_gflop_s"] == round(2 * 212.399554560 / 3 / 0.5, 1)
    assert rates["peak_gflop_s"] == {"jnp_dot": 320.0, "torch_mm": None}


def test_a_device_count_below_one_is_refused_with_the_flag_named(capsys):
    with pytest.raises(SystemExit) as error:
        bench_decode.parse_args(["--devices", "0"])
    assert error.value.code == 2 and "--devices 0: give at least 1" in capsys.readouterr().err


def test_greedy_steps_split_the_first_token_from_the_loop():
    args = bench_decode.parse_args(["--decode-length", "65"])
    timings = {"jax_greedy": (5.0, 0.5), "jax_greedyfirst": (2.0, 0.18),
               "hf_greedy": (0.0, 0.82), "hf_greedyfirst": (0.0, 0.18)}
    steps = bench_decode.greedy_steps(args, timings)
    assert steps["jax"] == {"first_token_s": 0.18, "next_token_ms": 5.0}  # 0.32 s / 64
    assert steps["hf"] == {"first_token_s": 0.18, "next_token_ms": 10.0}
    # Twice HF's speed: 0.41 s in all, of which flan_jax's first token takes 0.18.
    assert steps["twice_hf_needs_next_token_ms"] == pytest.approx(1e3 * 0.23 / 64, abs=1e-3)
    assert bench_decode.greedy_steps(bench_decode.parse_args(["--decode-length", "1"]),
                                     timings) == {}
