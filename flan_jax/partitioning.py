"""Device mesh, logical-axis rules and shardings: the one place that decides where arrays live.

The model names the axes of every parameter and activation logically ('batch', 'embed', 'mlp',
'heads', 'vocab', ...). The rules below map those names onto a two-axis device mesh
('data', 'model'), the same scheme T5X's PjitPartitioner uses:

  - 'data' splits the batch (data parallelism) and, with `parameter_sharding`, also the
    'embed' axis of every parameter (FSDP-style / T5X's 2-D parameter partitioning), so
    parameters and optimizer state are spread over the data-parallel devices as well;
  - 'model' splits the wide axes of the matmuls: mlp hidden units, attention heads and the
    vocabulary (Megatron-style tensor parallelism).

A logical axis whose mesh axis is already taken by another dimension of the same array falls
through to the next rule (flax's resolution order), so activations shaped
('batch', 'length', 'embed') stay unsharded along 'embed' while parameters shard it.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
MODEL_AXIS = "model"

LogicalRules = Sequence[tuple[str, str | None]]


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
    """How the devices are arranged and how parameters are split.

    Attributes:
      num_partitions: devices along the 'model' mesh axis (tensor parallelism); the rest of
        the devices form the 'data' axis. Must divide the number of devices.
      parameter_sharding: also shard parameters and optimizer state along 'data' (FSDP).
    """

    num_partitions: int = 1
    parameter_sharding: bool = False

    def __post_init__(self):
        if not isinstance(self.num_partitions, int) or self.num_partitions < 1:
            raise ValueError(
                f"num_partitions must be a positive integer, got {self.num_partitions!r}. "
                "Set --gin.NUM_PARTITIONS to the number of devices each model replica spans "
                "(1 for pure data parallelism).")


def logical_axis_rules(parameter_sharding: bool = False) -> list[tuple[str, str | None]]:
    """T5X's standard rules (1-D activation partitioning; 1- or 2-D parameter partitioning)."""
    rules: list[tuple[str, str | None]] = [
        ("batch", DATA_AXIS),
        ("vocab", MODEL_AXIS),
        ("mlp", MODEL_AXIS),
        ("heads", MODEL_AXIS),
        ("joined_kv", MODEL_AXIS),
    ]
    if parameter_sharding:
        # Parameters carry 'embed' but never 'batch', so they take 'data' here; activations
        # already gave 'data' to 'batch' and fall through to the unsharded rule below.
        rules.append(("embed", DATA_AXIS))
    rules += [
        ("embed", None),
        ("kv", None),
        ("length", None),
        ("relpos_buckets", None),
        ("abspos_buckets", None),
        ("layers", None),
        ("stack", None),
        ("mlp_activations", None),
    ]
    return rules


@contextlib.contextmanager
def sharding_context(mesh: Mesh, rules: LogicalRules) -> Iterator[None]:
    """Where model code is traced and run on `mesh`: its activation constraints take effect.

    The model's nn.with_logical_constraint calls need both the logical-axis rules and the mesh
    as jax.set_mesh sets it (flax reads jax.sharding.get_abstract_mesh()). Under the older
    `with mesh:` they were silently skipped, and XLA then spread activations like their
    parameters: with PARAMETER_SHARDING the 'embed' axis on 'data' and the batch on no axis,
    so every chip held whole-batch activations (T5 XXL widths on a v4-128: 8.24 GiB of
    temporaries for 2+2 layers, flan_jax.aot, README "Pod scale").
    """
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
        yield


