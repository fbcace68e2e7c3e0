"""tools/bench_matmul.py: it finds every dot of a compiled program, and times the same one."""
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tools"))
import bench_matmul  # noqa: E402


def test_dots_of_hlo_lists_each_dot_with_operand_shapes_and_dimension_numbers():
    def two_dots(x, kernel, q, k):
        weight_grad = jax.lax.dot_general(x, x, (((0,), (0,)), ((), ())))  # [8, 8]
        scores = jnp.einsum("bhqd,bhkd->bhqk", q, k)
        return jnp.dot(x, kernel).sum() + weight_grad.sum() + scores.sum()

    args = (jnp.ones((16, 8)), jnp.ones((8, 32)), jnp.ones((2, 3, 5, 4)), jnp.ones((2, 3, 7, 4)))
    found = bench_matmul.dots_of_hlo(jax.jit(two_dots).lower(*args).compile().as_text())
    dots = {(d.lhs, d.rhs, d.dims) for d, _ in found}
    assert len(found) == 3, found
    assert ((16, 8), (8, 32), (((1,), (0,)), ((), ()))) in dots
    assert ((16, 8), (16, 8), (((0,), (0,)), ((), ()))) in dots
    # The einsum keeps its batch dims (0, 1) and contracts d on both sides.
    (attention,) = [d for d, _ in found if d.dims[1][0]]
    assert attention.dims == (((3,), (3,)), ((0, 1), (0, 1)))
    assert attention.flops == 2 * 2 * 3 * 5 * 7 * 4


@pytest.mark.parametrize("lhs, rhs, dims", [
    ((6, 4), (4, 5), (((1,), (0,)), ((), ()))),
    ((6, 4), (5, 4), (((1,), (1,)), ((), ()))),
    ((4, 6), (4, 5), (((0,), (0,)), ((), ()))),
    ((2, 3, 6, 4), (2, 3, 4, 5), (((3,), (2,)), ((0, 1), (0, 1)))),
    ((2, 3, 6, 4), (2, 3, 5, 6), (((2,), (3,)), ((0, 1), (0, 1)))),
])
def test_the_torch_side_computes_the_same_contraction(lhs, rhs, dims):
    """The einsum handed to torch equals lax.dot_general's result, output axes in order."""
    dot = bench_matmul.Dot("f32", lhs, rhs, (), (), dims)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(lhs, np.float32), rng.standard_normal(rhs, np.float32)
    expected = jax.lax.dot_general(a, b, dims)
    got = np.einsum(bench_matmul._einsum_spec(dot), a, b)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
