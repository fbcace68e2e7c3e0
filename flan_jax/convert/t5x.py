"""Import T5X checkpoints: the released T5 / Flan-T5 tensorstore layout and T5X's Orbax layout.

T5X's tensorstore layout (t5x/checkpoints.py, checkpoint VERSION 3) is a directory
`checkpoint_<step>/` holding
  - `checkpoint`: a flax msgpack of {'version': 3, 'optimizer': {'target': params,
    'state': {'step': ..., 'param_states': ...}}}, where each partitioned array is replaced by
    a TensorStore spec (a dict with 'driver': 'zarr', 'kvstore': {'driver': 'file' or 'gcs',
    'path': 'target.encoder.layers_0.attention.query.kernel'}, 'metadata': ...), its path
    relative to the checkpoint directory (released checkpoints name the dummy bucket
    't5x-dummy-bucket'); small arrays are stored inline;
  - one zarr directory per such array, named by its param path with '/' -> '.'.
Version <= 2 stored bfloat16 as uint16, read back here as bfloat16.

T5X's Orbax layout (t5x/checkpoints.py OrbaxCheckpointManagerInterface, what T5X's train.py
writes by default, use_orbax=True) is an Orbax CheckpointManager directory, MODEL_DIR itself:
  MODEL_DIR/checkpoint_<step>/            step_prefix 'checkpoint'
      _CHECKPOINT_METADATA                the step's Orbax metadata
      state/                              PyTreeCheckpointHandler(use_ocdbt=True) of the
                                          train state's state_dict(): {'target': params,
                                          'state': {'step', 'param_states'}}
      dataset/                            the tf.data iterator, when save_dataset is set
Older T5X versions wrote the same tree (optionally under an 'optimizer' key) with a plain
Orbax PyTree checkpointer straight into checkpoint_<step>/; both are read.

Parameter paths under target/ are flan_jax's own (T5X's minimal T5 and the released
checkpoints: encoder/layers_0/attention/query/kernel ...). Two T5X variants are normalised:
  - scanned layers (scan_layers=True): a stack's layers are one array with a 'layers' axis
    (axis 1, T5X's param_scan_axis default), under <stack>/layers/... or <stack>/<stack>/...
    (or <stack>/<stack>/layers/...); unstacked into <stack>/layers_<i>/...;
  - attention kernels split by head ([emb, heads, head_dim] and [heads, head_dim, emb], as in
    t5x/examples/scalable_t5); reshaped to flan_jax's 2-D [emb, heads*head_dim] kernels.
A relative position table per layer (uMT5 / t5x/examples/scalable_t5, whose scanned layers
each draw their own) imports into T5Config.relpos_per_layer=True, the tables kept per layer
('<stack>/layers_<i>/relpos_bias/rel_embedding'). When every layer's table is identical
(e.g. a scanned checkpoint fine-tuned from a released one without training them apart) the
model keeps T5's one table per stack, unless a --gin_file asks for relpos_per_layer.

The converted checkpoint is always in flan_jax's unscanned layout; a model with
scan_layers=True loads it as it is (flan_jax.checkpointing converts layouts on restore).

Peak memory: one float32 copy of the params plus one source array (a whole stacked array
when scanned). Optimizer state is never read.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from flan_jax import checkpointing
from flan_jax.convert import checkpoint_io, naming
from flan_jax.models import t5

MSGPACK_FILE = "checkpoint"
_STACKS = ("encoder", "decoder")
# Sub-modules of a layer; a scanned stack's direct children with these names are per layer.
_LAYER_MODULES = ("attention", "self_attention", "encoder_decoder_attention", "mlp",
                  "pre_attention_layer_norm", "pre_self_attention_layer_norm",
                  "pre_cross_attention_layer_norm", "pre_mlp_layer_norm", "relpos_bias",
                  "relative_posemb")
# A CheckpointManager-written Orbax checkpoint keeps the train state in this item directory.
_ORBAX_ITEM = "state"
_RELPOS_NAMES = ("relpos_bias/rel_embedding", "relative_posemb/rel_embedding")
LazyArray = Callable[[], np.ndarray]


# ----------------------------------------------------------------------------------------
# Locating and reading the checkpoint
# ----------------------------------------------------------------------------------------

def resolve_checkpoint_dir(path: str) -> str:
    """A checkpoint_<step> dir, its `checkpoint` file, or a dir of checkpoint_<step> dirs."""
    return _candidate_dirs(path)[0]


def _candidate_dirs(path: str) -> list[str]:
    """The checkpoint dir(s) `path` names, newest first: one, or every step of a parent."""
    path = os.path.abspath(path)
    if os.path.isfile(path) and os.path.basename(path) == MSGPACK_FILE:
        return [os.path.dirname(path)]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"T5X checkpoint {path} does not exist.")
    if _is_checkpoint_dir(path):
        return [path]
    steps = sorted(((int(m.group(1)), name) for name in os.listdir(path)
                    if (m := re.fullmatch(r"checkpoint_(\d+)", name))
                    and _is_checkpoint_dir(os.path.join(path, name))), reverse=True)
    if steps:
        return [os.path.join(path, name) for _, name in steps]
    raise FileNotFoundError(
        f"{path} is not a T5X checkpoint: expected a checkpoint_<step> directory holding a "
        f"'{MSGPACK_FILE}' msgpack file (tensorstore layout) or Orbax metadata, or a "
        "directory of such checkpoint_<step> directories.")


def _is_checkpoint_dir(path: str) -> bool:
    return (os.path.isfile(os.path.join(path, MSGPACK_FILE)) or _is_orbax_dir(path)
            or _is_orbax_dir(os.path.join(path, _ORBAX_ITEM)))


def _is_orbax_dir(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, name))
               for name in ("_METADATA", "_CHECKPOINT_METADATA", "manifest.ocdbt"))


def read_target(checkpoint_dir: str) -> dict[str, LazyArray | np.ndarray]:
    """{"encoder/layers_0/...": array or zero-argument reader} of the checkpoint's target."""
    msgpack_path = os.path.join(checkpoint_dir, MSGPACK_FILE)
    if os.path.isfile(msgpack_path) and not _is_orbax_dir(checkpoint_dir):
        return _read_tensorstore_layout(checkpoint_dir, msgpack_path)
    # A CheckpointManager's step dir also holds Orbax metadata (_CHECKPOINT_METADATA), but
    # the tree is in its state/ item.
    item_dir = os.path.join(checkpoint_dir, _ORBAX_ITEM)
    return _read_orbax_layout(item_dir if _is_orbax_dir(item_dir) else checkpoint_dir)


