r"""Compiles a gin launch's train step for a named TPU slice, on a CPU: memory and FLOPs per chip.

    python -m flan_jax.aot --topology=v4-128 \
      --gin_file=gin_configs/models/t5_1_1/xxl.gin \
      --gin_file=gin_configs/runs/finetune.gin \
      --gin.NUM_PARTITIONS=8 --gin.PARAMETER_SHARDING=True --gin.REMAT_POLICY="'full'" \
      --gin.TASK_FEATURE_LENGTHS="{'inputs': 1024, 'targets': 256}" \
      --gin.MIXTURE_OR_TASK_NAME="'flan_inter_cluster_split_0_10templates_train'"

It reads the same gin files as flan_jax.train and takes the arguments gin binds to
flan_jax.train.train (model, batch size and feature lengths, optimizer, loss, partitioning,
microbatches) without running it. The step is built by trainer.build_train_program, the one
assembly train and bench use, on a ('data', 'model') mesh of the slice's devices (libtpu
describes any TPU topology without the hardware: jax.experimental.topologies), lowered with
abstract state, batch and key, and compiled by the TPU compiler. It prints, per chip:
parameters + optimizer state, temporaries, their total against the chip's HBM, the FLOPs of a
step (every scanned layer and microbatch counted: unrolled_step_flops), and "fits" or the
compiler's out-of-memory message. --eval also compiles
evaluation's score and generate steps on the same parameter layout. Nothing is trained, no
data is read, no MODEL_DIR is needed.

libtpu comes with the [tpu] extra (`pip install -e ".[tpu]"`, or `make install-tpu`).
XXL compiles take minutes and about 13 GB of RAM; `ulimit -s unlimited` first (the compiler
once overflowed a thread stack here).
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import re
import sys
import time
from typing import Any, Sequence

# libtpu logs an error about TPU_WORKER_HOSTNAMES when it runs on a machine without TPUs; a
# compile-only process has no other workers, so say so before libtpu is loaded.
os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
# Compiling needs no TPU client (libtpu's topology description is enough), so do not try to
# open one: on a CPU machine that only logs a failed TPU initialisation.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gin  # noqa: E402
import jax  # noqa: E402
import jax.extend.backend  # noqa: E402  (lowered_flops: the CPU backend runs the HLO analysis)

from flan_jax import flops, launch, optim, partitioning, trainer  # noqa: E402

GIB = 1024 ** 3
T5_EOS_ID = 1  # end of sequence in T5's SentencePiece and in seqio.ByteVocabulary

INSTALL_HINT = ('pip install -e ".[tpu]"  (or `make install-tpu`), which brings libtpu '
                "matching jax")


class LibtpuMissingError(ValueError):  # a launch problem: reported without a traceback
    """libtpu is not installed, so no TPU topology can be described or compiled for."""


# ---------------------------------------------------------------------------- slices
@dataclasses.dataclass(frozen=True)
class TpuSlice:
    """A named Cloud TPU slice and the arguments libtpu needs to describe it.

    Attributes:
      name: as Cloud TPU names it, e.g. 'v4-128' (v4 / v5p count TensorCores, two per chip;
        v5e / v6e count chips).
      topology: libtpu's topology name, '<generation>:<chips per dimension>'.
      chip_config: 'megacore' (v4, v5p: one JAX device per chip, two cores) or 'default'.
      wrap: wrap-around links per dimension (full tori only).
      hbm_gib: HBM per chip (= per JAX device).
    """

    name: str
    topology: str
    chip_config: str
    wrap: tuple[bool, bool, bool]
    hbm_gib: float

    @property
    def num_chips(self) -> int:
        dims = self.topology.split(":")[1].split("x")
        n = 1
        for d in dims:
            n *= int(d)
        return n


# Chips per dimension of each slice, by the size in the slice name.
_V4_V5P_SHAPES = {8: "2x2x1", 16: "2x2x2", 32: "2x2x4", 64: "2x4x4", 128: "4x4x4",
                  256: "4x4x8", 512: "4x8x8"}
_V5E_SHAPES = {16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
_V6E_SHAPES = {8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
# generation in the slice name -> (libtpu generation, chip config, size -> shape, HBM GiB)
_GENERATIONS = {
    "v4": ("v4", "megacore", _V4_V5P_SHAPES, 32.0),
    "v5p": ("v5", "megacore", _V4_V5P_SHAPES, 95.0),
    "v5e": ("v5e", "default", _V5E_SHAPES, 16.0),
    "v6e": ("v6e", "default", _V6E_SHAPES, 32.0),
}


def supported_slices() -> list[str]:
    return [f"{gen}-{size}" for gen, (_, _, shapes, _) in _GENERATIONS.items()
            for size in shapes]


def parse_slice(name: str) -> TpuSlice:
    """'v4-128' -> TpuSlice; a ValueError listing the supported names otherwise."""
    match = re.fullmatch(r"(v4|v5p|v5e|v6e)-(\d+)", name.strip().lower())
    shapes = _GENERATIONS[match.group(1)][2] if match else {}
    if not match or int(match.group(2)) not in shapes:
        raise ValueError(
            f"--topology={name!r} is not a TPU slice this tool knows. Use one of: "
            f"{', '.join(supported_slices())} (v4 and v5p sizes count TensorCores, two per "
            "chip; v5e and v6e sizes count chips).")
    generation, chip_config, _, hbm = _GENERATIONS[match.group(1)]
    shape = shapes[int(match.group(2))]
    dims = [int(d) for d in shape.split("x")]
    # Full tori: 3-D slices whose every side is a multiple of 4, and the 16x16 2-D pods.
    if len(dims) == 3:
        wrap = (all(d % 4 == 0 for d in dims),) * 3
    else:
        wrap = (dims == [16, 16], dims == [16, 16], False)
    return TpuSlice(name=f"{match.group(1)}-{match.group(2)}", topology=f"{generation}:{shape}",
                    chip_config=chip_config, wrap=wrap, hbm_gib=hbm)


def libtpu_available() -> bool:
    return importlib.util.find_spec("libtpu") is not None


def topology_devices(tpu_slice: TpuSlice) -> list[jax.Device]:
    """The slice's devices as libtpu describes them (compile-only; no TPU needed)."""
    if not libtpu_available():
        raise LibtpuMissingError(
            f"Compiling for {tpu_slice.name} needs libtpu, which is not installed in this "
            f"Python environment ({sys.executable}). Install it with {INSTALL_HINT}; no TPU "
            "is needed, libtpu only describes the topology and runs the TPU compiler.")
    from jax.experimental import topologies
    topology = topologies.get_topology_desc(
        platform="tpu", topology_name=tpu_slice.topology, chip_config_name=tpu_slice.chip_config,
        chips_per_host_bounds=(2, 2, 1), num_slices=1, wrap=tpu_slice.wrap)
    return list(topology.devices)


