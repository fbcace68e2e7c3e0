"""tools/bench.py: the benchmark runs end to end and its FLOP count is right."""
import functools
import json
import os
import platform
import re
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import bench  # noqa: E402
import bench_peer  # noqa: E402
from flan_jax import flops, trainer  # noqa: E402
from flan_jax.models import decoding, t5  # noqa: E402

RESULT_FIELDS = {
    "benchmark": str, "tokens_per_s": float, "step_s_median": float, "mfu": float,
    "step_s_min": float, "model_gflop_per_step": float, "xla_gflop_per_step": float,
    "peak_gflop_s": float, "peak_source": str, "devices": int, "mesh": dict, "dtype": str,
    "jax_version": str, "params": int, "step_s_all": list, "other_cpu_load": float,
    "settle": int, "minor_page_faults_per_step": int, "cpu_runtime": dict,
}


def test_main_prints_one_json_line_with_the_fields(capsys):
    result = bench.main(["--smoke", "--steps", "2", "--warmup", "1", "--devices", "2"])
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1 and json.loads(stdout) == result
    for field, kind in RESULT_FIELDS.items():
        assert isinstance(result[field], kind), (field, result[field])
    assert result["benchmark"] == "smoke"
    assert result["mesh"] == {"data": 2, "model": 1}
    assert len(result["step_s_all"]) == 2
    assert result["step_s_min"] <= result["step_s_median"]
    config = bench.smoke_config()
    assert result["tokens_per_s"] == pytest.approx(
        config.tokens_per_step / result["step_s_median"], rel=1e-3)
    assert result["mfu"] == pytest.approx(
        result["model_gflop_per_step"] / result["step_s_median"] / result["peak_gflop_s"],
        rel=1e-2)
    assert result["params"] == config.model.num_params()
    assert result["final_loss"] > 0
    assert result["settle"] == 1
    # As the entry points run (tests/conftest.py configured this process the same way).
    glibc = platform.libc_ver()[0] == "glibc"
    assert result["cpu_runtime"]["inline_dispatch"] is True
    assert result["cpu_runtime"]["heap_reuse"] is glibc
    # main() asked for the 2 devices it times; this process's JAX already had conftest's.
    assert result["cpu_runtime"]["cpu_devices"] == jax.local_device_count()
    assert (f"JAX's CPU client already had {jax.local_device_count()} devices, not 2"
            in result["cpu_runtime"]["notes"])


def test_flop_formula_by_hand_for_a_tiny_config():
    cfg = t5.T5Config(vocab_size=100, emb_dim=8, num_heads=2, head_dim=3, mlp_dim=10,
                      num_encoder_layers=1, num_decoder_layers=2,
                      mlp_activations=("gelu", "linear"))
    batch, lin, lout = 3, 5, 4
    joined = 2 * 3
    enc_layer = 4 * 8 * joined + 3 * 8 * 10  # q k v o + wi_0 wi_1 wo
    dec_layer = 4 * 8 * joined + 2 * 8 * joined + 3 * 8 * 10  # + cross q, o
    expected = 6 * (1 * enc_layer * batch * lin
                    + 2 * dec_layer * batch * lout
                    + 2 * 2 * 8 * joined * batch * lin  # cross k, v over encoder tokens
                    + 8 * 100 * batch * lout)  # logits_dense
    expected += 12 * joined * batch * (1 * lin * lin + 2 * lout * lout + 2 * lout * lin)
    assert flops.train_step_flops(cfg, batch, lin, lout).total == expected


def test_flop_formula_matches_design_for_bench_cpu():
    # shared/DESIGN.md section 2: 212.4 GFLOP per bench-cpu step.
    total = flops.train_step_flops(bench.bench_cpu_model(), 16, 256, 64).total
    assert total == 212_399_554_560