def _read_tensorstore_layout(checkpoint_dir: str, msgpack_path: str) -> dict[str, Any]:
    from flax import serialization
    with open(msgpack_path, "rb") as f:
        try:
            contents = serialization.msgpack_restore(f.read())
        except Exception as e:  # msgpack raises several unrelated types
            raise checkpointing.DamagedCheckpointError(
                f"{msgpack_path} cannot be read as a T5X msgpack checkpoint: {e}") from None
    if not isinstance(contents, dict) or "optimizer" not in contents:
        found = sorted(contents) if isinstance(contents, dict) else type(contents).__name__
        raise ValueError(f"{msgpack_path} has no 'optimizer' entry; not a T5X checkpoint "
                         f"(found {found}).")
    target = contents["optimizer"].get("target")
    if not isinstance(target, dict):
        raise ValueError(f"{msgpack_path} has no optimizer/target parameter tree.")
    old_uint16_bfloat16 = int(contents.get("version", 3)) < 3
    flat = {}
    for name, leaf in checkpointing.flatten(target, is_leaf=_is_ts_spec).items():
        if _is_ts_spec(leaf):
            flat[name] = _tensorstore_reader(checkpoint_dir, leaf, name, old_uint16_bfloat16)
        else:
            flat[name] = _maybe_bfloat16(np.asarray(leaf), old_uint16_bfloat16)
    return flat


def _maybe_bfloat16(array: np.ndarray, uint16_is_bfloat16: bool) -> np.ndarray:
    # Parameters are never integers: a uint16 array of an old checkpoint is bfloat16 bits.
    if uint16_is_bfloat16 and array.dtype == np.uint16:
        import ml_dtypes
        return array.view(ml_dtypes.bfloat16)
    return array


def _is_ts_spec(leaf: Any) -> bool:
    return isinstance(leaf, dict) and "driver" in leaf and "kvstore" in leaf


def _tensorstore_reader(checkpoint_dir: str, spec: Mapping[str, Any], name: str,
                        uint16_is_bfloat16: bool) -> LazyArray:
    """A reader of one array; its spec's relative (or dummy-bucket GCS) path made local."""
    spec = _json_ready(spec)
    kvstore = dict(spec["kvstore"])
    relative = kvstore.pop("path", None) or spec.pop("path", None)
    if relative is None:
        raise ValueError(f"{checkpoint_dir}/{MSGPACK_FILE}: the TensorStore spec of "
                         f"target/{name} has no path.")
    # Released checkpoints were written to GCS with a placeholder bucket; read them locally.
    spec["kvstore"] = {"driver": "file", "path": os.path.join(checkpoint_dir, relative)}

    def read() -> np.ndarray:
        import tensorstore as ts
        array_dir = spec["kvstore"]["path"]
        if not os.path.isdir(array_dir):
            raise checkpointing.DamagedCheckpointError(
                f"T5X checkpoint {checkpoint_dir} cannot be read (the array of target/{name} "
                f"should be in {array_dir}, which is missing)")
        try:
            array = ts.open(spec, open=True, read=True).result().read().result()
        except Exception as e:  # tensorstore reports bad data as ValueError / its own types
            raise checkpointing.DamagedCheckpointError(
                f"T5X checkpoint {checkpoint_dir} cannot be read (target/{name} in "
                f"{array_dir}: {e})") from None
        return _maybe_bfloat16(array, uint16_is_bfloat16)

    return read