# ---------------------------------------------------------------------------- the launch
@dataclasses.dataclass(frozen=True)
class TrainLaunch:
    """What of a flan_jax.train launch decides the compiled step (bound by its gin files)."""

    model_config: Any
    batch_size: int
    feature_lengths: dict[str, int]
    packed: bool
    optimizer: optim.OptimizerConfig
    loss: trainer.LossConfig
    partitioning_config: partitioning.PartitioningConfig
    num_microbatches: int
    eval_config: Any = None  # evaluation.EvalConfig of eval_dataset, if bound


def bound_train_launch() -> TrainLaunch:
    """The arguments the parsed gin files bind to flan_jax.train.train, without training.

    Raises a ValueError naming the macro when something the step needs is unbound.
    """
    from flan_jax import train as train_module
    try:
        bound = gin.get_bindings(train_module.train)
    except (ValueError, KeyError) as error:
        raise ValueError(
            "The gin files bind nothing to flan_jax.train.train; include a run file, e.g. "
            "--gin_file=gin_configs/runs/finetune.gin after the model file.") from error
    dataset = bound.get("train_dataset")
    if "model_config" not in bound or dataset is None:
        raise ValueError(
            "The gin files do not bind model_config and train_dataset of flan_jax.train.train; "
            "include a model file and a run file (gin_configs/models/..., "
            "gin_configs/runs/finetune.gin).")
    lengths = dataset.task_feature_lengths
    if not isinstance(lengths, dict) or not {"inputs", "targets"} <= set(lengths):
        raise ValueError(
            f"TASK_FEATURE_LENGTHS must be a dict with 'inputs' and 'targets', got {lengths!r}: "
            "set e.g. --gin.TASK_FEATURE_LENGTHS=\"{'inputs': 1024, 'targets': 256}\".")
    return TrainLaunch(
        model_config=bound["model_config"], batch_size=dataset.batch_size,
        feature_lengths=dict(lengths), packed=dataset.pack,
        optimizer=bound.get("optimizer", optim.OptimizerConfig()),
        loss=bound.get("loss", trainer.LossConfig()),
        partitioning_config=bound.get("partitioning_config",
                                      partitioning.PartitioningConfig()),
        num_microbatches=bound.get("num_microbatches", 1),
        eval_config=bound.get("eval_dataset"))