def abstract_model(name: str):
    """(BenchConfig, model, abstract params) of bench-cpu or the smoke config: lowering only
    (no compilation, abstract arrays), so bench-cpu itself is cheap to check."""
    config = bench.BenchConfig() if name == "bench-cpu" else bench.smoke_config()
    model = t5.Transformer(config.model)
    tokens = jnp.ones((1, 8), jnp.int32)
    params = nn.unbox(jax.eval_shape(functools.partial(
        model.init, encoder_input_tokens=tokens, decoder_input_tokens=tokens,
        decoder_target_tokens=tokens, enable_dropout=False), jax.random.PRNGKey(0))["params"])
    return config, model, params


@pytest.mark.parametrize("name", ["bench-cpu", "smoke"])
def test_flop_formula_agrees_with_xla_cost_analysis(name):
    config, model, params = abstract_model(name)
    batch = {k: jax.ShapeDtypeStruct(v.shape, jnp.int32)
             for k, v in bench.random_batch(config).items()}
    xla = bench.xla_forward_backward_flops(model, params, batch, trainer.LossConfig())
    formula = flops.train_step_flops(config.model, config.batch_size, config.input_length,
                                     config.target_length).total
    # XLA also counts elementwise work (softmax, GELU, norms): a little above the formula;
    # proportionally more in the tiny model, whose matmuls are tiny.
    tolerance = 0.01 if name == "bench-cpu" else 0.10
    assert formula <= xla <= formula * (1 + tolerance), (formula, xla)


@pytest.mark.parametrize("name", ["bench-cpu", "smoke"])
def test_forward_flop_formula_agrees_with_xla_cost_analysis_of_scoring(name):
    # bench_decode.py states scoring in model GFLOP/s: one decoding.score call is one forward
    # pass over the rows, a third of a training step's model FLOPs.
    config, model, params = abstract_model(name)
    rows, lin, lout = config.batch_size, config.input_length, config.target_length
    batch = {"encoder_input_tokens": jax.ShapeDtypeStruct((rows, lin), jnp.int32),
             "decoder_input_tokens": jax.ShapeDtypeStruct((rows, lout), jnp.int32),
             "decoder_target_tokens": jax.ShapeDtypeStruct((rows, lout), jnp.int32)}
    cost = jax.jit(functools.partial(decoding.score, model)).lower(params, batch).cost_analysis()
    xla = float((cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"])
    formula = flops.forward_flops(config.model, rows, lin, lout)
    tolerance = 0.01 if name == "bench-cpu" else 0.15
    assert formula <= xla <= formula * (1 + tolerance), (formula, xla)


def test_peer_rounds_interleave_flan_jax_and_hf_on_the_same_shapes(capsys):
    result = bench.main(["--smoke", "--steps", "2", "--warmup", "1", "--devices", "2",
                         "--rounds", "2", "--peer", "eager", "--no-xla-flops"])
    capsys.readouterr()
    # Each round times both contestants, in order: flan_jax first, then the peer.
    assert [list(r["step_s_median"]) for r in result["rounds"]] == [["flan_jax", "hf_eager"]] * 2
    assert len(result["step_s_all"]) == 4
    peer = result["peers"]["hf_eager"]
    assert len(peer["step_s_all"]) == 4
    assert peer["speedup_of_flan_jax"] == pytest.approx(
        peer["step_s_median"] / result["step_s_median"], rel=1e-2)
    # The peer is the same model: transformers counts the same number of parameters.
    step = bench_peer.HFTrainStep(bench.smoke_config())
    assert step.params == result["params"]
    assert len(result["loadavg"]) == 3


def test_xla_variant_is_timed_in_the_same_rounds(capsys):
    # The step compiled without YNNPACK fusions (Eigen dots) is a second contestant; both
    # train the same model from the same state, so their losses agree.
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "1", "--rounds", "2",
                         "--devices", "1", "--no-xla-flops",
                         "--xla-variant", "xla_cpu_experimental_ynn_fusion_type="])
    variant = result["peers"]["flan_jax_variant"]
    assert result["xla_variant"] == {"xla_cpu_experimental_ynn_fusion_type": ""}
    assert len(variant["step_s_all"]) == 2 and len(result["step_s_all"]) == 2
    assert set(result["rounds"][0]["step_s_median"]) == {"flan_jax", "flan_jax_variant"}
    assert variant["final_loss"] == pytest.approx(result["final_loss"], rel=1e-4)
    assert variant["speedup_of_flan_jax"] == pytest.approx(
        variant["step_s_median"] / result["step_s_median"], rel=1e-2)


