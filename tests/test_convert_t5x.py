"""T5X checkpoint import: checkpoints written by the test in T5X's layouts import exactly.

The tensorstore layout follows t5x/checkpoints.py (VERSION 3): checkpoint_<step>/checkpoint is
a flax msgpack of {'version': 3, 'optimizer': {'target': ..., 'state': ...}} in which big
arrays are TensorStore zarr specs with paths relative to the checkpoint dir (the released
checkpoints name a GCS dummy bucket) and small ones are inline; each array lives in a zarr
directory named by its param path with '/' -> '.'.

The Orbax layout is written as T5X's train.py writes it by default (use_orbax=True): through
t5x/checkpoints.py OrbaxCheckpointManagerInterface, i.e. an Orbax CheckpointManager on
MODEL_DIR with step_prefix 'checkpoint', a PyTreeCheckpointHandler(use_ocdbt=True) 'state'
item holding the train state's state_dict() and a 'dataset' item (write_t5x_orbax below).
"""
import dataclasses
import os
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tensorstore as ts
from flax import serialization

from flan_jax import checkpointing
from flan_jax.convert import checkpoint_io, naming, t5x

import tiny


def _random_params(config, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32)
            for name, shape in naming.param_shapes(config).items()}


def _ts_spec(relative_path: str, array: np.ndarray, style: str = "file") -> dict:
    """T5X's zarr spec; 'gcs' as released (dummy bucket), 'gcs_top_level_path' as written
    by tensorstore < 0.1.14 (path beside, not inside, the kvstore)."""
    kvstore = {"file": {"driver": "file", "path": relative_path},
               "gcs": {"driver": "gcs", "bucket": "t5x-dummy-bucket", "path": relative_path},
               "gcs_top_level_path": {"driver": "gcs", "bucket": "t5x-dummy-bucket"}}[style]
    spec = {"driver": "zarr", "dtype": array.dtype.name, "kvstore": kvstore,
            "metadata": {"compressor": {"id": "gzip"}, "shape": list(array.shape),
                         "chunks": np.array(array.shape)}}  # T5X passes numpy chunks
    if style == "gcs_top_level_path":
        spec["path"] = relative_path
    return spec


def write_t5x_tensorstore(checkpoint_dir, target: dict[str, np.ndarray], *, style="file",
                          step=100, version=3) -> str:
    """A T5X tensorstore-layout checkpoint of `target` ({"a/b": array}); 1-D arrays inline."""
    os.makedirs(checkpoint_dir)
    tree: dict = {}
    for name, array in target.items():
        if version < 3 and array.dtype.name == "bfloat16":
            array = array.view(np.uint16)  # T5X checkpoints before version 3
        if array.ndim == 1:
            leaf = array  # T5X writes unpartitioned small arrays into the msgpack itself
        else:
            relative = "target." + name.replace("/", ".")
            local = _ts_spec(relative, array)
            local["metadata"]["chunks"] = list(array.shape)
            local["kvstore"]["path"] = os.path.join(checkpoint_dir, relative)
            ts.open(local, create=True, open=True).result().write(array).result()
            leaf = _ts_spec(relative, array, style)
        tree[name] = leaf
    state = {"step": np.int32(step),
             # Optimizer state is never read; a spec pointing nowhere proves it.
             "param_states": {"token_embedder": {"embedding": {"v_row": _ts_spec(
                 "state.param_states.token_embedder.embedding.v_row",
                 np.zeros((2, 2), np.float32), style)}}}}
    contents = {"version": version,
                "optimizer": {"target": checkpointing.unflatten(tree), "state": state}}
    with open(os.path.join(checkpoint_dir, "checkpoint"), "wb") as f:
        f.write(serialization.msgpack_serialize(contents))
    return str(checkpoint_dir)


class T5xDatasetCheckpointHandler(ocp.CheckpointHandler):
    """t5x/checkpoints.py DatasetCheckpointHandler as T5X builds it by default
    (SaveCheckpointConfig.save_dataset=False -> should_write_dataset_ckpt False): it is
    registered as the 'dataset' item and saves nothing."""

    def save(self, directory, args):
        del directory, args

    def restore(self, directory, args=None):
        del directory, args


@ocp.args.register_with_handler(T5xDatasetCheckpointHandler, for_save=True, for_restore=True)
@dataclasses.dataclass
class T5xDatasetArgs(ocp.args.CheckpointArgs):
    item: Any = None


def _t5x_adafactor_param_states(params: dict[str, np.ndarray]) -> dict:
    """t5x/adafactor.py init_param_state for the tiny params: no dimension reaches
    min_dim_size_to_factor (128), so v is full-size and v_row / v_col / m are zeros((1,))."""
    return checkpointing.unflatten({
        name: {"v_row": np.zeros((1,), np.float32), "v_col": np.zeros((1,), np.float32),
               "v": np.zeros(array.shape, np.float32), "m": np.zeros((1,), np.float32)}
        for name, array in params.items()})


