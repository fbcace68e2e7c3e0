r"""Decoding and scoring throughput on the bench-cpu model (shared/DESIGN.md section 2).

    python tools/bench_decode.py [--repeats 3] [--decode-length 64] [--no-hf] [--devices 1]

Times, on the same shapes and in the same run (calls interleaved round-robin):
  - flan_jax greedy and beam-4 generation (flan_jax.models.decoding.generate, jitted) and
    scoring (decoding.score): batch 16 x 256 random input ids, 64 generated tokens;
  - rank classification ("rank"), the evaluation of FLAN's `_scoring_eval` tasks: 16 rows =
    16 / --options inputs (256 ids) each scored against --options targets of
    --option-length ids; flan_jax as its Evaluator does it (decoding.share_encoder_inputs:
    each distinct input encoded once), HF as a forward pass over the 16 rows;
  - Hugging Face PyTorch T5ForConditionalGeneration.generate (greedy and num_beams=4, KV
    cache on) and a teacher-forced forward pass for scoring, when torch and transformers are
    importable (the test-only extras).
Both sides generate exactly --decode-length tokens (flan_jax with an EOS id that never occurs,
HF with min_new_tokens = max_new_tokens), so they do the same number of steps. Weights are
random (throughput does not depend on them). Progress goes to stderr; stdout gets one JSON
line: {"jax": {...}, "hf": {...}, "shapes": {...}, "versions": {...}, "scoring": {...},
"greedy_steps": {...}} with tokens/s (generated tokens of the returned sequences, batch *
decode_length / seconds) and examples/s for scoring.

"scoring" states scoring's speed in FLOP terms, so that a goal can be checked against what the
machine can do: the model FLOPs of one forward pass over the scored rows (flan_jax/flops.py's
forward_flops; both sides compute those products), each side's model GFLOP/s, the rate that
twice HF's speed would need, and, with --measure-peak, the best fp32 rate of a single 2048^2
product measured in the same process, a jitted jnp.dot (XLA's kernels) and torch.mm (MKL),
the ceiling that a whole forward pass (products, softmax, norms and all) stays below.

"greedy_steps" splits greedy generation into its fixed part and its loop: each side also
generates a single token in the same rounds ("first_token_s": the encoder, the cross-attention
keys and values, one step), and (greedy - first) / (decode_length - 1) is the time of each
further token; "twice_hf_needs_next_token_ms" is what flan_jax's loop would have to reach,
given its own first-token time, for greedy at twice HF's speed.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input-length", type=int, default=256)
    parser.add_argument("--decode-length", type=int, default=64)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--options", type=int, default=4,
                        help="rank classification: options per input (rows per input)")
    parser.add_argument("--option-length", type=int, default=4,
                        help="rank classification: target ids per option")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument("--devices", type=int, default=1,
                        help="fake CPU devices; the batch is split over them ('data' axis)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--no-hf", action="store_true", help="skip the PyTorch peer")
    parser.add_argument("--measure-peak", action="store_true",
                        help="also time a 2048^2 fp32 product in XLA (jnp.dot) and PyTorch "
                             "(torch.mm), best of 20 each, after the rounds")
    parser.add_argument("--keep-denormals", action="store_true",
                        help="leave PyTorch's denormal floats on (its default); by default they "
                             "are flushed to zero as XLA does on CPU, as in tools/bench_peer.py")
    args = parser.parse_args(argv)
    if args.devices < 1:
        parser.error(f"--devices {args.devices}: give at least 1 (the CPU devices to split "
                     "the batch over)")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def time_interleaved(runs: dict[str, Callable[[], Any]], repeats: int
                     ) -> dict[str, tuple[float, float]]:
    """name -> (first call seconds, including any compile; median of `repeats` calls).

    The timed calls go round-robin over all runs, so that a change in the load of this
    shared machine hits every contender alike.
    """
    first, times = {}, {name: [] for name in runs}
    for name, run in runs.items():
        start = time.perf_counter()
        run()
        first[name] = time.perf_counter() - start
        log(f"{name}: first call {first[name]:.1f}s")
    for round_ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
        log(f"round {round_ + 1}/{repeats}: " +
            ", ".join(f"{name} {t[-1]:.2f}s" for name, t in times.items()))
    return {name: (first[name], statistics.median(times[name])) for name in runs}


def bench_cpu_model():
    """The bench-cpu T5 v1.1 shape, float32: tools/bench.py's one definition.

    Imported late: main() configures JAX's CPU client first.
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench
    return bench.bench_cpu_model()