def create_mesh(num_partitions: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A ('data', 'model') mesh over all (global) devices.

    Raises a ValueError naming the device count when num_partitions does not divide it.
    """
    devices = list(jax.devices() if devices is None else devices)
    if len(devices) % num_partitions:
        raise ValueError(
            f"num_partitions={num_partitions} does not divide the {len(devices)} available "
            f"devices ({devices[0].platform}). Choose a divisor of {len(devices)}, e.g. "
            f"--gin.NUM_PARTITIONS={_largest_divisor_at_most(len(devices), num_partitions)}.")
    shape = (len(devices) // num_partitions, num_partitions)
    try:
        # Topology-aware on TPU/GPU (keeps 'model' groups on fast links).
        device_grid = mesh_utils.create_device_mesh(shape, devices)
    except (ValueError, NotImplementedError, AssertionError):
        device_grid = np.asarray(devices).reshape(shape)
    return Mesh(device_grid, (DATA_AXIS, MODEL_AXIS))


def _largest_divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


def data_parallel_size(mesh: Mesh) -> int:
    return mesh.shape[DATA_AXIS]


def check_batch_size(batch_size: int, mesh: Mesh, num_microbatches: int = 1) -> None:
    """The global batch must split evenly over hosts, data-parallel devices and microbatches."""
    data_size = data_parallel_size(mesh)
    processes = jax.process_count()
    step = np.lcm(data_size, processes) * num_microbatches
    if batch_size <= 0 or batch_size % step:
        nearest = max(step, round(batch_size / step) * step)
        raise ValueError(
            f"BATCH_SIZE={batch_size} cannot be split evenly: the mesh's data axis has "
            f"{data_size} device(s), there are {processes} process(es) and "
            f"{num_microbatches} microbatch(es), so the batch must be a multiple of {step}. "
            f"Use e.g. --gin.BATCH_SIZE={nearest}, or change NUM_PARTITIONS / "
            "num_microbatches.")


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a [batch, ...] input array: rows over 'data', replicated over 'model'."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def logical_to_shardings(logical_specs: Any, mesh: Mesh, rules: LogicalRules) -> Any:
    """Maps a pytree of logical PartitionSpecs (from nn.get_partition_spec) to NamedShardings."""
    return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def shard_abstract_tree(abstract: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs that also carry their sharding (what Orbax restores into)."""
    return jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract, shardings)


def param_layout(boxed_abstract_params: Any, mesh: Mesh, rules: LogicalRules
                 ) -> tuple[Any, Any]:
    """Where the params live, without an optimizer or a train state.

    Args:
      boxed_abstract_params: jax.eval_shape of the model's init ["params"], leaves still
        boxed with their logical axis names (nn.Partitioned).
    Returns:
      (abstract params: ShapeDtypeStructs carrying their shardings, what Orbax restores
      into; NamedSharding per param, the jit in_shardings for the params).
    """
    specs = nn.get_partition_spec(boxed_abstract_params)
    shardings = logical_to_shardings(specs, mesh, rules)
    return shard_abstract_tree(nn.unbox(boxed_abstract_params), shardings), shardings


def optimizer_state_specs(abstract_opt_state: Any, abstract_params: Any,
                          param_specs: Any) -> Any:
    """Logical PartitionSpecs for an optimizer state, derived from the params it tracks.

    Works for any optax state whose leaves sit under the same dict keys as a parameter:
    a leaf shaped like its parameter (Adam moments, Adafactor's unfactored v) takes the
    parameter's spec; a leaf with one dimension fewer (Adafactor's factored row / column
    statistics) takes the spec with that dimension dropped; anything else (step counts,
    placeholders) is replicated.
    """
    params_by_path = {
        _dict_keys(path): (leaf.shape, spec)
        for (path, leaf), spec in zip(
            jax.tree_util.tree_flatten_with_path(abstract_params)[0],
            jax.tree_util.tree_leaves(param_specs, is_leaf=_is_spec))}

    def spec_for(path, leaf) -> PartitionSpec:
        keys = _dict_keys(path)
        # The param path is the longest suffix of the optimizer-state path that names a param.
        for start in range(len(keys)):
            if keys[start:] in params_by_path:
                shape, spec = params_by_path[keys[start:]]
                return _spec_for_shape(leaf.shape, shape, spec)
        return PartitionSpec()

    return jax.tree_util.tree_map_with_path(spec_for, abstract_opt_state)


def _is_spec(x: Any) -> bool:
    return isinstance(x, PartitionSpec)


def _dict_keys(path) -> tuple[str, ...]:
    return tuple(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey))


def _spec_for_shape(shape: tuple[int, ...], param_shape: tuple[int, ...],
                    param_spec: PartitionSpec) -> PartitionSpec:
    axes = tuple(param_spec) + (None,) * (len(param_shape) - len(param_spec))
    if tuple(shape) == tuple(param_shape):
        return PartitionSpec(*axes)
    if len(shape) == len(param_shape) - 1:
        for dropped in range(len(param_shape) - 1, -1, -1):
            if tuple(shape) == param_shape[:dropped] + param_shape[dropped + 1:]:
                return PartitionSpec(*(axes[:dropped] + axes[dropped + 1:]))
    return PartitionSpec()