def write_t5x_orbax(model_dir, params: dict[str, np.ndarray], step: int,
                    save_dtype: str = "float32") -> str:
    """What OrbaxCheckpointManagerInterface.__init__ and .save do for a FlaxOptimTrainState.

    The manager's options and items are T5X's; the state is state_dict() = {'target':
    params, 'state': {'step', 'param_states'}}, saved with SaveArgs(dtype=save_dtype) for
    target/ leaves only (_construct_save_args). Returns MODEL_DIR.
    """
    manager = ocp.CheckpointManager(
        directory=str(model_dir),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=None, save_interval_steps=1, keep_period=None, best_fn=None,
            best_mode="max", keep_checkpoints_without_metrics=True,
            cleanup_tmp_directories=True, step_prefix="checkpoint",
            async_options=ocp.AsyncOptions(timeout_secs=600)),
        item_handlers={"state": ocp.PyTreeCheckpointHandler(use_ocdbt=True),
                       "dataset": T5xDatasetCheckpointHandler()})
    state_dict = {"target": checkpointing.unflatten({k: jnp.asarray(v)
                                                     for k, v in params.items()}),
                  "state": {"step": jnp.asarray(step, jnp.int32),
                            "param_states": _t5x_adafactor_param_states(params)}}
    save_args = {"target": jax.tree.map(lambda _: ocp.SaveArgs(dtype=jnp.dtype(save_dtype)),
                                        state_dict["target"]),
                 "state": jax.tree.map(lambda _: ocp.SaveArgs(dtype=None),
                                       state_dict["state"])}
    manager.save(step, args=ocp.args.Composite(
        state=ocp.args.PyTreeSave(state_dict, save_args=save_args),
        dataset=T5xDatasetArgs(None)), force=True)
    manager.wait_until_finished()
    manager.close()
    return str(model_dir)


def _scan(params: dict[str, np.ndarray], config, layout: str) -> dict[str, np.ndarray]:
    """flan_jax params -> T5X scanned params (layers axis 1) in one of T5X's layouts.

    'scalable_t5': <stack>/layers/..., head-split attention kernels, a relative position table
    in every layer (identical here). 'flaxformer': <stack>/<stack>/..., 2-D kernels, the table
    stacked per layer under <stack>/<stack>/relpos_bias.
    """
    out = {}
    layers = {"encoder": config.num_encoder_layers, "decoder": config.num_decoder_layers}
    for stack, n in layers.items():
        prefix = f"{stack}/layers" if layout == "scalable_t5" else f"{stack}/{stack}"
        rests = {name.split("/", 2)[2] for name in params if name.startswith(f"{stack}/layers_")}
        for rest in rests:
            per_layer = [params[f"{stack}/layers_{i}/{rest}"] for i in range(n)]
            if layout == "scalable_t5" and rest.endswith(("query/kernel", "key/kernel",
                                                          "value/kernel")):
                per_layer = [a.reshape(a.shape[0], config.num_heads, -1) for a in per_layer]
            if layout == "scalable_t5" and rest.endswith("out/kernel"):
                per_layer = [a.reshape(config.num_heads, -1, a.shape[-1]) for a in per_layer]
            out[f"{prefix}/{rest}"] = np.stack(per_layer, axis=1)
        table = params[f"{stack}/relpos_bias/rel_embedding"]
        relpos = ("relative_posemb" if layout == "scalable_t5" else "relpos_bias")
        out[f"{prefix}/{relpos}/rel_embedding"] = np.stack([table] * n, axis=1)
    for name, array in params.items():
        if "/layers_" not in name and "relpos_bias" not in name:
            out[name] = array
    return out


def _assert_same(params: dict[str, np.ndarray], reference: dict[str, np.ndarray]):
    assert sorted(params) == sorted(reference)
    for name, array in reference.items():
        np.testing.assert_array_equal(params[name], array, err_msg=name)


@pytest.fixture(scope="module")
def v11():
    config = tiny.model_config()
    return config, _random_params(config)


@pytest.mark.parametrize("style", ["file", "gcs", "gcs_top_level_path"])
def test_tensorstore_layout_imports_to_the_same_params(v11, tmp_path, style):
    config, params = v11
    write_t5x_tensorstore(tmp_path / "t5x" / "checkpoint_100", params, style=style)
    write_t5x_tensorstore(tmp_path / "t5x" / "checkpoint_50", _random_params(config, 1))
    # The parent directory resolves to its latest step.
    result = t5x.from_t5x(str(tmp_path / "t5x"), str(tmp_path / "out"))
    assert result == config
    _assert_same(checkpointing.load_params(str(tmp_path / "out"))[0], params)
    assert checkpoint_io.config_from_gin([str(tmp_path / "out" / "model.gin")]) == config