def scoring_rates(args: argparse.Namespace, timings: dict[str, tuple[float, float]],
                  peaks: dict[str, float | None] | None) -> dict[str, Any]:
    """Scoring in FLOP terms: model GFLOP of one score call, each side's GFLOP/s, the rate 2x
    HF would need, and the measured single-product peaks (None where not measured)."""
    from flan_jax import flops
    gflop = flops.forward_flops(bench_cpu_model(), args.batch, args.input_length,
                                args.decode_length) / 1e9
    result: dict[str, Any] = {"model_gflop_per_call": round(gflop, 3)}
    for side in ("jax", "hf"):
        if f"{side}_score" in timings:
            result[f"{side}_gflop_s"] = round(gflop / timings[f"{side}_score"][1], 1)
    if "hf_gflop_s" in result:
        result["twice_hf_needs_gflop_s"] = round(2 * gflop / timings["hf_score"][1], 1)
    if peaks is not None:
        result["peak_gflop_s"] = {name: None if rate is None else round(rate, 1)
                                  for name, rate in peaks.items()}
    return result


def greedy_steps(args: argparse.Namespace, timings: dict[str, tuple[float, float]]
                 ) -> dict[str, Any]:
    """Greedy's fixed part and per-token loop, each side: seconds of a one-token generation,
    milliseconds per further token, and the loop time 2x HF would need of flan_jax."""
    result: dict[str, Any] = {}
    further = args.decode_length - 1
    for side in ("jax", "hf"):
        if f"{side}_greedy" in timings and further > 0:
            first, whole = timings[f"{side}_greedyfirst"][1], timings[f"{side}_greedy"][1]
            result[side] = {"first_token_s": round(first, 4),
                            "next_token_ms": round(1e3 * (whole - first) / further, 3)}
    if "jax" in result and "hf" in result:
        budget = timings["hf_greedy"][1] / 2 - timings["jax_greedyfirst"][1]
        result["twice_hf_needs_next_token_ms"] = round(1e3 * budget / further, 3)
    return result


def measure_peaks() -> dict[str, float | None]:
    """tools/bench.py's 2048^2 peaks, XLA's and PyTorch's (None without torch)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench
    return {"jnp_dot": bench.measure_peak_gflop_s(),
            "torch_mm": bench.measure_torch_peak_gflop_s()}


def rank_rows(args: argparse.Namespace, inputs):
    """Rank-classification rows [batch, ...]: each of batch / options inputs repeated once
    per option; option ids random (never padding or EOS)."""
    import numpy as np
    if args.batch % args.options:
        raise SystemExit(f"--batch {args.batch} must be a multiple of --options {args.options}")
    rng = np.random.default_rng(1)
    rows_inputs = np.repeat(inputs[:args.batch // args.options], args.options, axis=0)
    options = rng.integers(2, 32128, (args.batch, args.option_length)).astype(np.int32)
    return rows_inputs, options


def jax_runs(args: argparse.Namespace, inputs, targets) -> dict[str, Callable[[], Any]]:
    """flan_jax greedy, beam and scoring, each a no-argument callable that blocks."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np

    from flan_jax import partitioning
    from flan_jax.models import decoding, t5

    model = t5.Transformer(bench_cpu_model())
    tokens = jnp.ones((1, 4), jnp.int32)
    params = nn.unbox(jax.jit(lambda key: model.init(key, tokens, tokens, tokens,
                                                     enable_dropout=False))(
        jax.random.key(0)))["params"]
    mesh = partitioning.create_mesh(1, jax.devices()[:args.devices])
    rules = partitioning.logical_axis_rules()
    put = lambda x: jax.device_put(x, partitioning.batch_sharding(mesh))
    params = jax.device_put(params, partitioning.replicated(mesh))
    inputs = put(inputs)
    shifted = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
    batch = {"encoder_input_tokens": inputs, "decoder_input_tokens": put(shifted),
             "decoder_target_tokens": put(targets)}

    def blocking(fn, *fn_args):
        def run():
            with partitioning.sharding_context(mesh, rules):
                return jax.block_until_ready(fn(*fn_args))
        return run

    runs = {}
    for name, config in (
            ("greedy", decoding.DecodingConfig("greedy", args.decode_length)),
            ("greedyfirst", decoding.DecodingConfig("greedy", 1)),
            (f"beam{args.num_beams}", decoding.DecodingConfig(
                "beam", args.decode_length, num_beams=args.num_beams))):
        # eos_id -1 never occurs: every run decodes all decode_length steps, as HF below.
        generate = jax.jit(functools.partial(decoding.generate, model, config=config,
                                             eos_id=-1))
        runs[f"jax_{name}"] = blocking(generate, params, inputs)
    score = jax.jit(functools.partial(decoding.score, model))
    runs["jax_score"] = blocking(score, params, batch)
    # Rank classification as flan_jax.evaluation scores it: host-side sharing included.
    rank_inputs, options = rank_rows(args, inputs)
    rank_batch = {"encoder_input_tokens": rank_inputs,
                  "decoder_input_tokens": np.concatenate(
                      [np.zeros_like(options[:, :1]), options[:, :-1]], axis=1),
                  "decoder_target_tokens": options}

    def rank():
        shared = decoding.share_encoder_inputs(rank_batch, args.devices) or rank_batch
        return score(params, {k: put(v) for k, v in shared.items()})
    runs["jax_rank"] = blocking(rank)
    return runs


