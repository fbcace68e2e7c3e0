"""Input-pipeline benchmark: `make bench-input`.

    python tools/bench_input.py [--batches 50] [--warmup 5] [--vocabulary PATH] [--train-step-s S]

What it times: the batches flan_jax.train reads (flan_jax.data.BatchIterator: seqio mixing and
shuffling, FLAN-style templating, SentencePiece tokenization, packing with
EncDecFeatureConverter, batching, prefetch), in bench-cpu's batch shape: 16 rows x (256 input
+ 64 target tokens), packed. The data is mini-FLAN's all-task mixture (tasks/mini.py: twelve
offline tasks, ten FLAN-PATTERNS-format templates each, examples-proportional mixing capped at
3,000), with its byte vocabulary replaced by a 32k SentencePiece vocabulary, the size of T5's.

The vocabulary: --vocabulary names a SentencePiece model (T5's spiece.model if you have it).
Without it, one is trained once, offline, and kept at runs/bench_input/spm32k.model: a unigram
model of 32,000 pieces with T5's special ids (pad 0, eos 1, unk 2, no bos), trained on the
English documentation (*.md, *.rst, *.txt) installed with the project's Python packages plus
mini-FLAN's own rendered training text, so that the benchmark's text tokenizes at a realistic
density (the JSON reports characters per token; T5's vocabulary gives about 4 on English).
Seqio adds T5's 100 sentinel ids, as flan_jax.vocabularies does.

"Consumption": a train step takes one batch, so bench-cpu consumes 1 / step-time batches per
second (--train-step-s, default the flan_jax step `make bench` measured). The goal of issue 10
is a pipeline at least 10x faster than that. The pipeline runs on the CPU beside the train
step, so the figure is what it delivers with the whole machine; during training it shares it.

Progress goes to stderr; stdout gets one JSON line:
    {"batches_per_s", "batch_s_median", "tokens_per_s", "real_tokens_per_batch",
     "examples_per_batch", "chars_per_token", "train_step_s", "train_batches_per_s",
     "times_train_consumption", "vocabulary", "vocab_size", "batch", "batches", "loadavg",
     "other_cpu_load", ...}
"""
from __future__ import annotations

import argparse
import functools
import glob
import json
import os
import statistics
import sys
import sysconfig
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tools"))


from flan_jax import data  # noqa: E402  (loads TensorFlow quietly first)
import seqio  # noqa: E402
import sentencepiece as spm  # noqa: E402

from bench import OtherLoadMeter  # noqa: E402
import tasks.mini as mini  # noqa: E402  (registers mini-FLAN)

DEFAULT_VOCABULARY = os.path.join(REPO, "runs", "bench_input", "spm32k.model")
VOCAB_PIECES = 32000
# bench-cpu's batch (tools/bench.py): what one train step consumes.
BATCH_SIZE = 16
FEATURE_LENGTHS = {"inputs": 256, "targets": 64}
# flan_jax's bench-cpu step, `make bench` 2026-11-30 10:03-10:09 UTC (README "Benchmarks").
DEFAULT_TRAIN_STEP_S = 2.431
MIXTURE = "bench_input_mini_flan_all_train"
# Corpus lines kept for training the vocabulary: enough for 32k pieces, minutes on 2 cores.
CORPUS_LINES = 400_000