def _json_ready(value: Any) -> Any:
    """A spec as msgpack restored it (numpy arrays, numpy scalars) -> plain JSON values."""
    if isinstance(value, Mapping):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def _read_orbax_layout(item_dir: str) -> dict[str, Any]:
    # Restore target/ only, as numpy; optimizer state stays on disk.
    target = checkpointing.read_param_tree(item_dir, roots=(("target",),
                                                            ("optimizer", "target")))
    return {name: np.asarray(v) for name, v in checkpointing.flatten(target).items()}


# ----------------------------------------------------------------------------------------
# Normalising T5X variants to flan_jax's parameter tree
# ----------------------------------------------------------------------------------------

def _load(value: LazyArray | np.ndarray) -> np.ndarray:
    return value() if callable(value) else value


def normalise(flat: Mapping[str, LazyArray | np.ndarray], where: str,
              scan_axis: int = 1) -> dict[str, np.ndarray]:
    """T5X target arrays -> flan_jax {path: float32 array}; reads each source array once.

    Relative position tables stay where they were: one per stack, or per layer under
    '<stack>/layers_<i>/relpos_bias/rel_embedding' (see fit_relpos).
    """
    out: dict[str, np.ndarray] = {}
    for name in sorted(flat):
        scanned = _scanned_parts(name)
        if scanned is not None:
            stack, rest = scanned
            array = _load(flat[name])
            if array.ndim < 2 or scan_axis >= array.ndim:
                raise ValueError(f"{where}: scanned parameter target/{name} has shape "
                                 f"{array.shape}, no layers axis {scan_axis}.")
            for i in range(array.shape[scan_axis]):
                layer = np.take(array, i, axis=scan_axis)
                out[f"{stack}/layers_{i}/{_relpos_name(rest)}"] = _as_float32(layer)
            del array
            continue
        match = re.fullmatch(rf"({'|'.join(_STACKS)})/layers_(\d+)/(.+)", name)
        ours = (name if match is None else
                f"{match.group(1)}/layers_{match.group(2)}/{_relpos_name(match.group(3))}")
        out[ours] = _as_float32(_load(flat[name]))
    for name in list(out):
        out[name] = _two_dimensional_attention(name, out[name])
    return out


def _scanned_parts(name: str) -> tuple[str, str] | None:
    """'encoder/layers/mlp/wo/kernel' (or encoder/encoder/...) -> ('encoder', 'mlp/wo/kernel')."""
    for stack in _STACKS:
        for prefix in (f"{stack}/{stack}/layers/", f"{stack}/layers/", f"{stack}/{stack}/"):
            if name.startswith(prefix):
                rest = name[len(prefix):]
                if rest.split("/")[0] in _LAYER_MODULES:
                    return stack, rest
    return None


def _relpos_name(rest: str) -> str:
    """A layer's table under either T5X name -> flan_jax's 'relpos_bias/rel_embedding'."""
    return _RELPOS_NAMES[0] if rest in _RELPOS_NAMES else rest


def _per_layer_tables(params: Mapping[str, np.ndarray], stack: str) -> list[str]:
    """Names of the stack's per-layer relative position tables, in layer order."""
    pattern = re.compile(rf"{stack}/layers_(\d+)/{_RELPOS_NAMES[0]}")
    found = {int(m.group(1)): name for name in params if (m := pattern.fullmatch(name))}
    return [found[i] for i in sorted(found)]


def tables_differ(params: Mapping[str, np.ndarray]) -> bool:
    """Does some stack hold per-layer relative position tables that are not all equal?"""
    for stack in _STACKS:
        names = _per_layer_tables(params, stack)
        if any(not np.array_equal(params[n], params[names[0]]) for n in names[1:]):
            return True
    return False


