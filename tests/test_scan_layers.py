"""Scanned layers (T5Config.scan_layers): the same model as the Python loop over layers.

The scanned model's params are the unscanned ones moved by flan_jax.convert.layers, so every
comparison below is between one set of weights run both ways. Without dropout the outputs
agree to float rounding (XLA fuses a loop body and an unrolled stack differently).
"""
import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import seqio

from flan_jax import checkpointing, optim, partitioning, trainer
from flan_jax.convert import layers
from flan_jax.models import decoding, t5

import tiny

ATOL = 2e-5  # logits are O(1); the two programs differ only in float rounding


def _packed_batch(rows: int = 4) -> dict[str, jax.Array]:
    ds = seqio.get_dataset(tiny.TEST_TASK, {"inputs": 128, "targets": 96},
                           feature_converter=seqio.EncDecFeatureConverter(pack=True),
                           dataset_split="train", shuffle=False, verbose=False)
    examples = list(ds.take(rows).as_numpy_iterator())
    batch = {k: jnp.asarray(np.stack([e[k] for e in examples])) for k in examples[0]}
    assert int(batch["decoder_segment_ids"].max()) >= 2, "rows should hold several examples"
    return batch


@pytest.fixture(scope="module")
def batch():
    return _packed_batch(rows=2)


def _init(cfg: t5.T5Config, seed: int = 0) -> dict:
    tokens = jnp.ones((1, 4), jnp.int32)
    init = jax.jit(lambda key: t5.Transformer(cfg).init(key, tokens, tokens, tokens,
                                                        enable_dropout=False)["params"])
    return nn.unbox(init(jax.random.key(seed)))


def _scanned(params: dict) -> dict:
    return checkpointing.unflatten(layers.to_scanned(checkpointing.flatten(params)))


def _model_inputs(batch):
    return {k: batch[k] for k in ("encoder_input_tokens", "decoder_input_tokens",
                                  "decoder_target_tokens", "encoder_segment_ids",
                                  "decoder_segment_ids", "encoder_positions",
                                  "decoder_positions")}


def test_scanned_params_have_a_layers_axis_at_1_named_layers():
    for per_layer in (False, True):
        cfg = tiny.model_config(scan_layers=True, relpos_per_layer=per_layer, lora_rank=2)
        boxed = checkpointing.abstract_params(t5.Transformer(cfg))
        shapes = checkpointing.flat_shapes(nn.unbox(boxed))
        specs = checkpointing.flatten(nn.get_partition_spec(boxed))
        unscanned = checkpointing.flat_shapes(nn.unbox(checkpointing.abstract_params(
            t5.Transformer(dataclasses.replace(cfg, scan_layers=False)))))
        stacked = [name for name in shapes if t5.is_scanned_layer_param(tuple(name.split("/")))]
        assert len(stacked) == len([n for n in unscanned if "/layers_0/" in n])
        assert not any("layers_" in name for name in shapes)
        for name in stacked:
            assert shapes[name][1] == 2, name  # both stacks have 2 layers
            assert specs[name][1] == "layers", (name, specs[name])
            per = name.replace("/layers/", "/layers_1/")
            assert shapes[name][:1] + shapes[name][2:] == unscanned[per], name
        assert ("encoder/layers/relpos_bias/rel_embedding" in shapes) == per_layer
        assert ("encoder/relpos_bias/rel_embedding" in shapes) == (not per_layer)
        assert sum(np.prod(s) for s in shapes.values()) == cfg.num_params()
        assert sum(np.prod(s) for s in unscanned.values()) == cfg.num_params()


def test_layers_axis_is_never_sharded():
    mesh = partitioning.create_mesh(2)
    for parameter_sharding in (False, True):
        rules = partitioning.logical_axis_rules(parameter_sharding)
        sharding = nn.logical_to_mesh_sharding(
            jax.sharding.PartitionSpec("embed", "layers", "mlp"), mesh, rules)
        assert sharding.spec[1] is None
        assert sharding.spec[2] == partitioning.MODEL_AXIS
        assert sharding.spec[0] == (partitioning.DATA_AXIS if parameter_sharding else None)


@pytest.mark.parametrize("variant", [
    dict(),
    dict(relpos_per_layer=True),
    dict(prompt_length=3, lora_rank=2, lora_targets=("query", "value", "mlp")),
])
def test_scanned_logits_equal_unscanned(batch, variant):
    cfg = tiny.model_config(**variant)
    params = _init(cfg)
    inputs = _model_inputs(batch)
    if cfg.prompt_length:  # the packed soft-prompt path needs prompt slots; run unpacked
        inputs = {k: inputs[k] for k in ("encoder_input_tokens", "decoder_input_tokens",
                                         "decoder_target_tokens")}

    @functools.partial(jax.jit, static_argnums=0)
    def logits(cfg, params):
        return t5.Transformer(cfg).apply({"params": params}, **inputs, enable_dropout=False)

    looped = logits(cfg, params)
    scanned = logits(dataclasses.replace(cfg, scan_layers=True), _scanned(params))
    assert float(jnp.abs(looped).max()) > 0.1
    np.testing.assert_allclose(scanned, looped, atol=ATOL)