# ---------------------------------------------------------------------------- compile
@dataclasses.dataclass(frozen=True)
class CompileReport:
    """Per-chip figures of one compiled step (bytes unless named otherwise).

    fits is None when the compiler ran out of memory (oom_message holds its words); the
    memory fields are then 0 except state_bytes, which is known from the layout.
    """

    step: str  # 'train', 'score' or 'generate'
    slice_name: str
    mesh_shape: dict[str, int]
    hbm_bytes: int
    num_params: int
    state_bytes: int  # params + optimizer state (eval steps: params) held by one chip
    argument_bytes: int  # all inputs of the step (state + batch + key)
    output_bytes: int
    alias_bytes: int  # outputs written into donated inputs
    temp_bytes: int  # the compiler's temporaries (activations, gradients, buffers)
    flops_per_chip: float  # the compiled program's, by XLA: a while loop's body counted once
    compile_seconds: float
    oom_message: str | None = None
    # XLA's estimate of the bytes the compiled program reads and writes on one chip (same
    # loop counting as flops_per_chip): with the FLOPs, what a model change costs a TPU.
    bytes_accessed_per_chip: float = 0.0
    # Train step only: FLOPs of the whole step on all chips with every loop multiplied out
    # (unrolled_step_flops), and the seconds that analysis took.
    step_flops: float | None = None
    step_flops_seconds: float = 0.0

    @property
    def total_bytes(self) -> int:
        """Peak HBM the program needs on one chip (arguments + new outputs + temporaries)."""
        return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes

    @property
    def fits(self) -> bool:
        return self.oom_message is None and self.total_bytes <= self.hbm_bytes


def _per_device_bytes(abstract_tree: Any) -> int:
    """Bytes one device holds of a tree of sharded ShapeDtypeStructs."""
    total = 0
    for leaf in jax.tree.leaves(abstract_tree):
        shard = leaf.sharding.shard_shape(leaf.shape)
        size = 1
        for d in shard:
            size *= d
        total += size * leaf.dtype.itemsize
    return total