@pytest.mark.parametrize("version", [3, 2])
def test_v1_0_tied_checkpoint_and_bfloat16_arrays(tmp_path, version):
    import ml_dtypes
    config = tiny.model_config(mlp_activations=("relu",), logits_via_embedding=True)
    params = _random_params(config)
    stored = {k: v.astype(ml_dtypes.bfloat16) for k, v in params.items()}
    write_t5x_tensorstore(tmp_path / "checkpoint_1", stored, version=version)
    loaded, inferred, _ = t5x.read_t5x_params(str(tmp_path / "checkpoint_1" / "checkpoint"))
    assert inferred == config
    _assert_same(loaded, {k: v.astype(np.float32) for k, v in stored.items()})


@pytest.mark.parametrize("layout", ["scalable_t5", "flaxformer"])
def test_scanned_layers_are_unstacked(v11, tmp_path, layout):
    config, params = v11
    write_t5x_tensorstore(tmp_path / "checkpoint_7", _scan(params, config, layout))
    loaded, inferred, _ = t5x.read_t5x_params(str(tmp_path / "checkpoint_7"))
    assert inferred == config
    _assert_same(loaded, params)


def _scalable_t5_scanned(params, config):
    """T5X scalable_t5's scanned layout with a different table in every layer (its scanned
    layers draw their own): per_layer is the flan_jax tree with relpos_per_layer."""
    scanned = _scan(params, config, "scalable_t5")
    per_layer = {k: v for k, v in params.items() if "relpos_bias" not in k}
    for stack, n in (("encoder", config.num_encoder_layers),
                     ("decoder", config.num_decoder_layers)):
        tables = scanned[f"{stack}/layers/relative_posemb/rel_embedding"]  # [heads, L, buckets]
        tables += np.arange(n, dtype=np.float32)[None, :, None]
        for i in range(n):
            per_layer[f"{stack}/layers_{i}/relpos_bias/rel_embedding"] = tables[:, i]
    return scanned, per_layer


def test_scanned_checkpoint_with_per_layer_tables_imports_with_relpos_per_layer(v11, tmp_path):
    config, params = v11
    scanned, per_layer = _scalable_t5_scanned(params, config)
    write_t5x_tensorstore(tmp_path / "checkpoint_7", scanned)
    result = t5x.from_t5x(str(tmp_path / "checkpoint_7"), str(tmp_path / "out"))
    assert result == dataclasses.replace(config, relpos_per_layer=True)
    _assert_same(checkpointing.load_params(str(tmp_path / "out"))[0], per_layer)
    assert checkpoint_io.config_from_gin([str(tmp_path / "out" / "model.gin")]) == result
    # ... and the model with that option runs it, scanned too (the restore converts).
    from flan_jax import partitioning
    from flan_jax.models import t5
    tokens = jnp.asarray([[5, 9, 2, 1]], jnp.int32)
    outputs = []
    for scan in (False, True):
        model = t5.Transformer(dataclasses.replace(result, scan_layers=scan))
        mesh = partitioning.create_mesh(1, jax.devices()[:1])
        rules = partitioning.logical_axis_rules()
        abstract, _ = partitioning.param_layout(checkpointing.abstract_params(model), mesh,
                                                rules)
        loaded = checkpointing.load_initial_params(str(tmp_path / "out"), abstract)
        outputs.append(model.apply({"params": loaded}, tokens, tokens, tokens,
                                   enable_dropout=False))
    np.testing.assert_allclose(outputs[1], outputs[0], atol=2e-5)


def test_per_layer_tables_are_refused_by_a_shared_table_config(v11, tmp_path):
    config, params = v11
    scanned = _scan(params, config, "flaxformer")
    scanned["encoder/encoder/relpos_bias/rel_embedding"][:, 1] += 1.0
    write_t5x_tensorstore(tmp_path / "checkpoint_7", scanned)
    gin_file = tmp_path / "shared.gin"
    gin_file.write_text(checkpoint_io.model_gin_text(config, "test"))
    with pytest.raises(ValueError, match=r"relative position table of encoder layer 1 differs "
                                         r".* per layer .*relpos_per_layer = True"):
        t5x.from_t5x(str(tmp_path / "checkpoint_7"), str(tmp_path / "out"), [str(gin_file)])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("layout", ["optimizer_target", "target", "state_item"])
def test_orbax_layout_imports_to_the_same_params(v11, tmp_path, layout):
    import orbax.checkpoint as ocp
    config, params = v11
    tree = {"target": checkpointing.unflatten(params), "state": {"step": np.int32(3)}}
    tree = tree if layout == "target" else {"optimizer": tree}
    item_dir = tmp_path / "checkpoint_3" / ("state" if layout == "state_item" else "")
    ocp.PyTreeCheckpointer().save(str(item_dir), tree)
    loaded, inferred, _ = t5x.read_t5x_params(str(tmp_path / "checkpoint_3"))
    assert inferred == config
    _assert_same(loaded, params)


