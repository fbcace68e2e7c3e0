"""flan_jax.aot: slice names, the launch read from gin, the no-libtpu message, and (marker
tpu_compile, `make test-tpu-compile`) a real TPU compile of the tiny model for a v4-8."""
import os
import re
from collections import Counter

import gin
import jax
import numpy as np
import pytest

import tiny
from flan_jax import aot, launch, optim, partitioning, trainer

REPO = launch.REPO_ROOT
TINY_LAUNCH = ["--gin_file=gin_configs/models/t5_1_1/tiny.gin",
               "--gin_file=gin_configs/runs/finetune.gin",
               "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
               "--gin.BATCH_SIZE=8", "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'"]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


# Chips per dimension as Cloud TPU documents the slices (v4 / v5p names count TensorCores,
# two per chip; v5e / v6e names count chips), HBM per chip from the same pages.
@pytest.mark.parametrize("name, topology, chips, hbm_gib, chip_config", [
    ("v4-8", "v4:2x2x1", 4, 32, "megacore"),
    ("v4-128", "v4:4x4x4", 64, 32, "megacore"),
    ("v4-512", "v4:4x8x8", 256, 32, "megacore"),
    ("v5p-8", "v5:2x2x1", 4, 95, "megacore"),
    ("v5p-512", "v5:4x8x8", 256, 95, "megacore"),
    ("v5e-16", "v5e:4x4", 16, 16, "default"),
    ("v5e-256", "v5e:16x16", 256, 16, "default"),
    ("v6e-8", "v6e:2x4", 8, 32, "default"),
    ("v6e-256", "v6e:16x16", 256, 32, "default"),
])
def test_slice_names_map_to_libtpu_topologies(name, topology, chips, hbm_gib, chip_config):
    s = aot.parse_slice(name)
    assert (s.name, s.topology, s.num_chips, s.hbm_gib, s.chip_config) == (
        name, topology, chips, hbm_gib, chip_config)


def test_full_tori_wrap_around():
    assert aot.parse_slice("v4-128").wrap == (True, True, True)  # the measured v4-128
    assert aot.parse_slice("v4-8").wrap == (False, False, False)
    assert aot.parse_slice("v5e-256").wrap == (True, True, False)  # DESIGN.md section 2


@pytest.mark.parametrize("name", ["v4-6", "v3-8", "v4", "tpu-128", "v5e-8", "v6e-512"])
def test_unknown_slice_names_list_the_supported_ones(name):
    with pytest.raises(ValueError, match=r"not a TPU slice.*v4-8, v4-16.*v6e-256"):
        aot.parse_slice(name)


def test_the_launch_is_read_from_the_train_gin_files():
    args = launch.parse_args(TINY_LAUNCH + ["--gin.NUM_PARTITIONS=2",
                                            "--gin.PARAMETER_SHARDING=True",
                                            "--gin.NUM_MICROBATCHES=2",
                                            "--gin.DROPOUT_RATE=0.0"], "test")
    launch.parse_gin(args)
    bound = aot.bound_train_launch()
    assert bound.batch_size == 8 and bound.feature_lengths == {"inputs": 64, "targets": 16}
    assert bound.packed is True and bound.num_microbatches == 2
    assert bound.partitioning_config.num_partitions == 2
    assert bound.partitioning_config.parameter_sharding is True
    assert bound.model_config.emb_dim == 128 and bound.model_config.dropout_rate == 0.0


def test_the_shipped_pod_file_is_a_complete_launch():
    launch.parse_gin(launch.parse_args(["--gin_file=gin_configs/pods/v4-8_base.gin",
                                        "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'"], "test"))
    bound = aot.bound_train_launch()
    assert (bound.batch_size, bound.feature_lengths) == (32, {"inputs": 512, "targets": 128})
    assert bound.partitioning_config == aot.partitioning.PartitioningConfig(2, True)
    assert bound.model_config.emb_dim == 768 and bound.model_config.dropout_rate == 0.1


