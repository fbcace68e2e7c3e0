"""Per-matmul accounting of the bench-cpu train step: XLA:CPU against PyTorch (MKL).

    python tools/bench_matmul.py [--devices 1] [--repeats 7] [--no-torch] [--top 40]
                                 [--program train|score|greedy]

Compiles the real bench-cpu step (tools/bench.py's BenchConfig, the step flan_jax.train runs),
lists every dot of the optimised HLO (inside fusions too) with its operand shapes, layouts,
dimension numbers and where it comes from (forward, or the input / weight gradient of which
layer, from the op's metadata), groups identical dots, and times each distinct one:

  xla    the same dot_general (shapes, dtypes, dimension numbers) jitted alone, so XLA:CPU
         compiles it as it likes (YNNPACK, Eigen): best of --repeats calls;
  torch  the same contraction in PyTorch (torch.einsum on the same row-major operands, so
         a transposed operand reaches MKL as a transposed view): best of --repeats;

the two interleaved call by call, so that load from other processes falls on both. It prints
one row per distinct dot (count in the step, GFLOP, milliseconds and GFLOP/s of each side,
xla/torch ratio, and the step's total milliseconds for that dot at XLA's rate), sorted by
the time XLA loses, then the load average. A lone dot does not see the step's fusions
(YNNPACK fuses the softmax into the attention logits' dot, for example); the profile of the
whole step (tools/bench.py --profile-dir) shows those.

--program score and --program greedy do the same for the programs tools/bench_decode.py times
on the bench-cpu model, with its default shapes: one scoring call (flan_jax.models.decoding.
score, 16 rows of 256 input and 64 target ids), one greedy generation (decoding.generate,
16 x 256 input ids, 64 new tokens). In greedy's, the dots under "while/body" (in "where") run
once per generated token; XLA may compile the first step outside the loop, so a dot can appear
both there and in the loop. Its sums are split: the loop's dots per token, the rest once.

--variants also times rewrites of the named shapes that XLA:CPU might run faster (the same
product through other operand layouts, or the vocabulary projection in chunks), each against
the original, to decide the model's layout (see README "Benchmarks").

--optimizer times the bench-cpu Adafactor update alone (jitted: update and apply, on the
bench-cpu parameter tree): flan_jax.optim's against optax.adafactor's with the same
settings, interleaved, best of --repeats, wall and CPU seconds, and prints XLA's cost
analysis (FLOPs, bytes) of both before (lowered) and after (compiled) optimisation.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

# This checkout's flan_jax, not the installed one: a worktree measures its own code.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import bench_decode  # noqa: E402
import bench_peer  # noqa: E402
from flan_jax import cpu_runtime, partitioning  # noqa: E402

_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\w+)\[([\d,]*)\](?:\{([\d,]*)\})? ([\w-]+)\(")
_OPERANDS = re.compile(r"dot\(%(\S+), %(\S+)\)")
_DIMS = re.compile(r"(lhs_batch_dims|lhs_contracting_dims|rhs_batch_dims|"
                   r"rhs_contracting_dims)=\{([\d,]*)\}")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


@dataclasses.dataclass(frozen=True)
class Dot:
    """One dot of the compiled step, as XLA:CPU would run it alone.

    lhs / rhs: operand shapes; *_layout: minor-to-major layouts as HLO prints them;
    dims: ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)), lax.dot_general's.
    """

    dtype: str
    lhs: tuple[int, ...]
    rhs: tuple[int, ...]
    lhs_layout: tuple[int, ...]
    rhs_layout: tuple[int, ...]
    dims: tuple[tuple[tuple[int, ...], tuple[int, ...]], tuple[tuple[int, ...], tuple[int, ...]]]

    @property
    def flops(self) -> int:
        free_rhs = [d for i, d in enumerate(self.rhs)
                    if i not in self.dims[0][1] and i not in self.dims[1][1]]
        return 2 * int(np.prod(self.lhs)) * int(np.prod(free_rhs, dtype=np.int64))

    def describe(self) -> str:
        (lc, rc), (lb, rb) = self.dims
        batch = f" batch {list(lb)}x{list(rb)}" if lb else ""
        return (f"{list(self.lhs)}x{list(self.rhs)} contract {list(lc)}x{list(rc)}{batch}")


def _ints(text: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",")) if text else ()


def dots_of_hlo(hlo_text: str) -> list[tuple[Dot, str]]:
    """Every dot in an HLO module's text (all computations), with its op_name metadata."""
    found = []
    shapes: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {}
    for line in hlo_text.splitlines():
        if line.endswith("{") and not line.startswith(" "):
            shapes = {}  # a new computation: names are local to it
            continue
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        name, dtype, dims, layout, opcode = match.groups()
        shapes[name] = (dtype, _ints(dims), _ints(layout))
        if opcode != "dot":
            continue
        lhs_name, rhs_name = _OPERANDS.search(line).groups()
        numbers = {key: _ints(value) for key, value in _DIMS.findall(line)}
        (_, lhs, lhs_layout), (_, rhs, rhs_layout) = shapes[lhs_name], shapes[rhs_name]
        dot = Dot(dtype, lhs, rhs, lhs_layout, rhs_layout,
                  ((numbers.get("lhs_contracting_dims", ()),
                    numbers.get("rhs_contracting_dims", ())),
                   (numbers.get("lhs_batch_dims", ()), numbers.get("rhs_batch_dims", ()))))
        op_name = _OP_NAME.search(line)
        found.append((dot, op_name.group(1) if op_name else "?"))
    return found


