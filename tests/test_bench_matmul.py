"""tools/bench_matmul.py: it finds every dot of a compiled program, and times the same one."""
import os
import subprocess
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


def test_dots_of_hlo_reads_operands_that_come_out_of_a_loop_state():
    # In a while body the dot's operands are get-tuple-elements of the loop state (greedy
    # decoding's cached keys): their shapes must be read too.
    def loop(q, keys):
        return jax.lax.fori_loop(0, 3, lambda i, q: jnp.einsum("bd,btd->bt", q, keys) @ keys[0],
                                 q)

    args = (jnp.ones((2, 4)), jnp.ones((2, 5, 4)))
    found = bench_matmul.dots_of_hlo(jax.jit(loop).lower(*args).compile().as_text())
    # (XLA may give q a trailing axis of 1: [2, 4, 1].)
    assert any(d.rhs == (2, 5, 4) and d.dims[1] == ((0,), (0,)) for d, _ in found), found


@pytest.mark.parametrize("program, expected", [
    ("score", ["97 in one scoring call", "1x fwd Transformer/decoder/logits_dense",
               "[1024, 256]x[256, 32128]", "sum over the dots of one scoring call: xla"]),
    ("greedy", ["in one greedy generation", "1x fwd while/body/decoder/logits_dense",
                "[16, 256]x[256, 32128]", "sum over the loop dots, per token: xla"]),
])
def test_decoding_programs_dots_are_listed_and_timed(program, expected):
    # bench-cpu's scoring call has 97 dots: per encoder layer (4) q, k, v, out, wi_0, wi_1, wo
    # and 2 attention products; per decoder layer (4) self and cross q, k, v, out, the 3 MLP
    # products and 4 attention products; and the output layer: 4 x 9 + 4 x 15 + 1.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "tools/bench_matmul.py", "--program", program,
                             "--no-torch", "--repeats", "1", "--top", "20"], cwd=repo,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for text in expected:
        assert text in result.stdout, (text, result.stdout[-3000:])


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


def test_matmul_benchmark_creates_only_the_devices_it_times():
    # A fresh process under XLA_FLAGS' 8 fake devices (as `make` exports): the tool asks for
    # its --devices before JAX starts (flan_jax.cpu_runtime), so its dots are timed on
    # max(cores, 1) intra-op threads, not 8.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    result = subprocess.run([sys.executable, "tools/bench_matmul.py", "--optimizer", "--repeats",
                             "1", "--devices", "1"], cwd=repo, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CPU runtime: inline dispatch" in result.stdout
    assert "; 1 CPU device\n" in result.stdout, result.stdout[:500]
    assert "flan_jax.optim   update" in result.stdout


def test_a_device_count_below_one_is_refused_with_the_flag_named(capsys):
    with pytest.raises(SystemExit) as error:
        bench_matmul.main(["--devices", "0"])
    assert error.value.code == 2 and "--devices 0: give at least 1" in capsys.readouterr().err
