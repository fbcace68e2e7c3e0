"""Mesh construction, logical rules, and optimizer-state shardings."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest
from jax.sharding import PartitionSpec as P

from flan_jax import partitioning


def test_mesh_shape_from_num_partitions():
    mesh = partitioning.create_mesh(2)
    assert dict(mesh.shape) == {"data": 4, "model": 2}
    assert mesh.devices.size == jax.device_count() == 8


def test_num_partitions_must_divide_device_count():
    with pytest.raises(ValueError, match=r"num_partitions=3 does not divide the 8.*NUM_PARTITIONS=2"):
        partitioning.create_mesh(3)


def test_batch_must_divide_data_axis_and_microbatches():
    mesh = partitioning.create_mesh(2)  # data axis 4
    partitioning.check_batch_size(8, mesh)
    with pytest.raises(ValueError, match=r"BATCH_SIZE=6 .* multiple of 4.*BATCH_SIZE=8"):
        partitioning.check_batch_size(6, mesh)
    with pytest.raises(ValueError, match="multiple of 8"):
        partitioning.check_batch_size(12, mesh, num_microbatches=2)


@pytest.mark.parametrize("fsdp,kernel_spec,activation_spec", [
    (False, P(None, "model"), P("data", None, None)),
    (True, P("data", "model"), P("data", None, None)),
])
def test_rules_shard_params_and_keep_activation_batch_on_data(fsdp, kernel_spec, activation_spec):
    rules = partitioning.logical_axis_rules(parameter_sharding=fsdp)
    assert nn.logical_to_mesh_axes(("embed", "mlp"), rules) == kernel_spec
    # 'embed' of an activation may not reuse 'data', which 'batch' already took.
    assert nn.logical_to_mesh_axes(("batch", "length", "embed"), rules) == activation_spec
    assert nn.logical_to_mesh_axes(("vocab", "embed"), rules)[0] == "model"


def test_optimizer_state_specs_follow_params_including_factored_adafactor_stats():
    params = {"layer": {"kernel": jnp.zeros((256, 512)), "scale": jnp.zeros((512,))}}
    specs = {"layer": {"kernel": P("embed", "mlp"), "scale": P("embed")}}
    opt_state = jax.eval_shape(optax.adafactor(1e-3).init, params)
    opt_specs = partitioning.optimizer_state_specs(opt_state, params, specs)
    factored = opt_specs[0]
    # v_row drops the last dim of the kernel, v_col the first; unfactored v keeps all.
    assert factored.v_row["layer"]["kernel"] == P("embed")
    assert factored.v_col["layer"]["kernel"] == P("mlp")
    assert factored.v["layer"]["scale"] == P("embed")
    assert factored.count == P()
    adam_specs = partitioning.optimizer_state_specs(
        jax.eval_shape(optax.adam(1e-3).init, params), params, specs)
    assert adam_specs[0].mu["layer"]["kernel"] == P("embed", "mlp")
