r"""Generates text for prompts from a file or stdin with a checkpoint: the gin entry point.

    python -m flan_jax.infer \
      --gin_file=gin_configs/local/mini_cpu_infer.gin \
      --gin.CHECKPOINT_PATH="'runs/mini-flan'" \
      --gin.INPUT_FILE="'prompts.txt'" --gin.OUTPUT_FILE="'out.jsonl'"

Input (INPUT_FILE; '-' reads stdin): one prompt per line, or JSONL objects with an "inputs"
field (chosen by a .jsonl extension, or when every non-blank line parses as a JSON object);
other fields of a JSONL record are copied to its output. Output (OUTPUT_FILE; '-' writes
stdout): JSONL, one object per prompt in input order:
  {"inputs": ..., "prediction": ..., "score": ..., "truncated": ..., <passthrough fields>}
Prompts longer than INPUT_LENGTH tokens (EOS included) are cut to fit, keeping EOS; they are
counted and named on stderr and flagged "truncated": true.

`infer()` reads top to bottom like flan_jax.eval: read the prompts, lay out parameter shapes
and shardings (as training does), restore the params, compile generate once for a fixed
[BATCH_SIZE, INPUT_LENGTH] batch (the last batch padded), decode, write.
"""
from __future__ import annotations

# First, before jax or seqio load: TensorFlow's start-up banners dropped (flan_jax/console.py).
from flan_jax import console  # noqa: F401, I001

import dataclasses
import functools
import json
import os
import sys
from typing import Any, Iterator, Sequence

import jax
import numpy as np
import seqio

from flan_jax import checkpointing, launch, partitioning, paths, vocabularies
from flan_jax.models import decoding, t5