def log(message: str) -> None:
    print(f"bench_input: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- vocabulary
def corpus_lines(max_lines: int) -> list[str]:
    """Text to train the vocabulary on: mini-FLAN's rendered train examples (inputs and
    targets) and the installed packages' English documentation, in a fixed file order."""
    lines = []
    # At most half of the lines from mini-FLAN (two per example), split evenly over its tasks.
    for ex in _rendered_mini_flan(max_lines // (4 * len(mini.DATASET_NAMES)) or 1):
        lines += [ex["inputs"], ex["targets"]]
    site = sysconfig.get_paths()["purelib"]
    for path in sorted(glob.glob(os.path.join(site, "**", "*.*"), recursive=True)):
        if len(lines) >= max_lines:
            break
        if not path.endswith((".md", ".rst", ".txt")) or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                lines += [ln.strip() for ln in f if len(ln.strip()) > 20]
        except (UnicodeDecodeError, OSError):
            continue
    return lines[:max_lines]


def _rendered_mini_flan(examples_per_task: int) -> list[dict[str, str]]:
    """The first train examples of each mini-FLAN task after templating, as text."""
    out = []
    for name in mini.DATASET_NAMES:
        task = seqio.get_mixture_or_task(mini.train_task_name(name))
        ds = task.source.get_dataset("train", shuffle=False).take(examples_per_task)
        for preprocessor in task.preprocessors:
            if preprocessor is seqio.preprocessors.tokenize:
                break
            ds = preprocessor(ds)
        out += [{k: v.decode("utf-8") for k, v in ex.items() if k in ("inputs", "targets")}
                for ex in ds.as_numpy_iterator()]
    return out


def build_vocabulary(path: str, pieces: int = VOCAB_PIECES,
                     max_lines: int = CORPUS_LINES) -> None:
    """Trains a unigram SentencePiece model with T5's special ids and writes it to path."""
    lines = corpus_lines(max_lines)
    chars = sum(map(len, lines))
    log(f"training a {pieces:,}-piece SentencePiece model on {len(lines):,} lines "
        f"({chars / 1e6:.1f} M characters) -> {path}")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    start = time.perf_counter()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=path[:-len(".model")],
        vocab_size=pieces, model_type="unigram", character_coverage=0.9995,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,  # T5's ids
        num_threads=os.cpu_count() or 1, minloglevel=2)
    log(f"vocabulary trained in {time.perf_counter() - start:.0f} s")


# ---------------------------------------------------------------------------- tasks
def register_tasks(vocabulary_path: str) -> seqio.SentencePieceVocabulary:
    """mini-FLAN's tasks and all-task mixture again, tokenized with the given vocabulary."""
    vocabulary = seqio.SentencePieceVocabulary(vocabulary_path, extra_ids=100)
    features = {name: seqio.Feature(vocabulary=vocabulary, add_eos=True)
                for name in ("inputs", "targets")}
    names = []
    for name in mini.DATASET_NAMES:
        task = seqio.get_mixture_or_task(mini.train_task_name(name))
        seqio.TaskRegistry.remove(f"bench_input_{name}")
        seqio.TaskRegistry.add(f"bench_input_{name}", source=task.source,
                               preprocessors=task.preprocessors, output_features=features)
        names.append(f"bench_input_{name}")
    seqio.MixtureRegistry.remove(MIXTURE)
    seqio.MixtureRegistry.add(MIXTURE, names, default_rate=functools.partial(
        seqio.mixing_rate_num_examples, maximum=mini.MIXING_CAP))
    return vocabulary


# ---------------------------------------------------------------------------- the benchmark
def run_benchmark(vocabulary_path: str, batches: int, warmup: int, train_step_s: float,
                  batch_size: int = BATCH_SIZE,
                  feature_lengths: dict[str, int] | None = None) -> dict[str, Any]:
    """Times `batches` batches of the training pipeline after `warmup` untimed ones.

    The first warm-up batch builds the pipeline (seqio, tf.data tracing); the timed batches
    are read one by one as the train loop reads them (next() on the BatchIterator).
    """
    feature_lengths = feature_lengths or FEATURE_LENGTHS
    vocabulary = register_tasks(vocabulary_path)
    iterator = data.BatchIterator(
        data.DatasetConfig(MIXTURE, feature_lengths, batch_size=batch_size, shuffle=True,
                           seed=0, pack=True),
        process_index=0, process_count=1)
    start = time.perf_counter()
    for _ in range(warmup):
        next(iterator)
    log(f"{warmup} warm-up batches (the first builds the pipeline) in "
        f"{time.perf_counter() - start:.1f} s")
    meter = OtherLoadMeter()
    times, real_tokens, examples, chars = [], [], [], []
    for _ in range(batches):
        start = time.perf_counter()
        batch = next(iterator)
        times.append(time.perf_counter() - start)
        real_tokens.append(int((batch["encoder_input_tokens"] > 0).sum()
                               + (batch["decoder_target_tokens"] > 0).sum()))
        # Packed segments are numbered 1, 2, ... per row: the largest id counts the examples.
        examples.append(int(batch["encoder_segment_ids"].max(axis=1).sum()))
    elapsed = sum(times)
    other_load = meter.fraction()
    # Tokenization density, on the last batch: characters of decoded text per real token.
    for row in batch["encoder_input_tokens"]:
        ids = [int(t) for t in row if t > 1]
        chars.append((len(vocabulary.decode(ids)), len(ids)))
    rate = batches / elapsed
    return {
        "benchmark": "bench-input",
        "batches_per_s": round(rate, 2),
        "batch_s_median": round(statistics.median(times), 5),
        "batch_s_max": round(max(times), 5),
        "tokens_per_s": round(sum(real_tokens) / elapsed, 1),
        "real_tokens_per_batch": round(statistics.mean(real_tokens), 1),
        "token_slots_per_batch": batch_size * sum(feature_lengths.values()),
        "examples_per_batch": round(statistics.mean(examples), 1),
        "chars_per_token": round(sum(c for c, _ in chars) / max(sum(n for _, n in chars), 1), 2),
        "train_step_s": train_step_s,
        "train_batches_per_s": round(1 / train_step_s, 3),
        # > 10: the goal of issue 10 (the pipeline is not what a train step waits for).
        "times_train_consumption": round(rate * train_step_s, 1),
        "vocabulary": vocabulary_path,
        "vocab_size": vocabulary.vocab_size,
        "mixture": f"{mini.ALL_TRAIN_MIXTURE} re-tokenized ({MIXTURE})",
        "batch": f"{batch_size}x({feature_lengths['inputs']}+{feature_lengths['targets']}) "
                 "packed",
        "batches": batches,
        "warmup": warmup,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "other_cpu_load": None if other_load is None else round(other_load, 3),
    }


# ---------------------------------------------------------------------------- entry point
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time flan_jax's training input pipeline (FLAN-style templating, 32k "
                    "SentencePiece tokenization, packing) in bench-cpu's batch shape; prints "
                    "one JSON line on stdout.")
    parser.add_argument("--batches", type=int, default=50, help="timed batches (50)")
    parser.add_argument("--warmup", type=int, default=5,
                        help="untimed batches first; the first builds the pipeline (5)")
    parser.add_argument("--vocabulary", default=None,
                        help="a SentencePiece model file; default: "
                             f"{os.path.relpath(DEFAULT_VOCABULARY, REPO)}, trained on the "
                             "first run if absent")
    parser.add_argument("--train-step-s", type=float, default=DEFAULT_TRAIN_STEP_S,
                        help="seconds per bench-cpu train step, what the pipeline is compared "
                             f"with ({DEFAULT_TRAIN_STEP_S}: flan_jax in `make bench`)")
    parser.add_argument("--pieces", type=int, default=VOCAB_PIECES,
                        help="pieces of the vocabulary trained when none exists (32000)")
    args = parser.parse_args(argv)
    for name in ("batches", "warmup", "pieces"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not args.train_step_s > 0:
        parser.error(f"--train-step-s must be > 0, got {args.train_step_s}")
    if args.vocabulary is not None and not os.path.isfile(args.vocabulary):
        parser.error(f"--vocabulary {args.vocabulary!r} is not a file; give a SentencePiece "
                     "model, or leave the flag out to train one offline")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    vocabulary_path = args.vocabulary
    if vocabulary_path is None:
        vocabulary_path = DEFAULT_VOCABULARY
        if args.pieces != VOCAB_PIECES:  # keep the 32k model for the default run
            vocabulary_path = vocabulary_path.replace("spm32k", f"spm{args.pieces}")
        if not os.path.isfile(vocabulary_path):
            build_vocabulary(vocabulary_path, args.pieces)
    result = run_benchmark(vocabulary_path, args.batches, args.warmup, args.train_step_s)
    log(f"{result['batches_per_s']:.2f} batches/s ({result['tokens_per_s']:,.0f} real tokens/s, "
        f"{result['examples_per_batch']:.0f} examples per batch, "
        f"{result['chars_per_token']:.2f} characters per token); a bench-cpu step of "
        f"{args.train_step_s:g} s consumes {result['train_batches_per_s']:.3f} batches/s: "
        f"the pipeline delivers {result['times_train_consumption']:.1f}x that")
    log(f"load average {result['loadavg']}; other processes' share of the CPUs: "
        f"{result['other_cpu_load']}")
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