def test_scanned_remat_logits_and_grads_equal_unscanned(batch):
    cfg = tiny.model_config()
    params = _init(cfg)
    inputs = _model_inputs(batch)

    @functools.partial(jax.jit, static_argnums=0)
    def logits_and_grads(cfg, params):
        def loss(params):
            logits = t5.Transformer(cfg).apply({"params": params}, **inputs,
                                               enable_dropout=False)
            return jnp.sum(jax.nn.log_softmax(logits)[..., 5]), logits
        return jax.grad(loss, has_aux=True)(params)

    grads, logits = logits_and_grads(cfg, params)
    expected = layers.to_scanned(checkpointing.flatten(grads))
    for remat_policy in ("full", "dots"):
        scan_cfg = dataclasses.replace(cfg, scan_layers=True, remat_policy=remat_policy)
        scan_grads, scan_logits = logits_and_grads(scan_cfg, _scanned(params))
        np.testing.assert_allclose(scan_logits, logits, atol=ATOL)
        for name, grad in checkpointing.flatten(scan_grads).items():
            np.testing.assert_allclose(grad, expected[name], atol=1e-4,
                                       err_msg=f"{remat_policy}: {name}")


def test_train_steps_equal_unscanned_with_packing(batch):
    """Two optimizer steps: losses, metrics and the updated params agree (Adafactor's update
    clipping and parameter scale are taken per layer, as for unscanned params)."""
    tx = optim.make_optimizer(optim.OptimizerConfig(learning_rate=0.01))
    cfg = tiny.model_config()
    params = _init(cfg)
    results = {}
    for scan in (False, True):
        model = t5.Transformer(dataclasses.replace(cfg, scan_layers=scan))
        p = _scanned(params) if scan else params
        state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=p,
                                   opt_state=tx.init(p))
        step = jax.jit(lambda s, b, model=model: trainer.train_step(
            s, b, jax.random.key(0), model=model, optimizer=tx,
            loss_config=trainer.LossConfig()))
        metrics = []
        for _ in range(2):
            state, m = step(state, batch)
            metrics.append({k: float(v) for k, v in m.items()})
        results[scan] = (metrics, layers.to_unscanned(checkpointing.flatten(state.params)))
    (metrics, new_params), (scan_metrics, scan_params) = results[False], results[True]
    assert metrics[1]["loss"] < metrics[0]["loss"] - 0.1, "the steps must train"
    for m, sm in zip(metrics, scan_metrics):
        for name in ("loss", "accuracy", "grad_norm", "z_loss"):
            np.testing.assert_allclose(sm[name], m[name], rtol=2e-5, err_msg=name)
    for name, value in new_params.items():
        np.testing.assert_allclose(scan_params[name], value, atol=2e-6, err_msg=name)


def test_optimizer_on_unscanned_params_is_optax_adafactor_bit_for_bit(batch):
    """The per-layer block RMS leaves the default (unscanned) path exactly optax's."""
    cfg = optim.OptimizerConfig(learning_rate=0.01, weight_decay_rate=1e-3)
    ours = optim.make_optimizer(cfg)
    theirs = optax.adafactor(learning_rate=optim.make_schedule(cfg),
                             min_dim_size_to_factor=cfg.min_dim_size_to_factor,
                             decay_rate=cfg.decay_rate,
                             clipping_threshold=cfg.clipping_threshold,
                             multiply_by_parameter_scale=cfg.multiply_by_parameter_scale,
                             weight_decay_rate=cfg.weight_decay_rate)
    params = _init(tiny.model_config(emb_dim=128, mlp_dim=256))  # some factored kernels
    grads = jax.tree.map(lambda p: jnp.sin(p * 7.0), params)
    state, ref_state = ours.init(params), theirs.init(params)
    assert jax.tree.structure(state) == jax.tree.structure(ref_state)
    for _ in range(2):
        updates, state = jax.jit(ours.update)(grads, state, params)
        ref_updates, ref_state = jax.jit(theirs.update)(grads, ref_state, params)
        jax.tree.map(np.testing.assert_array_equal, updates, ref_updates)