def _role(op_name: str) -> str:
    """'forward' or 'backward', and the module path, from a jax op_name."""
    kind = "bwd" if "transpose(" in op_name else "fwd"
    path = re.sub(r"^jit\([^)]*\)/(transpose\()?(jvp\()?", "", op_name)
    path = re.sub(r"Transformer\.(encode|decode)/", "", path).replace(")", "")
    path = re.sub(r"layers_\d+", "layers_*", path)
    return f"{kind} {path.rsplit('/', 1)[0]}"


def decoding_hlo(program: str, devices: int) -> str:
    """The optimised HLO of one scoring call or one greedy generation on bench-cpu, with
    tools/bench_decode.py's default shapes (16 rows x 256 input ids; 64 target or new tokens)."""
    from flan_jax.models import decoding, t5
    shapes = bench_decode.parse_args([])
    model = t5.Transformer(bench.bench_cpu_model())
    tokens = jnp.ones((1, 4), jnp.int32)
    params = nn.unbox(jax.eval_shape(
        lambda key: model.init(key, tokens, tokens, tokens, enable_dropout=False),
        jax.random.key(0)))["params"]
    inputs = jax.ShapeDtypeStruct((shapes.batch, shapes.input_length), jnp.int32)
    if program == "score":
        targets = jax.ShapeDtypeStruct((shapes.batch, shapes.decode_length), jnp.int32)
        fn = jax.jit(functools.partial(decoding.score, model))
        args = (params, {"encoder_input_tokens": inputs, "decoder_input_tokens": targets,
                         "decoder_target_tokens": targets})
    else:
        config = decoding.DecodingConfig("greedy", shapes.decode_length)
        fn = jax.jit(functools.partial(decoding.generate, model, config=config, eos_id=-1))
        args = (params, inputs)
    mesh = partitioning.create_mesh(1, jax.devices()[:devices])
    with partitioning.sharding_context(mesh, partitioning.logical_axis_rules()):
        return fn.lower(*args).compile().as_text()


def step_hlo(devices: int) -> str:
    """The optimised HLO of the bench-cpu train step on `devices` CPU devices."""
    built = bench.build_benchmark(bench.BenchConfig(devices=devices))
    with partitioning.sharding_context(built.mesh, built.rules):
        return built.step_fn.lower(built.state, built.batch,
                                   built.dropout_key).compile().as_text()