def fit_relpos(params: dict[str, np.ndarray], per_layer: bool, where: str
               ) -> dict[str, np.ndarray]:
    """The tables laid out as T5Config.relpos_per_layer says: per-layer tables that are all
    equal become the stack's one table; a stack's one table is copied into every layer.

    Raises ValueError when one table per stack is asked for but the layers' tables differ.
    """
    params = dict(params)
    for stack in _STACKS:
        names, shared = _per_layer_tables(params, stack), f"{stack}/{_RELPOS_NAMES[0]}"
        if per_layer and shared in params:
            table = params.pop(shared)
            count = len({m.group(1) for name in params
                         if (m := re.match(rf"{stack}/layers_(\d+)/", name))})
            params.update({f"{stack}/layers_{i}/{_RELPOS_NAMES[0]}": table.copy()
                           for i in range(count)})
        elif not per_layer and names:
            first = params[names[0]]
            for i, name in enumerate(names[1:], start=1):
                if not np.array_equal(params[name], first):
                    raise ValueError(
                        f"{where}: the relative position table of {stack} layer {i} differs "
                        f"from layer 0's: this checkpoint has a table per layer (uMT5 / "
                        "scalable_t5 style), but the model config shares one table per stack "
                        "(relpos_per_layer=False), so it cannot hold this model. Drop the "
                        "--gin_file to read the config off the checkpoint, or set "
                        "t5.T5Config.relpos_per_layer = True in it.")
            for name in names:
                del params[name]
            params[shared] = first
    return params


def _two_dimensional_attention(name: str, array: np.ndarray) -> np.ndarray:
    """[emb, heads, head_dim] -> [emb, heads*head_dim]; [heads, head_dim, emb] -> [.., emb]."""
    if array.ndim != 3 or not re.search(r"/(query|key|value|out)/kernel$", name):
        return array
    if name.endswith("/out/kernel"):
        return array.reshape(-1, array.shape[-1])
    return array.reshape(array.shape[0], -1)


def _as_float32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _to_host_arrays(params: dict[str, np.ndarray]) -> dict[str, Any]:
    """numpy -> host jax.Arrays (checkpoint_io.host_array), one tensor alive twice at most."""
    return {name: checkpoint_io.host_array(params.pop(name)) for name in sorted(params)}


# ----------------------------------------------------------------------------------------
# from-t5x
# ----------------------------------------------------------------------------------------

def read_t5x_params(path: str, gin_files: Sequence[str] = (), scan_axis: int = 1
                    ) -> tuple[dict[str, np.ndarray], t5.T5Config, str]:
    """(flan_jax params {path: float32}, their T5Config, the checkpoint dir) of a T5X ckpt."""
    # As flan_jax's own readers: a parent directory gives its newest step that reads.
    candidates = _candidate_dirs(path)
    damaged: list[checkpointing.DamagedCheckpointError] = []
    for checkpoint_dir in candidates:
        try:
            params = normalise(read_target(checkpoint_dir), checkpoint_dir, scan_axis)
        except checkpointing.DamagedCheckpointError as error:
            logging.warning("%s; trying the previous checkpoint.", error)
            damaged.append(error)
            continue
        break
    else:
        if len(damaged) == 1:
            raise damaged[0]
        raise checkpointing.DamagedCheckpointError(
            f"No T5X checkpoint in {path} can be read ({len(damaged)} tried, all damaged: "
            f"{'; '.join(map(str, damaged))}). Point at a good copy of the checkpoint.")
    if damaged:
        logging.warning("Using %s; newer checkpoint(s) could not be read.", checkpoint_dir)
    if gin_files:
        config = checkpoint_io.config_from_gin(gin_files)
    else:
        # Per-layer tables that are all equal are one table: T5's layout, kept when possible.
        config = dataclasses.replace(naming.infer_config(
            {name: a.shape for name, a in params.items()}, checkpoint_dir),
            relpos_per_layer=tables_differ(params))
    params = fit_relpos(params, config.relpos_per_layer, checkpoint_dir)
    # What is written is the unscanned layout; a scanned model converts it on restore.
    naming.check_shapes(dataclasses.replace(config, scan_layers=False),
                        {name: a.shape for name, a in params.items()}, checkpoint_dir)
    return params, config, checkpoint_dir


def from_t5x(path: str, out_dir: str, gin_files: Sequence[str] = (),
             vocabulary_file: str | None = None, scan_axis: int = 1) -> t5.T5Config:
    """Converts a T5X checkpoint into a flan_jax initial checkpoint in out_dir.

    Without gin_files the config comes from the shapes (naming.infer_config: gated MLPs are
    taken as gated-GELU, as in T5 v1.1 / Flan-T5). T5X checkpoints carry no vocabulary; pass
    vocabulary_file to copy one next to the checkpoint and name it in model.gin.
    """
    if vocabulary_file is not None and not os.path.isfile(vocabulary_file):
        raise FileNotFoundError(f"--vocabulary {vocabulary_file} is not a file.")
    with checkpoint_io.atomic_output_dir(out_dir) as tmp:
        params, config, checkpoint_dir = read_t5x_params(path, gin_files, scan_axis)
        checkpoint_io.write_converted(tmp, out_dir,
                                      checkpointing.unflatten(_to_host_arrays(params)), config,
                                      source=f"T5X {checkpoint_dir}",
                                      vocabulary_file=vocabulary_file)
    return config