def test_the_xxl_pod_file_is_one_microbatch_with_dropout():
    """Issue 9's goal: XXL, dropout 0.1, batch 128 x (1024, 256), ONE microbatch, v4-128."""
    launch.parse_gin(launch.parse_args(["--gin_file=gin_configs/pods/v4-128_xxl.gin",
                                        "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'"], "test"))
    bound = aot.bound_train_launch()
    assert (bound.batch_size, bound.feature_lengths) == (128, {"inputs": 1024, "targets": 256})
    assert bound.num_microbatches == 1
    assert bound.partitioning_config == aot.partitioning.PartitioningConfig(8, True)
    config = bound.model_config
    assert (config.emb_dim, config.num_encoder_layers, config.dropout_rate) == (4096, 24, 0.1)
    assert config.remat_policy == "full" and config.scan_layers is True


POD_FILES = sorted(f for f in os.listdir(os.path.join(REPO, "gin_configs", "pods"))
                   if f.endswith(".gin"))


@pytest.mark.parametrize("name", POD_FILES)
def test_every_pod_file_is_a_launch_for_the_slice_it_names(name):
    """gin_configs/pods/SLICE_MODEL.gin: SLICE is a slice the tool compiles for, its chips
    split into NUM_PARTITIONS-wide model groups, and the batch divides the data axis (what
    partitioning.check_batch_size refuses at launch), with dropout 0.1 as T5X fine-tunes."""
    launch.parse_gin(launch.parse_args([f"--gin_file=gin_configs/pods/{name}",
                                        "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'"], "test"))
    bound = aot.bound_train_launch()
    tpu_slice = aot.parse_slice(name.split("_")[0])
    partitions = bound.partitioning_config.num_partitions
    assert tpu_slice.num_chips % partitions == 0
    data_axis = tpu_slice.num_chips // partitions
    assert bound.batch_size % (data_axis * bound.num_microbatches) == 0
    assert bound.model_config.dropout_rate == 0.1


def test_without_libtpu_the_message_names_the_install(monkeypatch, capsys):
    monkeypatch.setattr(aot, "libtpu_available", lambda: False)
    with pytest.raises(aot.LibtpuMissingError,
                       match=r'needs libtpu.*pip install -e "\.\[tpu\]".*make install-tpu'):
        aot.main(["--topology=v4-8", *TINY_LAUNCH])
    assert issubclass(aot.LibtpuMissingError, launch.USER_ERRORS)  # exit 2, no traceback


def test_a_bad_slice_fails_before_gin_is_read():
    with pytest.raises(ValueError, match="--topology='v4-7'"):
        aot.main(["--topology=v4-7", "--gin_file=does/not/exist.gin"])


def test_dropout_masks_do_not_depend_on_the_mesh():
    """Dropout under a 'model' axis (where the XXL memory problem lives) draws the same masks
    as on one device: one train step with dropout 0.1 on 1 device and on 8 devices (data 4 x
    model 2, parameters sharded) gives the same loss and parameters."""
    config = tiny.model_config(dropout_rate=0.1)
    rng = np.random.default_rng(0)
    batch = {name: rng.integers(2, 300, (8, 24 if name.startswith("encoder") else 12),
                                dtype=np.int32)
             for name in ("encoder_input_tokens", "decoder_input_tokens",
                          "decoder_target_tokens")}
    batch["decoder_loss_weights"] = np.ones((8, 12), np.int32)
    def one_step(config, mesh, fsdp):
        program = trainer.build_train_program(
            config, optim.make_optimizer(optim.OptimizerConfig()), trainer.LossConfig(), mesh,
            parameter_sharding=fsdp)
        state = program.init_state(0)
        with program.sharding_context():
            on_mesh = {k: jax.device_put(v, program.batch_sharding) for k, v in batch.items()}
            key = jax.device_put(jax.random.PRNGKey(1), program.replicated)
            state, metrics = program.step_fn(state, on_mesh, key)
        return float(metrics["loss"]), jax.device_get(state.params)

    one_device = partitioning.create_mesh(1, jax.devices()[:1])
    loss_one, params_one = one_step(config, one_device, False)
    loss_mesh, params_mesh = one_step(config, partitioning.create_mesh(2), True)
    loss_without_dropout, _ = one_step(tiny.model_config(dropout_rate=0.0), one_device, False)
    assert abs(loss_one - loss_without_dropout) > 1e-3  # dropout is really on
    np.testing.assert_allclose(loss_mesh, loss_one, rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 params_mesh, params_one)