def test_too_deep_scanned_stack_for_adafactor_is_refused():
    tx = optim.make_optimizer(optim.OptimizerConfig(min_dim_size_to_factor=2))
    params = {"encoder": {"layers": {"mlp": {"wo": {"kernel": jnp.zeros((4, 2, 4))}}}}}
    with pytest.raises(ValueError, match="scanned stack has 2 layers.*min_dim_size_to_factor"):
        tx.init(params)


@pytest.mark.parametrize("relpos_per_layer,method", [(False, "beam"), (True, "greedy")])
def test_cached_decoding_equals_unscanned(relpos_per_layer, method):
    """Decoding over the KV cache (stacked on the layers axis when scanned); beam search
    also reorders the cache's rows."""
    cfg = tiny.model_config(relpos_per_layer=relpos_per_layer)
    params = _init(cfg, seed=1)
    tokens = jnp.asarray(np.random.default_rng(0).integers(2, 300, (2, 9)), jnp.int32)
    tokens = tokens.at[1, 6:].set(0)
    outputs = {}
    for scan in (False, True):
        model = t5.Transformer(dataclasses.replace(cfg, scan_layers=scan))
        p = _scanned(params) if scan else params
        config = decoding.DecodingConfig(method=method, max_decode_length=6, num_beams=3)
        outputs[scan] = jax.jit(lambda p, t, model=model, config=config: decoding.generate(
            model, p, t, config, eos_id=1))(p, tokens)
    (seqs, scores), (scan_seqs, scan_scores) = outputs[False], outputs[True]
    assert int((seqs > 0).sum()) >= 6, "decoding should produce tokens"
    np.testing.assert_array_equal(scan_seqs, seqs)
    np.testing.assert_allclose(scan_scores, scores, rtol=1e-5)


@pytest.mark.parametrize("kind", ["numpy", "jax"])
def test_layout_conversion_round_trip_is_bit_exact(kind):
    cfg = tiny.model_config(relpos_per_layer=True, lora_rank=2)
    flat = checkpointing.flatten(_init(cfg, seed=3))
    if kind == "numpy":
        flat = {k: np.asarray(v) for k, v in flat.items()}
    scanned = layers.to_scanned(flat)
    assert layers.is_scanned(scanned) and not layers.is_scanned(flat)
    wo = scanned["decoder/layers/mlp/wo/kernel"]
    assert isinstance(wo, np.ndarray if kind == "numpy" else jax.Array)
    np.testing.assert_array_equal(wo[:, 1], flat["decoder/layers_1/mlp/wo/kernel"])
    back = layers.to_unscanned(scanned)
    assert sorted(back) == sorted(flat)
    for name, value in flat.items():
        assert back[name].dtype == value.dtype
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    assert layers.to_layout(flat, scanned=False) == flat  # already in that layout


def test_to_scanned_refuses_uneven_layers():
    flat = {"encoder/layers_0/mlp/wo/kernel": np.zeros((2, 2)),
            "encoder/layers_2/mlp/wo/kernel": np.zeros((2, 2))}
    with pytest.raises(ValueError, match=r"layers \[0, 2\], not 0..1"):
        layers.to_scanned(flat)


@pytest.mark.parametrize("saved_scanned", [False, True])
def test_checkpoint_of_either_layout_restores_into_the_other(tmp_path, saved_scanned):
    """load_initial_params (INITIAL_CHECKPOINT_PATH) converts the layout, sharded on a mesh;
    load_params (exports) always gives the unscanned layout."""
    cfg = tiny.model_config()
    params = _init(cfg, seed=2)
    checkpointing.save_params(str(tmp_path), _scanned(params) if saved_scanned else params)
    mesh = partitioning.create_mesh(2)
    rules = partitioning.logical_axis_rules(parameter_sharding=True)
    model = t5.Transformer(dataclasses.replace(cfg, scan_layers=not saved_scanned))
    with mesh, nn.logical_axis_rules(rules):
        abstract, shardings = partitioning.param_layout(
            checkpointing.abstract_params(model), mesh, rules)
        initial = checkpointing.load_initial_params(str(tmp_path), abstract)
    # ... and what evaluation and inference restore (restore_params).
    for_eval = checkpointing.restore_params(str(tmp_path), model, mesh, rules).params
    expected = layers.to_layout(checkpointing.flatten(params), not saved_scanned)
    flat_shardings = checkpointing.flatten(shardings)
    for restored in (initial, for_eval):
        flat = checkpointing.flatten(restored)
        assert sorted(flat) == sorted(expected)
        for name, value in flat.items():
            np.testing.assert_array_equal(value, expected[name], err_msg=name)
            assert value.sharding.is_equivalent_to(flat_shardings[name], value.ndim), name
    loaded, _ = checkpointing.load_params(str(tmp_path))
    assert sorted(loaded) == sorted(checkpointing.flatten(params))
    for name, value in checkpointing.flatten(params).items():
        np.testing.assert_array_equal(loaded[name], value, err_msg=name)