REQUIRED_MACROS = ("CHECKPOINT_PATH", "INPUT_FILE", "OUTPUT_FILE")


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One input record: its text, its line number (1-based) and fields passed through."""

    inputs: str
    line: int
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class InferRun:
    """What an inference run leaves behind."""

    checkpoint: str
    step: int
    records: list[dict[str, Any]]
    num_truncated: int


# ---------------------------------------------------------------------- prompts and vocabulary

def read_prompts(input_file: str) -> list[Prompt]:
    """Prompts of a text or JSONL file ('-': stdin). Blank lines are skipped."""
    if input_file == "-":
        text, name = sys.stdin.read(), "stdin"
    else:
        name = repr(input_file)
        with open(paths.input_file(input_file, "INPUT_FILE"), "rb") as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"INPUT_FILE {name} is not UTF-8 text (byte {error.start} is "
                f"{raw[error.start:error.start + 1]!r}): give a text file with one prompt per "
                "line, or JSONL records with an \"inputs\" field.") from None
    if "\x00" in text:
        raise ValueError(f"INPUT_FILE {name} holds NUL bytes, so it is a binary file, not "
                         "prompts: give a text file with one prompt per line, or JSONL records "
                         "with an \"inputs\" field.")
    lines = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not lines:
        raise ValueError(f"INPUT_FILE {name} holds no prompts: give one prompt per line, or "
                         "JSONL records with an \"inputs\" field.")
    if input_file.endswith(".jsonl") or all(_is_json_object(line) for _, line in lines):
        return [_jsonl_prompt(line, i, name) for i, line in lines]
    return [Prompt(inputs=line, line=i, extra={}) for i, line in lines]


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _jsonl_prompt(line: str, number: int, name: str) -> Prompt:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"INPUT_FILE {name} line {number} is not valid JSON: {error}.") \
            from None
    if not isinstance(record, dict) or not isinstance(record.get("inputs"), str):
        raise ValueError(f"INPUT_FILE {name} line {number}: a JSONL record needs a string "
                         "\"inputs\" field.")
    extra = {k: v for k, v in record.items() if k != "inputs"}
    return Prompt(inputs=record["inputs"], line=number, extra=extra)


def make_vocabulary(vocabulary: str | None) -> seqio.Vocabulary:
    """'byte': seqio.ByteVocabulary (mini-FLAN); None: VOCABULARY_PATH's SentencePiece model
    (T5's by default); any other string: the path of a SentencePiece model."""
    if vocabulary == "byte":
        return seqio.ByteVocabulary()
    if vocabulary is None:
        return vocabularies.ConfiguredVocabulary()
    if not isinstance(vocabulary, str) or not (paths.is_remote(vocabulary)
                                               or os.path.isfile(vocabulary)):
        raise FileNotFoundError(
            f"VOCABULARY={vocabulary!r} is neither 'byte', None nor an existing SentencePiece "
            "model file. Give 'byte' for mini-FLAN checkpoints, None for VOCABULARY_PATH's "
            "model (T5's by default), or the path of the checkpoint's spiece.model.")
    return seqio.SentencePieceVocabulary(vocabulary)


def tokenize(prompts: Sequence[Prompt], vocab: seqio.Vocabulary,
             input_length: int) -> tuple[np.ndarray, np.ndarray]:
    """-> (tokens [n, input_length] int32, EOS-terminated, 0-padded; truncated [n] bool)."""
    tokens = np.zeros((len(prompts), input_length), np.int32)
    truncated = np.zeros(len(prompts), bool)
    for row, prompt in enumerate(prompts):
        ids = list(vocab.encode(prompt.inputs))
        if len(ids) + 1 > input_length:  # room for EOS
            ids, truncated[row] = ids[:input_length - 1], True
        tokens[row, :len(ids) + 1] = ids + [vocab.eos_id]
    return tokens, truncated


def detokenize(tokens: np.ndarray, vocab: seqio.Vocabulary) -> str:
    """Generated ids [max_decode_length] -> text, up to (not including) the first EOS."""
    ids = [int(t) for t in tokens]
    if vocab.eos_id in ids:
        ids = ids[:ids.index(vocab.eos_id)]
    return vocab.decode(ids)


def _batches(tokens: np.ndarray, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
    """(number of real rows, [batch_size, L]); the last batch padded with its last row."""
    for start in range(0, len(tokens), batch_size):
        rows = tokens[start:start + batch_size]
        pad = np.repeat(rows[-1:], batch_size - len(rows), axis=0)
        yield len(rows), np.concatenate([rows, pad])


def _generate(params, encoder_input_tokens, rng, *, model, config, eos_id):
    """[batch, in_len] -> (tokens [batch, max_decode_length], scores [batch])."""
    return decoding.generate(model, params, encoder_input_tokens, config, rng=rng,
                             eos_id=eos_id)


# ---------------------------------------------------------------------- the entry point

def infer(
    *,
    checkpoint_path: str,
    input_file: str,
    output_file: str,
    model_config: t5.T5Config,
    decoding_config: decoding.DecodingConfig = decoding.DecodingConfig(),
    vocabulary: str | None = None,
    batch_size: int = 32,
    input_length: int = 512,
    seed: int = 0,
    partitioning_config: partitioning.PartitioningConfig = partitioning.PartitioningConfig(),
) -> InferRun:
    """Restores `checkpoint_path`'s params and writes a prediction for every prompt.

    Args:
      checkpoint_path: a run directory (MODEL_DIR), its checkpoints/ directory, or one step
        directory; the latest step is used unless a step directory is given.
      input_file / output_file: see the module docstring ('-': stdin / stdout).
      vocabulary: see make_vocabulary.
      batch_size: rows per generate call; a multiple of the data-parallel size.
      input_length: the encoder length in tokens, EOS included; longer prompts are cut.
      seed: the PRNG seed of DECODING_METHOD = 'sample'.
    """
    # ------------------------------------------------------------------ validate the launch
    if not isinstance(input_length, int) or input_length < 2:
        raise ValueError(f"INPUT_LENGTH={input_length!r} leaves no room for a prompt and EOS: "
                         "give an integer >= 2 (tokens, EOS included).")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"BATCH_SIZE={batch_size!r} must be a positive integer.")
    prompts = read_prompts(input_file)
    output_file = paths.output_file(output_file, "OUTPUT_FILE")
    if "-" not in (input_file, output_file) and os.path.exists(output_file) \
            and os.path.samefile(input_file, output_file):
        raise ValueError(f"OUTPUT_FILE={output_file!r} is INPUT_FILE: writing the predictions "
                         "would overwrite the prompts. Choose another OUTPUT_FILE.")
    vocab = make_vocabulary(vocabulary)
    checkpointing.resolve_initial_checkpoint(checkpoint_path, macro="CHECKPOINT_PATH")
    mesh = partitioning.create_mesh(partitioning_config.num_partitions)
    partitioning.check_batch_size(batch_size, mesh)

    # ------------------------------------------------------------------ tokenize, report cuts
    tokens, truncated = tokenize(prompts, vocab, input_length)
    if truncated.any():
        lines = ", ".join(str(p.line) for p, cut in zip(prompts, truncated) if cut)
        print(f"flan_jax.infer: {int(truncated.sum())} of {len(prompts)} prompts were longer "
              f"than INPUT_LENGTH={input_length} tokens and were truncated: lines {lines}",
              file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ shapes and shardings
    model = t5.Transformer(model_config)
    rules = partitioning.logical_axis_rules(partitioning_config.parameter_sharding)

    # ------------------------------------------------------------------ restore the params
    restored = checkpointing.restore_params(checkpoint_path, model, mesh, rules)
    params, step, checkpoint_dir = restored.params, restored.step, restored.checkpoint_dir

    # ------------------------------------------------------------------ compile generate once
    replicated = partitioning.replicated(mesh)
    generate = jax.jit(
        functools.partial(_generate, model=model, config=decoding_config, eos_id=vocab.eos_id),
        in_shardings=(restored.shardings, partitioning.batch_sharding(mesh), replicated),
        out_shardings=(replicated, replicated))

    # ------------------------------------------------------------------ decode
    rng = jax.random.PRNGKey(seed)
    predictions, scores = [], []
    with partitioning.sharding_context(mesh, rules):
        for num_rows, batch in _batches(tokens, batch_size):
            rng, step_rng = jax.random.split(rng)
            out_tokens, out_scores = generate(params, batch, step_rng)
            out_tokens, out_scores = np.asarray(out_tokens), np.asarray(out_scores)
            predictions += [detokenize(t, vocab) for t in out_tokens[:num_rows]]
            scores += [float(s) for s in out_scores[:num_rows]]

    # ------------------------------------------------------------------ write
    records = [{"inputs": p.inputs, "prediction": pred, "score": score, "truncated": bool(cut),
                **p.extra}
               for p, pred, score, cut in zip(prompts, predictions, scores, truncated)]
    if jax.process_index() == 0:
        _write_jsonl(records, output_file)
        print(f"flan_jax.infer: {len(records)} predictions from {checkpoint_dir} step {step} "
              f"-> {'stdout' if output_file == '-' else output_file}", file=sys.stderr,
              flush=True)
    return InferRun(checkpoint=checkpoint_dir, step=step, records=records,
                    num_truncated=int(truncated.sum()))


def _write_jsonl(records: Sequence[dict[str, Any]], output_file: str) -> None:
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if output_file == "-":
        sys.stdout.write(lines)
        sys.stdout.flush()
    else:
        with open(output_file, "w", encoding="utf-8") as f:
            f.write(lines)


def main(argv: Sequence[str] | None = None) -> InferRun:
    return launch.run_gin_function(infer, argv, "Generate text for prompts with a checkpoint.",
                                   REQUIRED_MACROS)


if __name__ == "__main__":
    # As in flan_jax.train: run the *imported* module's main, the one gin has bound.
    from flan_jax import infer as _entry
    launch.exit_on_user_error(_entry.main, "flan_jax.infer")