def test_the_models_activation_constraints_reach_the_step():
    """Issue 9's XXL memory: flax applies the model's activation constraints only under the
    mesh jax.set_mesh sets; under `with mesh:` they were silently dropped and XLA laid the
    activations out like their FSDP-sharded parameters, the batch on no mesh axis (T5 XXL widths
    on a v4-128: whole-batch activations, 8.24 GiB of temporaries for 2+2 layers instead of
    4.74). program.sharding_context() keeps every one of them in the lowered step, with the
    rules' placement: rows on 'data', heads / mlp / vocab on 'model', embed unsharded."""
    config = tiny.model_config(dropout_rate=0.1)  # embed 32, 2 heads x 16, mlp 64, vocab 384
    program = trainer.build_train_program(
        config, optim.make_optimizer(optim.OptimizerConfig()), trainer.LossConfig(),
        partitioning.create_mesh(2), parameter_sharding=True)  # data 4 x model 2
    batch = program.abstract_batch(8, {"inputs": 32, "targets": 16})
    with program.sharding_context():
        text = program.step_fn.lower(program.layout.abstract, batch,
                                     program.abstract_key()).as_text()
    constraints = Counter(re.findall(
        r"sdy.sharding_constraint %\S+ <@mesh, \[([^\]]*)\]> : tensor<([0-9x]+)x(?:bf16|f32)>",
        text))
    by_shape = {}
    for (spec, shape), count in constraints.items():
        by_shape.setdefault(shape, set()).add(spec)
    rows, replicated, model = '{"data"}', "{}", '{"model"}'
    embed_like = ", ".join([rows, replicated, replicated])
    for length in (32, 16):  # encoder and decoder activations
        assert by_shape[f"8x{length}x32"] == {embed_like}  # [batch, length, embed]
        # [batch, heads, length, head_dim]: attention runs heads-major
        assert by_shape[f"8x2x{length}x16"] == {", ".join([rows, model, replicated, replicated])}
        assert by_shape[f"8x{length}x64"] == {", ".join([rows, replicated, model])}  # mlp
    assert by_shape["8x16x384"] == {", ".join([rows, replicated, model])}  # logits
    # Forward and backward: each of the 4 layers constrains its activations more than once.
    assert sum(constraints.values()) > 4 * 4


def _tiny_lowered_step(scan_layers: bool, num_microbatches: int):
    """The tiny launch's train step on 4 CPU devices (data 2 x model 2), lowered."""
    gin.clear_config()
    launch.parse_gin(launch.parse_args(TINY_LAUNCH + [
        f"--gin.SCAN_LAYERS={scan_layers}", f"--gin.NUM_MICROBATCHES={num_microbatches}",
        "--gin.NUM_PARTITIONS=2", "--gin.PARAMETER_SHARDING=True",
        "--gin.REMAT_POLICY='full'"], "test"))
    bound = aot.bound_train_launch()
    program = aot.build_program(bound, jax.devices()[:4])
    batch = program.abstract_batch(bound.batch_size, bound.feature_lengths, bound.packed)
    with program.sharding_context():
        lowered = program.step_fn.lower(program.layout.abstract, batch, program.abstract_key())
    return bound, program, lowered


def _compiled_flops_all_devices(lowered) -> float:
    cost = lowered.compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return 4 * float(cost["flops"])  # XLA's figure is one device's program


def test_step_flops_count_every_scanned_layer_and_microbatch():
    """XLA's cost analysis counts a while loop's body once: a scanned stack's layer, a
    microbatch loop's body. The reference is the compiler's own count of the same step with
    nothing in a loop (unscanned, one microbatch, remat full: the recomputed forward counted);
    a scanned step in 2 microbatches must report that step's FLOPs too, where its compiled
    program (1 of tiny's 2 layers per stack, 1 of 2 microbatches) counts far fewer."""
    bound, program, lowered = _tiny_lowered_step(scan_layers=False, num_microbatches=1)
    reference = _compiled_flops_all_devices(lowered)
    unscanned = aot.unrolled_step_flops(bound, program, lowered)
    assert 0.93 * reference < unscanned < 1.07 * reference

    bound, program, lowered = _tiny_lowered_step(scan_layers=True, num_microbatches=2)
    assert _compiled_flops_all_devices(lowered) < 0.6 * reference  # what is being corrected
    scanned = aot.unrolled_step_flops(bound, program, lowered)
    assert 0.93 * reference < scanned < 1.07 * reference
    np.testing.assert_allclose(scanned, unscanned, rtol=0.01)