# ---------------------------------------------------------------------------- timing
def _einsum_spec(dot: Dot) -> str:
    """lax.dot_general's dimension numbers as an einsum over row-major operands."""
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    lhs = [next(letters) for _ in dot.lhs]
    rhs = [next(letters) for _ in dot.rhs]
    (lc, rc), (lb, rb) = dot.dims
    for left, right in list(zip(lc, rc)) + list(zip(lb, rb)):
        rhs[right] = lhs[left]
    out = ([lhs[i] for i in lb] + [lhs[i] for i in range(len(lhs)) if i not in lc + lb]
           + [rhs[i] for i in range(len(rhs)) if i not in rc + rb])
    return f"{''.join(lhs)},{''.join(rhs)}->{''.join(out)}"


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


class Timer:
    """Times jitted JAX callables and torch callables, interleaved, best of `repeats`."""

    def __init__(self, repeats: int, use_torch: bool):
        self.repeats = repeats
        self.torch = None
        if use_torch:
            self.torch = bench_peer.configure_torch()

    def compare(self, jax_fns: dict[str, tuple], torch_fn=None) -> dict[str, float]:
        """jax_fns: name -> (jitted fn, args). Returns name -> best seconds ("torch" too)."""
        calls = {}
        for name, (fn, args) in jax_fns.items():
            fn(*args).block_until_ready()  # compile
            calls[name] = lambda fn=fn, args=args: fn(*args).block_until_ready()
        if torch_fn is not None:
            torch_fn()
            calls["torch"] = torch_fn
        best = dict.fromkeys(calls, float("inf"))
        for _ in range(self.repeats):  # interleaved: one call of each per repeat
            for name, call in calls.items():
                best[name] = min(best[name], _best(call, 1))
        return best

    def dot(self, dot: Dot) -> dict[str, float]:
        rng = np.random.default_rng(0)
        lhs = rng.standard_normal(dot.lhs, np.float32)
        rhs = rng.standard_normal(dot.rhs, np.float32)
        fn = jax.jit(lambda a, b: jax.lax.dot_general(a, b, dot.dims))
        torch_fn = None
        if self.torch is not None:
            spec, tl, tr = _einsum_spec(dot), self.torch.from_numpy(lhs), self.torch.from_numpy(rhs)
            torch_fn = lambda: self.torch.einsum(spec, tl, tr)
        return self.compare({"xla": (fn, (jnp.asarray(lhs), jnp.asarray(rhs)))}, torch_fn)


# ---------------------------------------------------------------------------- rewrites
def variants(timer: Timer) -> list[tuple[str, dict[str, float], float]]:
    """Rewrites of bench-cpu's slow dots, each timed against the form the step uses.

    Returns (title, {form: best seconds}, GFLOP) rows.
    """
    rng = np.random.default_rng(0)
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape, np.float32))
    rows = []
    # The vocabulary projection's input gradient: g [rows, vocab] . kernel [embed, vocab]^T.
    g, kernel = normal(1024, 32128), normal(256, 32128)
    forms = {
        "NT (step)": (jax.jit(lambda g, k: jax.lax.dot_general(g, k, (((1,), (1,)), ((), ())))),
                      (g, kernel)),
        "kernel.T copied, NN": (jax.jit(lambda g, k: jnp.dot(g, k.T.copy())), (g, kernel)),
        "[out,in] kernel, NN": (jax.jit(jnp.dot), (g, kernel.T.copy())),
        "HIGHEST precision": (jax.jit(lambda g, k: jax.lax.dot_general(
            g, k, (((1,), (1,)), ((), ())), precision="highest")), (g, kernel)),
    }
    for chunks in (4, 8):
        def chunked(g, k, chunks=chunks):
            width = g.shape[1] // chunks
            parts = [jax.lax.dot_general(g[:, i * width:(i + 1) * width],
                                         k[:, i * width:(i + 1) * width],
                                         (((1,), (1,)), ((), ()))) for i in range(chunks)]
            return sum(parts[1:], parts[0])
        forms[f"{chunks} vocab chunks"] = (jax.jit(chunked), (g, kernel))
    torch_fn = None
    if timer.torch is not None:
        tg, tk = (timer.torch.from_numpy(np.asarray(x)) for x in (g, kernel))
        torch_fn = lambda: tg @ tk.T
    rows.append(("logits input gradient [1024,32128]x[256,32128]^T",
                 timer.compare(forms, torch_fn), 2 * 1024 * 32128 * 256 / 1e9))
    # The vocabulary projection forward: y [rows, embed] . kernel [embed, vocab].
    y = normal(1024, 256)
    forms = {
        "NN (step)": (jax.jit(jnp.dot), (y, kernel)),
        "[out,in] kernel, NT": (jax.jit(lambda y, k: jax.lax.dot_general(
            y, k, (((1,), (1,)), ((), ())))), (y, kernel.T.copy())),
    }
    torch_fn = None
    if timer.torch is not None:
        ty, tk = (timer.torch.from_numpy(np.asarray(x)) for x in (y, kernel))
        torch_fn = lambda: ty @ tk
    rows.append(("logits forward [1024,256]x[256,32128]", timer.compare(forms, torch_fn),
                 2 * 1024 * 32128 * 256 / 1e9))
    # The vocabulary projection's weight gradient: y [rows, embed]^T . g [rows, vocab].
    forms = {
        "TN (step)": (jax.jit(lambda y, g: jax.lax.dot_general(y, g, (((0,), (0,)), ((), ())))),
                      (y, g)),
        "y.T copied, NN": (jax.jit(lambda y, g: jnp.dot(y.T.copy(), g)), (y, g)),
        "as [vocab, embed] = g^T y": (jax.jit(lambda y, g: jax.lax.dot_general(
            g, y, (((0,), (0,)), ((), ())))), (y, g)),
    }
    torch_fn = None
    if timer.torch is not None:
        ty, tg = (timer.torch.from_numpy(np.asarray(x)) for x in (y, g))
        torch_fn = lambda: ty.T @ tg
    rows.append(("logits weight gradient [1024,256]^Tx[1024,32128]",
                 timer.compare(forms, torch_fn), 2 * 1024 * 32128 * 256 / 1e9))
    return rows


