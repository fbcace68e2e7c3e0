"""Training-throughput benchmark "bench-cpu": `make bench`.

    python tools/bench.py [--peer both --rounds 3] [--devices N] [--steps 20] [--warmup 3] ...

bench-cpu, defined here so the figures can be read without anything outside the repository:
  model      T5 v1.1 shape: d_model 256, 4 heads x d_kv 64, d_ff 1024 gated-GELU, 4 encoder +
             4 decoder layers, relative-position buckets 32 / max distance 128, untied
             vocabulary of 32,128, no dropout, float32 (25,892,608 parameters)
  batch      16 rows x (256 input + 64 target tokens) of random ids in [2, vocab): no padding,
             no packing, every position a real token (5,120 tokens per step)
  optimizer  Adafactor, constant lr 1e-3, without parameter-scale multiplication (optax
             multiply_by_parameter_scale=False here; transformers' Adafactor(scale_parameter=
             False, relative_step=False) in the peer); --t5x-adafactor for T5X's defaults
  step       forward + backward + optimizer update of the real flan_jax train step
             (trainer.build_train_program, the assembly flan_jax.train uses: jit with
             shardings, donated state), on DEFAULT_DEVICES data-parallel CPU devices
  peer       --peer: transformers' T5ForConditionalGeneration in PyTorch on the same shapes
             and optimizer (tools/bench_peer.py), eager and/or torch.compile, in the same
             process; rounds alternate flan_jax and the peers so that load from other
             processes falls on all of them alike.

Progress goes to stderr; stdout gets exactly one JSON line:

    {"tokens_per_s", "step_s_median", "mfu", "step_s_min", "model_gflop_per_step",
     "peak_gflop_s", "peak_source", "devices", "mesh", "dtype", "jax_version", "params",
     "rounds": [{"step_s_median": {contestant: s}, "other_cpu_load"}], "loadavg",
     "settle", "minor_page_faults_per_step", "cpu_runtime",
     "peers": {name: {"step_s_median", "tokens_per_s", "mfu", "speedup_of_flan_jax",
                      "minor_page_faults_per_step"}}, ...}

The process runs XLA as flan_jax's entry points do (flan_jax.cpu_runtime: single-device
computations inline, glibc keeping freed memory), with exactly the CPU devices it times
(--devices, --devices-variant), so XLA:CPU's intra-op pool, max(cores, devices) threads, is not
sized by unused fake devices; the settings are process-wide, so the PyTorch peers get them too.
"minor_page_faults_per_step" counts the process's page faults over each contestant's timed
steps (FLAN_JAX_CPU_DEFAULTS=1 times the step without them).

MFU = model FLOPs per step (flan_jax/flops.py: 6 x matmul parameters x tokens + attention
score/value FLOPs; XLA's cost_analysis is printed beside it as a cross-check) / median step
time / the practical peak of this machine (a jitted 2048x2048 fp32 matmul; --measure-peak
times it, otherwise 190 GFLOP/s measured on the 2-core development machine is used).
"other_cpu_load" is the share of the CPUs that other processes used while a round ran: a
figure taken with it above a few percent is noisy.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import resource
import statistics
import sys
import time
from typing import Any, Callable

# Fake CPU devices for --devices and --devices-variant: main() has JAX create as many as the
# run uses, no more (flan_jax.cpu_runtime: XLA:CPU runs max(cores, devices) intra-op threads).
MAX_FAKE_DEVICES = 8
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

# This checkout's flan_jax, not the installed one: a worktree measures its own code.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/bench_peer.py
import bench_peer  # noqa: E402
from flan_jax import cpu_runtime, flops, optim, partitioning, trainer  # noqa: E402
from flan_jax.models import t5  # noqa: E402

# shared/DESIGN.md: a jitted 2048x2048 fp32 jnp.dot on this 2-core AVX-512 machine.
DESIGN_PEAK_GFLOP_S = 190.0
PEAK_MATMUL_SIZE = 2048
# One device: XLA:CPU already runs each dot on both cores and overlaps independent ops, and
# a second data-parallel device repeats the whole optimizer update and adds a gradient
# all-reduce. Measured interleaved at rest on the 2-core CPU, 2026-11-30 (`tools/bench.py
# --devices 1 --devices-variant 2`; README "Benchmarks"). An earlier model, before the
# flattened Dense and the loss's hand-written gradient, was fastest on 2 (1 device 2.84
# s/step, 2: 2.55, 4: 2.79, 8: 3.43).
DEFAULT_DEVICES = 1


def bench_cpu_model(dtype: str = "float32", remat_policy: str = "none") -> t5.T5Config:
    """The bench-cpu model of shared/DESIGN.md: a T5 v1.1 shape with 25,892,608 parameters."""
    return t5.T5Config(
        vocab_size=32128, emb_dim=256, num_heads=4, num_encoder_layers=4,
        num_decoder_layers=4, head_dim=64, mlp_dim=1024, mlp_activations=("gelu", "linear"),
        dropout_rate=0.0, logits_via_embedding=False, dtype=dtype, remat_policy=remat_policy)


def smoke_config(**overrides) -> "BenchConfig":
    """A few-second stand-in for bench-cpu (--smoke, tests): same code path, tiny shapes."""
    model = t5.T5Config(vocab_size=512, emb_dim=32, num_heads=2, num_encoder_layers=2,
                        num_decoder_layers=2, head_dim=16, mlp_dim=64, dropout_rate=0.0,
                        dtype=overrides.pop("dtype", "float32"),
                        remat_policy=overrides.pop("remat_policy", "none"))
    fields = dict(name="smoke", model=model, batch_size=8, input_length=32, target_length=16)
    fields.update(overrides)
    return BenchConfig(**fields)


@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """What to time. The defaults are bench-cpu.

    Attributes:
      name: reported as "benchmark" in the result, so a smoke run is never taken for bench-cpu.
      model: the T5 shape.
      batch_size, input_length, target_length: one global batch of unpacked rows.
      steps, warmup: timed steps per round, and untimed steps run first (the first one
        compiles).
      rounds: how many times the timed steps are repeated; with peers, each round times
        flan_jax and then every peer, interleaved.
      settle: untimed steps each contestant runs at the start of every round, before its
        timed ones. A contestant's first step after another one ran can pay for that one's
        leftovers in the process (memory layout, idle threads): in one trial with glibc's
        transparent-huge-page tunable, flan_jax's first step after PyTorch's spent 2.5-3.4 s
        more in the kernel than the steps after it (2026-11-30). A user trains with one
        framework at a time, so that cost belongs to the benchmark, not to either side.
      devices: how many of jax.devices() to put on the mesh (the first N).
      num_partitions: devices along the 'model' axis; the rest are data-parallel.
      parameter_sharding: also split parameters and optimizer state over the data-parallel
        devices (partitioning.PartitioningConfig.parameter_sharding), so each device updates
        only its share instead of every device repeating the whole optimizer update.
      t5x_adafactor: T5X's Adafactor (updates scaled by parameter RMS) instead of the
        peer-matching multiply_by_parameter_scale=False.
      learning_rate: Adafactor's constant rate.
      seed: for the parameters and the random token ids.
    """

    name: str = "bench-cpu"
    model: t5.T5Config = dataclasses.field(default_factory=bench_cpu_model)
    batch_size: int = 16
    input_length: int = 256
    target_length: int = 64
    steps: int = 20
    warmup: int = 3
    rounds: int = 1
    settle: int = 1
    devices: int = DEFAULT_DEVICES
    num_partitions: int = 1
    parameter_sharding: bool = False
    t5x_adafactor: bool = False
    learning_rate: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "input_length", "target_length", "steps", "rounds",
                     "devices", "num_partitions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.settle < 0:
            raise ValueError(f"settle must be >= 0, got {self.settle}.")
        if self.warmup < 1:
            # The first call compiles; timing it would measure XLA, not the step.
            raise ValueError(f"warmup must be >= 1 (the first step compiles), got {self.warmup}.")

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * (self.input_length + self.target_length)

    def optimizer_config(self) -> optim.OptimizerConfig:
        return optim.OptimizerConfig(learning_rate=self.learning_rate, schedule="constant",
                                     multiply_by_parameter_scale=self.t5x_adafactor)

    def optimizer_description(self) -> str:
        if self.t5x_adafactor:
            return f"optax adafactor lr={self.learning_rate:g}, T5X defaults " \
                   "(multiply_by_parameter_scale=True)"
        return (f"optax adafactor lr={self.learning_rate:g}, multiply_by_parameter_scale="
                "False (matches the HF peer's Adafactor(scale_parameter=False))")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- inputs
def random_batch(config: BenchConfig) -> dict[str, np.ndarray]:
    """A batch as seqio's EncDecFeatureConverter gives it, unpacked and without padding.

    Ids are drawn from [2, vocab) so that none is padding (0) or EOS (1), as in the peer.
    """
    rng = np.random.default_rng(config.seed)
    vocab = config.model.vocab_size
    inputs = rng.integers(2, vocab, (config.batch_size, config.input_length), dtype=np.int32)
    targets = rng.integers(2, vocab, (config.batch_size, config.target_length), dtype=np.int32)
    # Teacher forcing: the decoder sees the targets shifted right, starting from id 0.
    decoder_inputs = np.concatenate(
        [np.zeros((config.batch_size, 1), np.int32), targets[:, :-1]], axis=1)
    return {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": decoder_inputs,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": np.ones_like(targets),
    }


# ---------------------------------------------------------------------------- peak
def measure_peak_gflop_s(size: int = PEAK_MATMUL_SIZE, repeats: int = 20) -> float:
    """XLA's practical fp32 peak: best time of a jitted [size, size] x [size, size] jnp.dot.

    On one device, as DESIGN.md measured it; XLA CPU runs a single large dot on all cores.
    The best of several runs, since the peak is what the hardware can do when undisturbed.
    """
    matmul = jax.jit(jnp.dot)
    key_a, key_b = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(key_a, (size, size), jnp.float32)
    b = jax.random.normal(key_b, (size, size), jnp.float32)
    matmul(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def measure_torch_peak_gflop_s(size: int = PEAK_MATMUL_SIZE, repeats: int = 20
                               ) -> float | None:
    """PyTorch's (MKL's) practical fp32 peak on the same product, with the peer's thread count
    and denormal setting; None where torch is not installed (it is a test extra)."""
    try:
        torch = bench_peer.configure_torch()
    except ImportError:
        return None
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator)
    b = torch.randn(size, size, generator=generator)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def measured_peak() -> tuple[float, str]:
    """(the machine's best measured fp32 matmul rate, where it came from): the faster of
    XLA's jnp.dot and PyTorch's torch.mm on the same 2048^2 product, so that MFU is stated
    against the best library on the machine, not only against XLA's own dot."""
    xla = measure_peak_gflop_s()
    torch_peak = measure_torch_peak_gflop_s()
    log(f"practical peak: jitted {PEAK_MATMUL_SIZE}^2 fp32 jnp.dot {xla:.1f} GFLOP/s"
        + ("" if torch_peak is None else f", torch.mm {torch_peak:.1f}")
        + f" (best of 20; DESIGN.md says {DESIGN_PEAK_GFLOP_S:g})")
    if torch_peak is not None and torch_peak > xla:
        return torch_peak, f"measured, torch.mm {PEAK_MATMUL_SIZE}^2"
    return xla, f"measured, jnp.dot {PEAK_MATMUL_SIZE}^2"


# ---------------------------------------------------------------------------- interference
class OtherLoadMeter:
    """How much of the machine other processes used while we timed (Linux; None elsewhere).

    On a 2-core machine shared with test runs, one busy neighbour can add 50 % to a step.
    The load average cannot tell: it also counts this process's own threads. Instead, take
    the machine's busy CPU time (/proc/stat) minus this process's own CPU time.
    """

    def __init__(self):
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                ticks = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
        return time.perf_counter(), busy, time.process_time()

    def fraction(self) -> float | None:
        """Share of all cores busy with other processes since construction, in [0, 1]."""
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return min(max(others / (wall * (os.cpu_count() or 1)), 0.0), 1.0)


# ---------------------------------------------------------------------------- the benchmark
@dataclasses.dataclass
class Benchmark:
    """A jitted train step (compiled on its first call) with its state and inputs.

    Use the arrays only inside `with partitioning.sharding_context(bench.mesh, bench.rules)`.
    state is donated to each step: replace it with the returned one.
    """

    config: BenchConfig
    mesh: jax.sharding.Mesh
    rules: partitioning.LogicalRules
    model: t5.Transformer
    loss_config: trainer.LossConfig
    step_fn: Callable[..., tuple[trainer.TrainState, dict[str, jax.Array]]]
    state: trainer.TrainState
    batch: dict[str, jax.Array]
    dropout_key: jax.Array
    num_params: int

    def step(self) -> dict[str, jax.Array]:
        """Runs one train step to completion; returns its metrics."""
        self.state, metrics = self.step_fn(self.state, self.batch, self.dropout_key)
        jax.block_until_ready((self.state, metrics))
        return metrics


def build_benchmark(config: BenchConfig) -> Benchmark:
    """Mesh, shardings, initial state, a random batch and the jitted step, as train.py does."""
    available = jax.devices()
    if config.devices > len(available):
        raise ValueError(
            f"--devices {config.devices} but only {len(available)} {available[0].platform} "
            "device(s) exist; main() creates the devices a run asks for, a library caller "
            "sets XLA_FLAGS=--xla_force_host_platform_device_count=N (or jax_num_cpu_devices) "
            "before JAX starts.")
    mesh = partitioning.create_mesh(config.num_partitions, available[:config.devices])
    partitioning.check_batch_size(config.batch_size, mesh)

    # T5X's loss defaults (z-loss 1e-4), what users train with; the step train.py builds.
    program = trainer.build_train_program(
        config.model, optim.make_optimizer(config.optimizer_config()), trainer.LossConfig(),
        mesh, config.parameter_sharding)
    return Benchmark(
        config=config, mesh=mesh, rules=program.rules, model=program.model,
        loss_config=program.loss_config, step_fn=program.step_fn,
        state=program.init_state(config.seed),
        batch=jax.device_put(random_batch(config), program.batch_sharding),
        dropout_key=jax.device_put(jax.random.PRNGKey(config.seed + 1), program.replicated),
        num_params=program.num_params)


def run_benchmark(config: BenchConfig, peak_gflop_s: float = DESIGN_PEAK_GFLOP_S,
                  peak_source: str = "DESIGN.md", xla_cross_check: bool = True,
                  profile_dir: str | None = None,
                  progress: Callable[[str], None] = log,
                  peers: tuple[str, ...] = (),
                  xla_variant: dict[str, Any] | None = None,
                  devices_variant: int | None = None) -> dict[str, Any]:
    """Times config.rounds x config.steps train steps after config.warmup untimed ones.

    With peers (names in bench_peer.PEERS), the same step in PyTorch runs in the same
    process, warmed up likewise, and every round times flan_jax and then each peer, so that
    load from other processes falls on all of them. The returned dict is what main() prints
    as JSON; see the module docstring. With profile_dir, two more steps run afterwards under
    jax.profiler (not timed).

    xla_variant: XLA compiler options (DebugOptions fields, e.g.
    {"xla_cpu_experimental_ynn_fusion_type": ""}); the same step compiled with them is one
    more contestant, "flan_jax_variant", timed in the same rounds: an A/B of XLA:CPU options
    within one process, which XLA_FLAGS (read once per process) cannot give.

    devices_variant: the same step on this many data-parallel devices is one more contestant,
    "flan_jax_{N}dev", in the same rounds (each step runs in its own mesh's context).
    """
    bench = build_benchmark(config)
    # Built outside the sharding context, as `bench` is (building lays out abstract state).
    variant = build_benchmark(config) if xla_variant else None
    other_devices = (build_benchmark(dataclasses.replace(config, devices=devices_variant))
                     if devices_variant else None)
    model_flops = flops.train_step_flops(config.model, config.batch_size, config.input_length,
                                         config.target_length)
    progress(f"{bench.num_params:,} params; mesh {dict(bench.mesh.shape)} over "
             f"{config.devices} {jax.devices()[0].platform} device(s); {config.model.dtype}; "
             f"{config.optimizer_description()}")

    with partitioning.sharding_context(bench.mesh, bench.rules):
        xla_flops = None
        if xla_cross_check:
            xla_flops = xla_forward_backward_flops(bench.model, bench.state.params, bench.batch,
                                                   bench.loss_config)
            progress(f"model FLOPs per step: formula {model_flops.total / 1e9:.2f} GFLOP, "
                     f"XLA cost_analysis of forward+backward {xla_flops / 1e9:.2f} GFLOP "
                     f"({100 * (xla_flops / model_flops.total - 1):+.2f} %)")
        else:
            progress(f"model FLOPs per step: {model_flops.total / 1e9:.2f} GFLOP")

        contestants = {"flan_jax": lambda: _timed(bench.step)}
        if variant is not None:
            variant.step_fn = variant.step_fn.lower(
                variant.state, variant.batch, variant.dropout_key).compile(xla_variant)
            progress(f"flan_jax_variant: the same step compiled with {xla_variant}")
            contestants["flan_jax_variant"] = lambda: _timed(variant.step)
        if other_devices is not None:
            def other_devices_step() -> tuple[float, float]:
                with partitioning.sharding_context(other_devices.mesh, other_devices.rules):
                    return _timed(other_devices.step)
            contestants[f"flan_jax_{devices_variant}dev"] = other_devices_step
        for name in peers:
            progress(f"building the peer {name} (transformers, PyTorch)")
            peer = bench_peer.HFTrainStep(config, compiled=name == "hf_compiled")
            contestants[name] = peer.step
        step_times: dict[str, list[float]] = {name: [] for name in contestants}
        page_faults = dict.fromkeys(contestants, 0)
        losses = dict.fromkeys(contestants, float("nan"))
        for name, step in contestants.items():
            for i in range(config.warmup):
                elapsed, losses[name] = step()
                kind = "compile+warm-up" if i == 0 else "warm-up"
                progress(f"{name:11s} step {i + 1:3d}/{config.warmup} {kind:15s} "
                         f"{elapsed:7.3f} s  loss {losses[name]:.4f}")
        # Rounds interleave the contestants so that a noisy neighbour slows all of them alike.
        rounds = []
        meter = OtherLoadMeter()
        for round_index in range(config.rounds):
            round_meter = OtherLoadMeter()
            medians = {}
            for name, step in contestants.items():
                for i in range(config.settle):
                    elapsed, losses[name] = step()
                    progress(f"{name:11s} round {round_index + 1}/{config.rounds} settle "
                             f"{i + 1:3d}/{config.settle} {elapsed:7.3f} s (untimed)")
                times = []
                faults_before = _minor_page_faults()
                for i in range(config.steps):
                    elapsed, losses[name] = step()
                    times.append(elapsed)
                    progress(f"{name:11s} round {round_index + 1}/{config.rounds} step "
                             f"{i + 1:3d}/{config.steps} {elapsed:7.3f} s  "
                             f"loss {losses[name]:.4f}")
                page_faults[name] += _minor_page_faults() - faults_before
                step_times[name] += times
                medians[name] = round(statistics.median(times), 6)
            load = round_meter.fraction()
            rounds.append({"step_s_median": medians,
                           "other_cpu_load": None if load is None else round(load, 3)})
        loss = losses["flan_jax"]
        other_load = meter.fraction()
        if other_load is not None:
            progress(f"other processes used {100 * other_load:.0f} % of the {os.cpu_count()} "
                     "cores while timing" + (" - expect slower steps" if other_load > 0.05
                                             else ""))
        if profile_dir:
            with jax.profiler.trace(profile_dir):
                for _ in range(2):
                    bench.step()
            progress(f"profile of 2 steps written to {profile_dir} (xprof / TensorBoard)")
    if not np.isfinite(loss):
        raise FloatingPointError(f"The benchmark's loss became {loss}; the timing is void.")

    median = statistics.median(step_times["flan_jax"])
    peer_results = {}
    for name in contestants:
        if name == "flan_jax":
            continue
        peer_median = statistics.median(step_times[name])
        peer_results[name] = {
            "step_s_median": round(peer_median, 6),
            "tokens_per_s": round(config.tokens_per_step / peer_median, 1),
            "mfu": round(model_flops.total / peer_median / (peak_gflop_s * 1e9), 6),
            "step_s_all": [round(t, 6) for t in step_times[name]],
            "final_loss": round(losses[name], 4),
            "minor_page_faults_per_step": round(page_faults[name] / len(step_times[name])),
            # > 1: flan_jax is faster than this peer by that factor.
            "speedup_of_flan_jax": round(peer_median / median, 3),
        }
    return {
        "benchmark": config.name,
        "tokens_per_s": round(config.tokens_per_step / median, 1),
        "step_s_median": round(median, 6),
        "mfu": round(model_flops.total / median / (peak_gflop_s * 1e9), 6),
        "step_s_min": round(min(step_times["flan_jax"]), 6),
        "model_gflop_per_step": round(model_flops.total / 1e9, 2),
        "xla_gflop_per_step": None if xla_flops is None else round(xla_flops / 1e9, 2),
        "peak_gflop_s": round(peak_gflop_s, 1),
        "peak_source": peak_source,
        "devices": config.devices,
        "mesh": dict(bench.mesh.shape),
        "parameter_sharding": config.parameter_sharding,
        "dtype": config.model.dtype,
        "remat": config.model.remat_policy,
        "optimizer": config.optimizer_description(),
        "batch": f"{config.batch_size}x({config.input_length}+{config.target_length})",
        "steps": config.steps,
        "warmup": config.warmup,
        "step_s_all": [round(t, 6) for t in step_times["flan_jax"]],
        "settle": config.settle,
        "minor_page_faults_per_step": round(page_faults["flan_jax"] /
                                            len(step_times["flan_jax"])),
        "rounds": rounds,
        "peers": peer_results,
        "xla_variant": xla_variant or None,
        "devices_variant": devices_variant,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        # Other processes on a 2-core machine slow the steps down; this says whether they ran.
        "other_cpu_load": None if other_load is None else round(other_load, 3),
        "final_loss": round(loss, 4),
        "jax_version": jax.__version__,
        "params": bench.num_params,
    }


def _minor_page_faults() -> int:
    """Minor page faults of this process so far (every thread): each first touch of a
    freshly mapped 4 KB page is one, and XLA:CPU maps a step's temporaries afresh."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(step: Callable[[], dict[str, Any]]) -> tuple[float, float]:
    """Runs one flan_jax step; returns (seconds, loss). The loss is read after the timer."""
    start = time.perf_counter()
    metrics = step()
    elapsed = time.perf_counter() - start
    return elapsed, float(metrics["loss"])


def xla_forward_backward_flops(model: t5.Transformer, params: Any, batch: Any,
                               loss_config: trainer.LossConfig) -> float:
    """XLA's own FLOP count of the global (unpartitioned) loss gradient, as a cross-check.

    params and batch may be arrays or jax.ShapeDtypeStructs. Lowered.cost_analysis() runs
    HLO cost analysis before SPMD partitioning, so it sees the whole batch and needs no
    compilation. It also counts elementwise ops (softmax, GELU, norms) that the model-FLOP
    formula leaves out, so it comes out a little higher.
    """
    grad_fn = jax.jit(jax.grad(functools.partial(
        trainer.loss_sums, model=model, loss_config=loss_config, dropout_rng=None),
        has_aux=True))
    cost = grad_fn.lower(params, batch).cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax returned one dict per computation
        cost = cost[0]
    return float(cost["flops"])


# ---------------------------------------------------------------------------- entry point
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the flan_jax train step on bench-cpu (shared/DESIGN.md); prints "
                    "one JSON line on stdout.")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round (20)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the timed steps; with --peer the contestants alternate "
                             "round by round (1)")
    parser.add_argument("--peer", choices=("none", "eager", "compiled", "both"), default="none",
                        help="also time transformers' T5 in PyTorch on the same shapes, in "
                             "the same process, interleaved (eager, torch.compile or both)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    parser.add_argument("--settle", type=int, default=1,
                        help="untimed steps per contestant at the start of every round (1)")
    parser.add_argument("--devices", type=int, default=DEFAULT_DEVICES,
                        help=f"use the first N devices, data-parallel ({DEFAULT_DEVICES}: the "
                             "fastest layout measured on the 2-core CPU)")
    parser.add_argument("--devices-variant", type=int, default=None, metavar="N",
                        help="also time the same step on N data-parallel devices, "
                             "interleaved, as the contestant flan_jax_{N}dev")
    parser.add_argument("--num-partitions", type=int, default=1,
                        help="devices along the 'model' mesh axis (1)")
    parser.add_argument("--parameter-sharding", action="store_true",
                        help="shard parameters and optimizer state over the data axis too "
                             "(measured slower on the 2-core CPU)")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="activation dtype; bench-cpu is float32")
    parser.add_argument("--remat", choices=("none", "full", "dots"), default="none",
                        help="T5Config.remat_policy (none)")
    parser.add_argument("--measure-peak", action="store_true",
                        help=f"time a {PEAK_MATMUL_SIZE}x{PEAK_MATMUL_SIZE} fp32 matmul in XLA "
                             "and in PyTorch (if installed) and use the faster as the MFU "
                             f"denominator instead of assuming {DESIGN_PEAK_GFLOP_S:g} GFLOP/s")
    parser.add_argument("--t5x-adafactor", action="store_true",
                        help="T5X's Adafactor defaults (multiply_by_parameter_scale=True) "
                             "instead of the HF-peer-matching setting")
    parser.add_argument("--profile-dir", default=None,
                        help="after timing, trace 2 more steps with jax.profiler into this "
                             "directory")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny model and batch instead of bench-cpu, to check the "
                             "benchmark itself runs (the figures mean nothing)")
    parser.add_argument("--xla-variant", action="append", default=[], metavar="OPTION=VALUE",
                        help="also time the step compiled with this XLA option (repeatable), "
                             "interleaved, as the contestant flan_jax_variant; e.g. "
                             "xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT")
    parser.add_argument("--no-xla-flops", action="store_true",
                        help="skip the XLA cost_analysis cross-check of the FLOP formula")
    args = parser.parse_args(argv)
    args.xla_variant = dict(_xla_option(parser, text) for text in args.xla_variant)
    if args.devices_variant is not None and not (
            1 <= args.devices_variant <= MAX_FAKE_DEVICES
            and args.devices_variant != args.devices):
        parser.error(f"--devices-variant {args.devices_variant}: give a device count from 1 to "
                     f"{MAX_FAKE_DEVICES} other than --devices ({args.devices})")
    return args


def _xla_option(parser: argparse.ArgumentParser, text: str) -> tuple[str, Any]:
    """'name=value' -> (name, value), value as bool, int or string as XLA's option wants."""
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("xla_"):
        parser.error(f"--xla-variant {text!r}: give OPTION=VALUE with an XLA option name, e.g. "
                     "xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_DOT (VALUE may "
                     "be empty)")
    if value.lower() in ("true", "false"):
        return name, value.lower() == "true"
    return name, int(value) if value.lstrip("-").isdigit() else value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # As flan_jax.train runs (the peers share the process), on exactly the devices timed.
    runtime = cpu_runtime.configure(cpu_devices=max(args.devices, args.devices_variant or 1))
    log(runtime.describe())
    run_options = dict(steps=args.steps, warmup=args.warmup, rounds=args.rounds,
                       settle=args.settle,
                       devices=args.devices,
                       num_partitions=args.num_partitions,
                       parameter_sharding=args.parameter_sharding,
                       t5x_adafactor=args.t5x_adafactor)
    if args.smoke:
        config = smoke_config(dtype=args.dtype, remat_policy=args.remat, **run_options)
    else:
        config = BenchConfig(model=bench_cpu_model(args.dtype, args.remat), **run_options)
    if args.measure_peak:
        peak, source = measured_peak()
    else:
        peak, source = DESIGN_PEAK_GFLOP_S, "DESIGN.md"
    peers = {"none": (), "eager": ("hf_eager",), "compiled": ("hf_compiled",),
             "both": bench_peer.PEERS}[args.peer]
    result = run_benchmark(config, peak, source, xla_cross_check=not args.no_xla_flops,
                           profile_dir=args.profile_dir, peers=peers,
                           xla_variant=args.xla_variant,
                           devices_variant=args.devices_variant)
    log(f"flan_jax    {result['step_s_median']:.3f} s/step median, "
        f"{result['tokens_per_s']:,.0f} tokens/s, MFU {100 * result['mfu']:.1f} % of "
        f"{result['peak_gflop_s']:g} GFLOP/s ({source}); "
        f"{result['minor_page_faults_per_step']:,} page faults/step")
    for name, peer in result["peers"].items():
        log(f"{name:11s} {peer['step_s_median']:.3f} s/step median, "
            f"{peer['tokens_per_s']:,.0f} tokens/s, MFU {100 * peer['mfu']:.1f} %; flan_jax is "
            f"{peer['speedup_of_flan_jax']:.2f}x its speed; "
            f"{peer['minor_page_faults_per_step']:,} page faults/step")
    log(f"load average {result['loadavg']}; other processes' share of the CPUs per round: "
        f"{[r['other_cpu_load'] for r in result['rounds']]}")
    result["cpu_runtime"] = runtime.as_dict()
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FloatingPointError) as error:
        print(f"tools/bench.py: error: {error}", file=sys.stderr)
        sys.exit(2)