@pytest.fixture
def no_persistent_cache():
    # conftest's shared compilation cache is for CPU programs; a TPU executable written there
    # cannot be loaded back without a TPU client.
    previous = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    yield
    jax.config.update("jax_enable_compilation_cache", previous)


@pytest.mark.tpu_compile
def test_tiny_model_compiles_for_a_v4_8(no_persistent_cache):
    """The real TPU compiler on libtpu's description of a v4-8 (4 chips), 2-way model axis
    and parameter sharding; the compiler's own memory figures checked against the layout."""
    if not aot.libtpu_available():
        pytest.skip(f"libtpu is not installed ({aot.INSTALL_HINT}); `make test-tpu-compile` "
                    "installs it and runs this test")
    args = launch.parse_args(TINY_LAUNCH + ["--gin.NUM_PARTITIONS=2",
                                            "--gin.PARAMETER_SHARDING=True"], "test")
    launch.parse_gin(args)
    bound = aot.bound_train_launch()
    tpu_slice = aot.parse_slice("v4-8")
    devices = aot.topology_devices(tpu_slice)
    assert len(devices) == 4 and devices[0].platform == "tpu"
    assert "v4" in devices[0].device_kind

    program = aot.build_program(bound, devices)
    report = aot.compile_train_step(program, bound, tpu_slice)
    assert report.oom_message is None and report.fits
    assert report.mesh_shape == {"data": 2, "model": 2}
    # The compiler's argument bytes are our layout's state share plus this chip's batch rows
    # (8 packed int32 features of 4 rows) and the key; TPU tiling may pad small arrays.
    batch_bytes = 4 * (8 // 2) * (4 * 64 + 4 * 16) + 8
    assert report.state_bytes + batch_bytes <= report.argument_bytes
    assert report.argument_bytes < 1.1 * (report.state_bytes + batch_bytes)
    # The donated state comes back in place: the outputs alias about the whole state.
    assert 0.9 * report.state_bytes <= report.alias_bytes <= report.output_bytes
    assert report.temp_bytes > 0
    # Params are split 4 ways (2 data x 2 model) except the few unsharded vectors; float32
    # params plus Adafactor's factored statistics, so more than a quarter of params x 4 bytes
    # and far less than the whole.
    assert report.num_params * 4 / 4 < report.state_bytes < report.num_params * 4 / 2
    # Compiled FLOPs of the 4 chips against the model-FLOPs formula of the same step.
    model_flops = aot.model_flops_per_step(bound.model_config, 8, bound.feature_lengths)
    assert 0.9 * model_flops < 4 * report.flops_per_chip < 2.0 * model_flops
    # Nothing here runs in a loop, so the step's FLOPs (the lowered step's analysis) are the
    # TPU compiler's count of its program on the 4 chips, up to what compiling changes.
    assert 0.93 * 4 * report.flops_per_chip < report.step_flops < 1.07 * 4 * report.flops_per_chip
    # The step reads every parameter and optimizer statistic it holds at least once.
    assert report.bytes_accessed_per_chip > report.state_bytes
    text = aot.format_report(report, bound)
    assert "fits" in text and "v4-8" in text and "bytes accessed (XLA)" in text

    # Evaluation's steps on the same layout: params only (a quarter-ish of the state bytes'
    # float32 params, no optimizer state), 32-row batches, no donated inputs.
    score, generate = aot.compile_eval_steps(program, bound.eval_config, tpu_slice)
    for r in (score, generate):
        assert r.oom_message is None and r.fits and r.alias_bytes == 0
        assert r.state_bytes < report.state_bytes and r.state_bytes <= r.argument_bytes
        assert r.flops_per_chip > 0
    assert generate.temp_bytes > 0  # the decoding cache lives in temporaries
    assert (score.step, generate.step) == ("score", "generate")
    assert "eval generate step" in aot.format_report(generate, bound)