def test_devices_variant_is_timed_in_the_same_rounds_on_its_own_mesh(capsys):
    # The same step data-parallel over 2 devices, beside the 1-device default: the same
    # model, state and batch, so both train to the same loss (up to the all-reduce's rounding).
    result = bench.main(["--smoke", "--steps", "1", "--warmup", "1", "--rounds", "2",
                         "--no-xla-flops", "--devices-variant", "2"])
    capsys.readouterr()
    assert result["devices"] == bench.DEFAULT_DEVICES == 1 and result["devices_variant"] == 2
    assert result["mesh"] == {"data": 1, "model": 1}
    variant = result["peers"]["flan_jax_2dev"]
    assert [list(r["step_s_median"]) for r in result["rounds"]] == [
        ["flan_jax", "flan_jax_2dev"]] * 2
    assert len(variant["step_s_all"]) == 2
    assert variant["final_loss"] == pytest.approx(result["final_loss"], rel=1e-4)


@pytest.mark.parametrize("flags", [["--devices-variant", "1"], ["--devices-variant", "0"],
                                   ["--devices", "2", "--devices-variant", "2"],
                                   ["--devices-variant", "9"]])
def test_a_devices_variant_that_compares_nothing_is_refused(flags, capsys):
    with pytest.raises(SystemExit) as error:
        bench.parse_args(flags)
    assert error.value.code == 2 and "--devices-variant" in capsys.readouterr().err


def test_measured_peak_is_the_faster_of_xla_and_torch(monkeypatch):
    monkeypatch.setattr(bench, "measure_peak_gflop_s", lambda: 200.0)
    monkeypatch.setattr(bench, "measure_torch_peak_gflop_s", lambda: 250.0)
    assert bench.measured_peak() == (250.0, "measured, torch.mm 2048^2")
    monkeypatch.setattr(bench, "measure_torch_peak_gflop_s", lambda: None)
    assert bench.measured_peak() == (200.0, "measured, jnp.dot 2048^2")


def test_torch_peak_is_a_real_measurement():
    # A 256^2 product: small, but the same code path as the 2048^2 one.
    peak = bench.measure_torch_peak_gflop_s(size=256, repeats=3)
    assert peak is not None and 0.1 < peak < 100_000


@pytest.mark.parametrize("bad", ["ynn_fusion_type=", "xla_cpu_use_xnnpack"])
def test_a_malformed_xla_variant_is_named(bad, capsys):
    with pytest.raises(SystemExit) as error:
        bench.parse_args(["--xla-variant", bad])
    assert error.value.code == 2 and bad in capsys.readouterr().err


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be >= 1, got 0."),
    ("warmup", 0, "warmup must be >= 1 (the first step compiles), got 0."),
    ("settle", -1, "settle must be >= 0, got -1."),
])
def test_bench_config_refuses_counts_that_time_nothing(field, value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bench.BenchConfig(**{field: value})


def test_settle_steps_run_untimed_at_the_start_of_every_round(capsys):
    # 1 warm-up + 2 rounds x (2 settle + 1 timed) = 7 steps, as 1 + 2 x (0 + 3): same loss.
    settled = bench.main(["--smoke", "--steps", "1", "--warmup", "1", "--rounds", "2",
                          "--settle", "2", "--no-xla-flops"])
    unsettled = bench.main(["--smoke", "--steps", "3", "--warmup", "1", "--rounds", "2",
                            "--settle", "0", "--no-xla-flops"])
    capsys.readouterr()
    assert len(settled["step_s_all"]) == 2 and len(unsettled["step_s_all"]) == 6
    assert settled["final_loss"] == unsettled["final_loss"]
    fewer = bench.main(["--smoke", "--steps", "1", "--warmup", "1", "--rounds", "2",
                        "--settle", "0", "--no-xla-flops"])
    capsys.readouterr()
    assert fewer["final_loss"] != settled["final_loss"]  # the loss does tell step counts apart