def test_gin_file_overrides_inferred_activations_and_is_checked(v11, tmp_path):
    config, params = v11
    write_t5x_tensorstore(tmp_path / "checkpoint_1", params)
    gin_file = tmp_path / "silu.gin"
    gin_file.write_text(checkpoint_io.model_gin_text(
        tiny.model_config(mlp_activations=("silu", "linear")), "test"))
    vocabulary = tmp_path / "spiece.model"
    vocabulary.write_bytes(b"sp")
    result = t5x.from_t5x(str(tmp_path / "checkpoint_1"), str(tmp_path / "out"),
                          [str(gin_file)], vocabulary_file=str(vocabulary))
    assert result.mlp_activations == ("silu", "linear")
    assert (tmp_path / "out" / "spiece.model").read_bytes() == b"sp"
    wrong = tmp_path / "wide.gin"
    wrong.write_text(checkpoint_io.model_gin_text(tiny.model_config(mlp_dim=128), "test"))
    with pytest.raises(ValueError, match=r"parameters in .*checkpoint_1 do not fit .*"
                                         r"decoder/layers_0/mlp/wi_0/kernel: checkpoint "
                                         r"\(32, 64\) vs model \(32, 128\)"):
        t5x.from_t5x(str(tmp_path / "checkpoint_1"), str(tmp_path / "out2"), [str(wrong)])
    assert not (tmp_path / "out2").exists()


def test_bad_t5x_inputs_are_named(v11, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty is not a T5X checkpoint"):
        t5x.from_t5x(str(tmp_path / "empty"), str(tmp_path / "out"))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "checkpoint").write_bytes(b"\x00not msgpack")
    with pytest.raises(ValueError, match=r"junk/checkpoint"):
        t5x.from_t5x(str(tmp_path / "junk"), str(tmp_path / "out"))
    config, params = v11
    write_t5x_tensorstore(tmp_path / "checkpoint_2", params)
    shutil.rmtree(tmp_path / "checkpoint_2" / "target.encoder.layers_1.mlp.wo.kernel")
    with pytest.raises((FileNotFoundError, ValueError),
                       match=r"target/encoder/layers_1/mlp/wo/kernel"):
        t5x.from_t5x(str(tmp_path / "checkpoint_2"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


@pytest.mark.parametrize("save_dtype", ["float32", "bfloat16"])
def test_t5x_default_orbax_layout_imports_from_the_step_dir_and_its_parent(v11, tmp_path,
                                                                        save_dtype):
    import ml_dtypes
    config, params = v11
    model_dir = tmp_path / "t5x_model_dir"
    write_t5x_orbax(model_dir, _random_params(config, 1), step=3, save_dtype=save_dtype)
    write_t5x_orbax(model_dir, params, step=5, save_dtype=save_dtype)
    # The layout T5X's manager wrote: step metadata beside the state/ item, not inside it.
    step_dir = model_dir / "checkpoint_5"
    assert (step_dir / "_CHECKPOINT_METADATA").is_file()
    assert (step_dir / "state" / "_METADATA").is_file()
    assert not (step_dir / "_METADATA").exists()
    stored = params if save_dtype == "float32" else {
        k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in params.items()}
    for source in (step_dir, model_dir):  # the parent resolves to its latest step
        loaded, inferred, where = t5x.read_t5x_params(str(source))
        assert inferred == config and where == str(step_dir)
        _assert_same(loaded, stored)
    assert t5x.from_t5x(str(model_dir), str(tmp_path / "out")) == config
    _assert_same(checkpointing.load_params(str(tmp_path / "out"))[0], stored)


def test_damaged_t5x_checkpoint_falls_back_in_a_parent_and_is_named_alone(v11, tmp_path):
    config, params = v11
    model_dir = tmp_path / "t5x"
    write_t5x_orbax(model_dir, params, step=3)
    write_t5x_orbax(model_dir, _random_params(config, 1), step=5)
    os.truncate(model_dir / "checkpoint_5" / "state" / "_METADATA", 100)
    # The parent gives its newest step that reads, as flan_jax's own readers do.
    loaded, _, where = t5x.read_t5x_params(str(model_dir))
    assert where == str(model_dir / "checkpoint_3")
    _assert_same(loaded, params)
    # The damaged step named on its own: a clear error, nothing written.
    with pytest.raises(checkpointing.DamagedCheckpointError,
                       match=r"checkpoint .*checkpoint_5/state cannot be read"):
        t5x.from_t5x(str(model_dir / "checkpoint_5"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert (model_dir / "checkpoint_5" / "state" / "_METADATA").stat().st_size == 100