def test_config_flags_are_validated():
    with pytest.raises(ValueError, match="T5Config.scan_layers must be True or False, got 'yes'"):
        tiny.model_config(scan_layers="yes")
    with pytest.raises(ValueError, match="T5Config.relpos_per_layer must be True or False"):
        tiny.model_config(relpos_per_layer=1)


def test_hugging_face_export_of_a_scanned_run_equals_the_unscanned_one(tmp_path):
    from flan_jax.convert import hf
    params = _init(tiny.model_config(), seed=4)
    for name, tree in (("looped", params), ("scanned", _scanned(params))):
        checkpointing.save_params(str(tmp_path / name), tree)
        hf.to_hf(str(tmp_path / name), str(tmp_path / f"{name}_hf"))
    for file in ("config.json", "model.safetensors"):
        assert ((tmp_path / "scanned_hf" / file).read_bytes()
                == (tmp_path / "looped_hf" / file).read_bytes()), file


def test_resuming_a_run_in_the_other_layout_is_refused_with_the_way_out(tmp_path):
    cfg = tiny.model_config()
    tx = optim.make_optimizer(optim.OptimizerConfig())
    params = _init(cfg)
    state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                               opt_state=tx.init(params))
    checkpointer = checkpointing.Checkpointer(str(tmp_path), checkpointing.CheckpointConfig(
        async_save=False))
    checkpointer.save(1, state)
    scanned = _scanned(params)
    abstract = jax.eval_shape(lambda: trainer.TrainState(
        step=jnp.zeros((), jnp.int32), params=scanned, opt_state=tx.init(scanned)))
    with pytest.raises(checkpointing.ShapeMismatchError,
                       match=r"scan_layers=False, but the model now has scan_layers=True.*"
                             r"INITIAL_CHECKPOINT_PATH"):
        checkpointer.restore(1, abstract)
    checkpointer.close()


def test_optimizer_on_a_vocabulary_sized_kernel_is_optax_adafactor_to_float_rounding():
    """Arrays of optim.LARGE_REDUCTION_SIZE elements or more take Adafactor's leading-axis
    mean as a product with ones (faster on XLA:CPU): the same updates and second moments as
    optax's reduce, to float rounding, for both orientations of a wide kernel."""
    cfg = optim.OptimizerConfig(learning_rate=0.01)
    ours = optim.make_optimizer(cfg)
    theirs = optax.adafactor(learning_rate=optim.make_schedule(cfg),
                             min_dim_size_to_factor=cfg.min_dim_size_to_factor,
                             decay_rate=cfg.decay_rate,
                             clipping_threshold=cfg.clipping_threshold,
                             multiply_by_parameter_scale=cfg.multiply_by_parameter_scale)
    rows, cols = 256, optim.LARGE_REDUCTION_SIZE // 256
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    params = {"logits_dense": {"kernel": jax.random.normal(keys[0], (rows, cols))},
              "token_embedder": {"embedding": jax.random.normal(keys[1], (cols, rows))}}
    # Rows of very different scale: a wrong axis or a missing 1/n would show at once.
    scale = jnp.exp(jnp.linspace(-3.0, 3.0, rows))
    grads = {"logits_dense": {"kernel": jnp.cos(params["logits_dense"]["kernel"] * 5)
                              * scale[:, None]},
             "token_embedder": {"embedding": jnp.sin(params["token_embedder"]["embedding"])
                                * scale[None, :]}}
    state, ref_state = ours.init(params), theirs.init(params)
    for _ in range(2):
        updates, state = jax.jit(ours.update)(grads, state, params)
        ref_updates, ref_state = jax.jit(theirs.update)(grads, ref_state, params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-12),
                     updates, ref_updates)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5),
                 state[0], ref_state[0])


def test_optimizer_mean_is_a_product_with_ones_only_on_cpu():
    """Lowered for a TPU the large leading-axis mean stays optax's reduce (no extra TPU work,
    optax's numerics); the product with ones is XLA:CPU's speed-up only."""
    x = jnp.ones((256, optim.LARGE_REDUCTION_SIZE // 256))

    def lowered(platform):
        return jax.jit(lambda x: optim._mean(x, 0)).trace(x).lower(
            lowering_platforms=(platform,)).as_text()

    cpu, tpu = lowered("cpu"), lowered("tpu")
    assert "stablehlo.dot_general" in cpu and "stablehlo.reduce" not in cpu
    assert "stablehlo.dot_general" not in tpu and "stablehlo.reduce" in tpu