def hf_runs(args: argparse.Namespace, inputs, targets) -> dict[str, Callable[[], Any]]:
    """The same three on HF PyTorch T5ForConditionalGeneration (random weights)."""
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    # XLA flushes denormals to zero on CPU; a PyTorch run that keeps them measures the CPU's
    # denormal microcode (see tools/bench_peer.py).
    torch.set_flush_denormal(not args.keep_denormals)
    torch.manual_seed(0)
    from flan_jax.convert import hf
    # The one flan_jax -> HF config mapping (as tools/bench_peer.py and flan_jax.convert).
    fields = hf.hf_config_from_t5(bench_cpu_model())
    fields.update(dropout_rate=0.0)
    hf_config = transformers.T5Config(**fields)
    model = transformers.T5ForConditionalGeneration(hf_config).float().eval()
    input_ids = torch.from_numpy(inputs.astype("int64"))
    attention_mask = torch.ones_like(input_ids)
    labels = torch.from_numpy(targets.astype("int64"))

    def generate(beams: int, length: int = args.decode_length):
        def run():
            with torch.no_grad():
                return model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, do_sample=False,
                    num_beams=beams, max_new_tokens=length, min_new_tokens=length,
                    use_cache=True)
        return run

    def score():
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention_mask,
                           labels=labels, use_cache=False).logits
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            return log_probs.gather(-1, labels[..., None])[..., 0].sum(-1)

    rank_inputs, options = rank_rows(args, inputs)
    rank_ids, rank_labels = (torch.from_numpy(x.astype("int64")) for x in (rank_inputs, options))

    def rank():
        with torch.no_grad():
            logits = model(input_ids=rank_ids, attention_mask=torch.ones_like(rank_ids),
                           labels=rank_labels, use_cache=False).logits
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            return log_probs.gather(-1, rank_labels[..., None])[..., 0].sum(-1)

    return {"hf_greedy": generate(1), "hf_greedyfirst": generate(1, 1),
            f"hf_beam{args.num_beams}": generate(args.num_beams),
            "hf_score": score, "hf_rank": rank}


def versions(hf: bool) -> dict[str, Any]:
    import jax
    result = {"jax": jax.__version__}
    if hf:
        import torch
        import transformers
        result |= {"torch": torch.__version__, "transformers": transformers.__version__,
                   "torch_threads": torch.get_num_threads()}
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import numpy as np

    from flan_jax import cpu_runtime
    # As flan_jax's entry points run (eval, infer), on exactly the devices timed: XLA:CPU
    # runs max(cores, CPU devices) intra-op threads.
    runtime = cpu_runtime.configure(cpu_devices=args.devices)
    log(runtime.describe())
    rng = np.random.default_rng(0)
    # ids in [2, vocab): no padding, never EOS.
    inputs = rng.integers(2, 32128, (args.batch, args.input_length)).astype(np.int32)
    targets = rng.integers(2, 32128, (args.batch, args.decode_length)).astype(np.int32)
    runs = jax_runs(args, inputs, targets)
    hf_skipped = None
    if not args.no_hf:
        try:
            runs |= hf_runs(args, inputs, targets)
        except ImportError as error:
            hf_skipped = f"torch/transformers not importable: {error}"
    timings = time_interleaved(runs, args.repeats)
    scoring = scoring_rates(args, timings, measure_peaks() if args.measure_peak else None)
    log("scoring: " + ", ".join(f"{k} {v}" for k, v in scoring.items()))
    greedy = greedy_steps(args, timings)
    log("greedy: " + ", ".join(f"{k} {v}" for k, v in greedy.items()))
    generated = args.batch * args.decode_length
    result: dict[str, Any] = {
        "shapes": {"batch": args.batch, "input_length": args.input_length,
                   "decode_length": args.decode_length, "num_beams": args.num_beams,
                   "rank_options": args.options, "rank_option_length": args.option_length,
                   "model": "bench-cpu fp32", "devices": args.devices},
        "versions": versions(hf=not args.no_hf and hf_skipped is None),
        "hf_flush_denormal": not args.keep_denormals,
        "cpu_runtime": runtime.as_dict(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "scoring": scoring, "greedy_steps": greedy}
    for name, (first, median) in timings.items():
        side, what = name.split("_", 1)
        if what == "greedyfirst":  # reported in "greedy_steps"
            continue
        rate = ({"examples_per_s": round(args.batch / median, 2)} if what in ("score", "rank")
                else {"tokens_per_s": round(generated / median, 1)})
        result.setdefault(side, {})[what] = rate | {"seconds_median": round(median, 4),
                                                     "first_call_s": round(first, 1)}
    if hf_skipped:
        result["hf"] = {"skipped": hf_skipped}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