def optimizer_update(repeats: int) -> None:
    """flan_jax.optim's Adafactor update on bench-cpu's parameters against optax's."""
    import flax.linen as nn
    import optax

    from flan_jax import optim
    from flan_jax.models import t5

    config = bench.BenchConfig()
    model = t5.Transformer(config.model)
    tokens = jnp.ones((1, 4), jnp.int32)
    params = nn.unbox(jax.jit(lambda key: model.init(key, tokens, tokens, tokens,
                                                     enable_dropout=False))(
        jax.random.PRNGKey(0)))["params"]
    grads = jax.tree.map(lambda p: jnp.sin(p * 7.0) * 0.01, params)
    opt = config.optimizer_config()
    contestants = {
        "flan_jax.optim": optim.make_optimizer(opt),
        "optax.adafactor": optax.adafactor(
            learning_rate=opt.learning_rate, min_dim_size_to_factor=opt.min_dim_size_to_factor,
            decay_rate=opt.decay_rate, clipping_threshold=opt.clipping_threshold,
            multiply_by_parameter_scale=opt.multiply_by_parameter_scale),
    }
    calls = {}
    for name, tx in contestants.items():
        state = tx.init(params)
        step = jax.jit(lambda g, s, p, tx=tx: optax.apply_updates(p, tx.update(g, s, p)[0]))
        lowered = step.lower(grads, state, params)
        before, after = lowered.cost_analysis(), lowered.compile().cost_analysis()
        print(f"{name:16s} lowered {before['flops'] / 1e6:8.1f} MFLOP "
              f"{before['bytes accessed'] / 1e9:6.3f} GB; compiled "
              f"{after['flops'] / 1e6:8.1f} MFLOP {after['bytes accessed'] / 1e9:6.3f} GB")
        calls[name] = lambda step=step, state=state: jax.block_until_ready(
            step(grads, state, params))
        calls[name]()
    wall = dict.fromkeys(calls, float("inf"))
    cpu = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            call()
            wall[name] = min(wall[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    for name in calls:
        print(f"{name:16s} update {wall[name] * 1e3:7.1f} ms, {cpu[name] * 1e3:7.1f} CPU-ms "
              f"(best of {repeats})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1,
                        help="data-parallel devices of the compiled step (1: whole-batch dots)")
    parser.add_argument("--repeats", type=int, default=7, help="best of this many calls")
    parser.add_argument("--no-torch", action="store_true", help="XLA only")
    parser.add_argument("--variants", action="store_true",
                        help="also time rewrites of the slow dots (see the docstring)")
    parser.add_argument("--top", type=int, default=40, help="rows to print")
    parser.add_argument("--program", choices=("train", "score", "greedy"), default="train",
                        help="whose dots: the train step's, one scoring call's or one greedy "
                             "generation's")
    parser.add_argument("--optimizer", action="store_true",
                        help="only time the Adafactor update against optax's (see above)")
    args = parser.parse_args(argv)
    if args.devices < 1:
        parser.error(f"--devices {args.devices}: give at least 1 (the CPU devices the step is "
                     "compiled for)")
    # As the entry points run, on exactly the devices compiled for: XLA:CPU runs
    # max(cores, CPU devices) intra-op threads, and every dot here is timed on that pool.
    print(cpu_runtime.configure(cpu_devices=args.devices).describe())
    if args.optimizer:
        load_before = os.getloadavg()
        optimizer_update(args.repeats)
        print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
        return
    timer = Timer(args.repeats, not args.no_torch)

    load_before = os.getloadavg()
    groups: dict[Dot, list[str]] = collections.defaultdict(list)
    hlo = (step_hlo(args.devices) if args.program == "train"
           else decoding_hlo(args.program, args.devices))
    for dot, op_name in dots_of_hlo(hlo):
        groups[dot].append(_role(op_name))
    rows = []
    for dot, roles in groups.items():
        best = timer.dot(dot)
        rows.append((dot, roles, best))
    rows.sort(key=lambda row: -len(row[1]) * (row[2]["xla"] - row[2].get("torch", 0.0)))
    where = {"train": "the step", "score": "one scoring call",
             "greedy": "one greedy generation (those under while/body: once per token)"
             }[args.program]
    print(f"{len(groups)} distinct dots, {sum(len(r) for _, r, _ in rows)} in {where} "
          f"({args.devices} device(s)); best of {args.repeats}, xla and torch interleaved")
    print(f"{'count':>5} {'GFLOP':>6} {'xla ms':>7} {'GF/s':>5} {'torch ms':>8} {'GF/s':>5} "
          f"{'x/t':>5} {'step ms':>7}  dot / where")
    for dot, roles, best in rows[:args.top]:
        gflop = dot.flops / 1e9
        xla, torch_s = best["xla"], best.get("torch", float("nan"))
        print(f"{len(roles):5d} {gflop:6.2f} {xla * 1e3:7.2f} {gflop / xla:5.0f} "
              f"{torch_s * 1e3:8.2f} {gflop / torch_s:5.0f} {xla / torch_s:5.2f} "
              f"{len(roles) * xla * 1e3:7.1f}  {dot.describe()} layouts "
              f"{list(dot.lhs_layout)},{list(dot.rhs_layout)}")
        for role, n in collections.Counter(roles).most_common(3):
            print(f"{'':51s}{n:3d}x {role}")
    if args.program != "greedy":
        total_xla = sum(len(r) * b["xla"] for _, r, b in rows)
        total_torch = sum(len(r) * b.get("torch", 0.0) for _, r, b in rows)
        print(f"sum over the dots of {where}: xla {total_xla:.3f} s, torch {total_torch:.3f} s")
    else:
        for title, in_loop in (("loop dots, per token", True), ("other dots, once", False)):
            xla_s = torch_s = 0.0
            for _, roles, best in rows:
                count = sum(("while/body" in role) == in_loop for role in roles)
                xla_s += count * best["xla"]
                torch_s += count * best.get("torch", 0.0)
            print(f"sum over the {title}: xla {xla_s * 1e3:.2f} ms, torch {torch_s * 1e3:.2f} ms")
    if args.variants:
        for title, best, gflop in variants(timer):
            print(f"\n{title} ({gflop:.2f} GFLOP), best of {args.repeats}:")
            for name, seconds in best.items():
                print(f"  {name:28s} {seconds * 1e3:8.2f} ms {gflop / seconds:6.0f} GFLOP/s")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          "(1 min; counts this process's threads)")


if __name__ == "__main__":
    main()