def _is_out_of_memory(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


def build_program(launch_config: TrainLaunch, devices: Sequence[jax.Device]
                  ) -> trainer.TrainProgram:
    """The launch's TrainProgram (trainer.build_train_program) on a mesh of `devices`."""
    pc = launch_config.partitioning_config
    mesh = partitioning.create_mesh(pc.num_partitions, devices)
    partitioning.check_batch_size(launch_config.batch_size, mesh, launch_config.num_microbatches)
    return trainer.build_train_program(
        launch_config.model_config, optim.make_optimizer(launch_config.optimizer),
        launch_config.loss, mesh, pc.parameter_sharding, launch_config.num_microbatches)


def _compile(step: str, lowered: Any, program: trainer.TrainProgram, tpu_slice: TpuSlice,
             resident: Any, started: float) -> CompileReport:
    """Compiles a lowered step; an out-of-memory verdict becomes a report, not an error."""
    common = dict(step=step, slice_name=tpu_slice.name, mesh_shape=dict(program.mesh.shape),
                  hbm_bytes=int(tpu_slice.hbm_gib * GIB), num_params=program.num_params,
                  state_bytes=_per_device_bytes(resident))
    try:
        compiled = lowered.compile()
    except Exception as error:  # the TPU compiler reports OOM as XlaRuntimeError
        if not _is_out_of_memory(error):
            raise
        return CompileReport(**common, argument_bytes=0, output_bytes=0, alias_bytes=0,
                             temp_bytes=0, flops_per_chip=0.0,
                             compile_seconds=time.perf_counter() - started,
                             oom_message=str(error))
    seconds = time.perf_counter() - started
    memory = compiled.memory_analysis()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return CompileReport(
        **common, argument_bytes=memory.argument_size_in_bytes,
        output_bytes=memory.output_size_in_bytes, alias_bytes=memory.alias_size_in_bytes,
        temp_bytes=memory.temp_size_in_bytes, flops_per_chip=float(cost.get("flops", 0.0)),
        bytes_accessed_per_chip=float(cost.get("bytes accessed", 0.0)), compile_seconds=seconds)


def compile_train_step(program: trainer.TrainProgram, launch_config: TrainLaunch,
                       tpu_slice: TpuSlice) -> CompileReport:
    """Lowers the program's jitted train step with abstract state, batch and key; compiles.

    The report's step_flops count every layer and microbatch (unrolled_step_flops).
    """
    batch = program.abstract_batch(launch_config.batch_size, launch_config.feature_lengths,
                                   launch_config.packed)
    started = time.perf_counter()
    with program.sharding_context():
        lowered = program.step_fn.lower(program.layout.abstract, batch, program.abstract_key())
    report = _compile("train", lowered, program, tpu_slice, program.layout.abstract, started)
    if report.oom_message is not None:
        return report
    started = time.perf_counter()
    step_flops = unrolled_step_flops(launch_config, program, lowered)
    return dataclasses.replace(report, step_flops=step_flops,
                               step_flops_seconds=time.perf_counter() - started)


def unrolled_step_flops(launch_config: TrainLaunch, program: trainer.TrainProgram,
                        lowered: Any) -> float:
    """FLOPs of one train step on all chips, every layer and every microbatch counted.

    XLA's cost analysis counts a while loop's body once, so the compiled program's figure is
    low for a scanned stack (SCAN_LAYERS=True: one layer of each stack) and for a microbatch
    loop (one microbatch). The same step with the layers unrolled and one microbatch does the
    same work (the loops change memory, not arithmetic), so its *lowered* program, analysed
    before any compile, gives the step's FLOPs: the whole (unpartitioned) step, rematerialised
    forward passes included. `lowered` is reused when it already is that program; otherwise
    that step is built and lowered on the same mesh (tracing only: 30-60 s for T5 XXL here).
    """
    if launch_config.model_config.scan_layers or launch_config.num_microbatches > 1:
        unrolled = dataclasses.replace(
            launch_config, num_microbatches=1,
            model_config=dataclasses.replace(launch_config.model_config, scan_layers=False))
        program = build_program(unrolled, program.mesh.devices.flatten().tolist())
        batch = program.abstract_batch(unrolled.batch_size, unrolled.feature_lengths,
                                       unrolled.packed)
        with program.sharding_context():
            lowered = program.step_fn.lower(program.layout.abstract, batch,
                                            program.abstract_key())
    return lowered_flops(lowered)


def lowered_flops(lowered: Any) -> float:
    """XLA's HLO cost analysis of a lowered program (whole program, before partitioning).

    jax's Lowered.cost_analysis() runs this analysis only on backends without the PJRT C API,
    which the TPU one uses; the analysis reads the HLO alone, so it runs with the CPU backend
    here, as Lowered.cost_analysis() itself would run it.
    """
    from jax._src.lib import _jax  # Lowered.cost_analysis()'s own function; not public
    module = lowered.compiler_ir("hlo").as_hlo_module()
    cost = _jax.hlo_module_cost_analysis(jax.extend.backend.get_backend("cpu"), module)
    return float(cost.get("flops", 0.0))


def compile_eval_steps(program: trainer.TrainProgram, eval_config: Any,
                       tpu_slice: TpuSlice) -> list[CompileReport]:
    """Compiles evaluation's two steps on the train layout of the params, as train() runs them.

    score: teacher-forced log-likelihood of [EVAL_BATCH_SIZE, length] rows (rank
    classification); generate: decoding per EvalConfig.decoding_config() (greedy up to the
    targets length unless set). Jitted with the shardings evaluation.Evaluator gives them.
    """
    from flan_jax import evaluation
    partitioning.check_batch_size(eval_config.batch_size, program.mesh)
    params = program.layout.abstract.params
    param_shardings = program.layout.shardings.params
    batch = program.abstract_batch(eval_config.batch_size, eval_config.task_feature_lengths,
                                   packed=False)
    score, generate = evaluation.jit_eval_steps(
        program.model, eval_config.decoding_config(), T5_EOS_ID, param_shardings,
        program.batch_sharding, program.replicated)
    reports = []
    for step, fn, args in (
            ("score", score, (params, batch)),
            ("generate", generate, (params, batch["encoder_input_tokens"],
                                    program.abstract_key()))):
        started = time.perf_counter()
        with program.sharding_context():
            lowered = fn.lower(*args)
        reports.append(_compile(step, lowered, program, tpu_slice, params, started))
    return reports


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _memory_lines(report: CompileReport, resident: str) -> list[str]:
    lines = [f"  compile time: {report.compile_seconds:.0f} s", "  per chip:",
             f"    {resident + ':':<26}{_gib(report.state_bytes)}"]
    if report.oom_message is not None:
        return lines + [f"    does NOT fit {_gib(report.hbm_bytes)} of HBM; the compiler says:",
                        *("      " + line for line in report.oom_message.strip().splitlines())]
    return lines + [
        f"    temporaries:              {_gib(report.temp_bytes)}",
        f"    total:                    {_gib(report.total_bytes)} of {_gib(report.hbm_bytes)} "
        f"HBM ({100 * report.total_bytes / report.hbm_bytes:.0f} %) -> "
        f"{'fits' if report.fits else 'does NOT fit'}",
        f"    FLOPs, compiled program:  {report.flops_per_chip / 1e12:.3f} TFLOP"
        + (" (a loop's body counted once; the step's FLOPs below)"
           if report.step_flops is not None else ""),
        f"    bytes accessed (XLA):     {_gib(report.bytes_accessed_per_chip)}"]


def format_report(report: CompileReport, launch_config: TrainLaunch) -> str:
    """The human-readable summary of one compiled step, as main() prints it."""
    cfg, pc = launch_config.model_config, launch_config.partitioning_config
    chips = math.prod(report.mesh_shape.values())
    where = (f"{report.slice_name} ({chips} chips, mesh {report.mesh_shape}, "
             f"PARAMETER_SHARDING={pc.parameter_sharding})")
    if report.step != "train":
        eval_config = launch_config.eval_config
        lengths = eval_config.task_feature_lengths
        return "\n".join([
            f"flan_jax.aot: eval {report.step} step for {where}",
            f"  batch {eval_config.batch_size} x ({lengths['inputs']}, {lengths['targets']})"
            + (f", {eval_config.decoding_config()}" if report.step == "generate" else ""),
            *_memory_lines(report, "params")])
    lengths = launch_config.feature_lengths
    lines = [
        f"flan_jax.aot: train step for {where}, remat={cfg.remat_policy}, "
        f"dropout={cfg.dropout_rate}, microbatches={launch_config.num_microbatches}",
        f"  model: {report.num_params:,} params; batch {launch_config.batch_size} x "
        f"({lengths['inputs']}, {lengths['targets']}), packed={launch_config.packed}",
        *_memory_lines(report, "params + optimizer state")]
    if report.step_flops is not None:
        tokens = launch_config.batch_size * (lengths["inputs"] + lengths["targets"])
        model_flops = model_flops_per_step(cfg, launch_config.batch_size, lengths)
        lines += [
            f"  FLOPs per step: {report.step_flops / 1e12:,.1f} TFLOP over {tokens:,} tokens, "
            f"{report.step_flops / chips / 1e12:.3f} TFLOP per chip (XLA's cost analysis of the "
            "step lowered with every layer and microbatch unrolled: "
            f"{report.step_flops_seconds:.0f} s)",
            f"  model FLOPs {model_flops / 1e12:,.1f} TFLOP (6 x params x tokens + attention): "
            f"{report.step_flops / model_flops:.2f} x (above 1: rematerialisation, and the "
            "softmax, norm and loss work the formula leaves out)"]
    return "\n".join(lines)


def model_flops_per_step(config: Any, batch_size: int, lengths: dict[str, int]) -> float:
    """Model FLOPs of one step, by the formula bench's MFU uses (flan_jax/flops.py)."""
    return float(flops.train_step_flops(config, batch_size, lengths["inputs"],
                                        lengths["targets"]).total)


# ---------------------------------------------------------------------------- entry point
# The mixture is checked as train checks it (a registered name whose features the lengths
# cover: data.DatasetConfig), though no data is read; MODEL_DIR and TRAIN_STEPS are not needed.
REQUIRED_MACROS = ("MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS")


def main(argv: Sequence[str] | None = None) -> list[CompileReport]:
    """Parses --topology (and --eval) plus the train launch flags; prints one report a step."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--topology", required=True,
                        help=f"a TPU slice name: {', '.join(supported_slices())}")
    parser.add_argument("--eval", action="store_true",
                        help="also compile evaluation's score and generate steps "
                             "(EVAL_BATCH_SIZE rows of TASK_FEATURE_LENGTHS)")
    ns, rest = parser.parse_known_args(argv)
    tpu_slice = parse_slice(ns.topology)
    args = launch.parse_args(rest, description=__doc__.splitlines()[0])
    launch.quiet_expected_warnings()
    launch.parse_gin(args)
    launch.check_required_macros(REQUIRED_MACROS)
    launch_config = bound_train_launch()
    if ns.eval and launch_config.eval_config is None:
        raise ValueError("--eval needs evaluation.EvalConfig bound to flan_jax.train.train's "
                         "eval_dataset, as gin_configs/runs/finetune.gin does; include it.")
    program = build_program(launch_config, topology_devices(tpu_slice))
    reports = [compile_train_step(program, launch_config, tpu_slice)]
    print(format_report(reports[0], launch_config), flush=True)
    if ns.eval:
        for report in compile_eval_steps(program, launch_config.eval_config, tpu_slice):
            print(format_report(report, launch_config), flush=True)
            reports.append(report)
    return reports


if __name__ == "__main__":
    from flan_jax import aot as _entry
    launch.exit_on_user_error(_entry.main, "flan_jax.aot")
