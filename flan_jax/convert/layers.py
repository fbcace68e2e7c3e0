"""Scanned and unscanned parameter layouts of one T5, and the conversion between them.

T5Config.scan_layers changes only where a layer's parameters live, never their values:

    unscanned:  encoder/layers_0/mlp/wo/kernel  [mlp, embed]        (one array per layer)
                encoder/layers_1/mlp/wo/kernel  [mlp, embed]
    scanned:    encoder/layers/mlp/wo/kernel    [mlp, layers, embed] (layer i at index i of
                                                 axis t5.PARAM_SCAN_AXIS = 1, as T5X)

Everything outside the layers (embedding, final norms, a stack's shared relative position
table, a soft prompt) is the same in both. So a checkpoint of either layout loads into a
model of the other: flan_jax.checkpointing restores in the checkpoint's layout and converts
on the fly (see checkpointing.read_param_tree), and flan_jax.convert's to-hf reads either.

The functions work on flat {"a/b/c": leaf} trees whose leaves are numpy arrays (host
conversion), jax arrays or tracers (on device, inside jit) or jax.ShapeDtypeStructs (to
describe the other layout of an abstract tree, shardings included). Moving values between
the layouts is exact: stacking and slicing copy bits.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from flan_jax.models import t5

AXIS = t5.PARAM_SCAN_AXIS
STACKS = ("encoder", "decoder")
_UNSCANNED = re.compile(rf"({'|'.join(STACKS)})/layers_(\d+)/(.+)")
_SCANNED = re.compile(rf"({'|'.join(STACKS)})/{t5.SCANNED_LAYERS}/(.+)")


def is_scanned(names: Iterable[str]) -> bool:
    """True when a parameter tree's names are the scanned layout ('encoder/layers/...')."""
    return any(_SCANNED.fullmatch(name) for name in names)


def to_layout(flat: Mapping[str, Any], scanned: bool) -> dict[str, Any]:
    """The same parameters in the scanned (True) or unscanned (False) layout.

    A tree already in the asked layout comes back unchanged (as a new dict).
    """
    if is_scanned(flat) == scanned:
        return dict(flat)
    return to_scanned(flat) if scanned else to_unscanned(flat)


def to_scanned(flat: Mapping[str, Any]) -> dict[str, Any]:
    """'<stack>/layers_<i>/<rest>' arrays -> one '<stack>/layers/<rest>' stacked on AXIS.

    Raises ValueError when a stack's layers are not numbered 0..n-1 or do not all hold the
    same parameters (a tree that is no T5 stack).
    """
    out: dict[str, Any] = {}
    per_layer: dict[tuple[str, str], dict[int, Any]] = {}
    for name, leaf in flat.items():
        match = _UNSCANNED.fullmatch(name)
        if match is None:
            out[name] = leaf
        else:
            stack, index, rest = match.group(1), int(match.group(2)), match.group(3)
            per_layer.setdefault((stack, rest), {})[index] = leaf
    counts = {}
    for (stack, rest), layers in sorted(per_layer.items()):
        counts.setdefault(stack, set()).add(tuple(sorted(layers)))
        if sorted(layers) != list(range(len(layers))):
            raise ValueError(f"Cannot scan {stack}: {stack}/layers_<i>/{rest} exists for "
                             f"layers {sorted(layers)}, not 0..{len(layers) - 1}.")
        out[f"{stack}/{t5.SCANNED_LAYERS}/{rest}"] = _stack([layers[i]
                                                            for i in range(len(layers))])
    for stack, numberings in counts.items():
        if len(numberings) > 1:
            raise ValueError(f"Cannot scan {stack}: its layers do not all hold the same "
                             f"parameters (layer numbers seen: {sorted(numberings)}).")
    return out


def to_unscanned(flat: Mapping[str, Any]) -> dict[str, Any]:
    """'<stack>/layers/<rest>' stacked arrays -> '<stack>/layers_<i>/<rest>' per layer."""
    out: dict[str, Any] = {}
    for name, leaf in flat.items():
        match = _SCANNED.fullmatch(name)
        if match is None:
            out[name] = leaf
            continue
        stack, rest = match.groups()
        if len(leaf.shape) <= AXIS:
            raise ValueError(f"{name} has shape {tuple(leaf.shape)}: no layers axis {AXIS}, "
                             "so it is not a scanned layer parameter.")
        for i, layer in enumerate(_unstack(leaf)):
            out[f"{stack}/layers_{i}/{rest}"] = layer
    return out


def _stack(layers: list[Any]) -> Any:
    first = layers[0]
    if isinstance(first, jax.ShapeDtypeStruct):
        shape = first.shape[:AXIS] + (len(layers),) + first.shape[AXIS:]
        return jax.ShapeDtypeStruct(shape, first.dtype,
                                    sharding=_respec(first.sharding, len(first.shape),
                                                     insert=True))
    xp = jnp if isinstance(first, jax.Array) else np
    return xp.stack(layers, axis=AXIS)


def _unstack(stacked: Any) -> list[Any]:
    count = stacked.shape[AXIS]
    if isinstance(stacked, jax.ShapeDtypeStruct):
        shape = stacked.shape[:AXIS] + stacked.shape[AXIS + 1:]
        sharding = _respec(stacked.sharding, len(stacked.shape), insert=False)
        return [jax.ShapeDtypeStruct(shape, stacked.dtype, sharding=sharding)] * count
    xp = jnp if isinstance(stacked, jax.Array) else np
    return [xp.take(stacked, i, axis=AXIS) for i in range(count)]


def _respec(sharding: Any, ndim: int, insert: bool) -> Any:
    """A NamedSharding with an unsharded layers axis inserted at / removed from AXIS."""
    if not isinstance(sharding, NamedSharding):
        return sharding  # None (host arrays) or a sharding without named axes
    spec = tuple(sharding.spec) + (None,) * (ndim - len(sharding.spec))
    if insert:
        spec = spec[:AXIS] + (None,) + spec[AXIS:]
    else:
        if spec[AXIS] is not None:
            raise ValueError(f"The layers axis of a scanned parameter is sharded "
                             f"({sharding.spec}); partitioning.py keeps it unsharded.")
        spec = spec[:AXIS] + spec[AXIS + 1:]
    return NamedSharding(sharding.mesh, PartitionSpec(*spec))
