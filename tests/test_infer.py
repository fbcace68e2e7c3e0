"""flan_jax.infer: prompts in, JSONL predictions out, truncation reported, bad input refused."""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest
import seqio

import tiny
from flan_jax import checkpointing, infer, train
from flan_jax.models import decoding, t5

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
INPUT_LENGTH = 24
DECODING = decoding.DecodingConfig(method="greedy", max_decode_length=8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny byte-vocabulary model trained for 2 steps (its predictions need not be good)."""
    path = tmp_path_factory.mktemp("infer") / "run"
    train.train(**tiny.train_kwargs(path, steps=2, save_every=2))
    return str(path)


def _infer(model_dir, input_file, output_file, **overrides):
    kwargs = dict(checkpoint_path=model_dir, input_file=str(input_file),
                  output_file=str(output_file), model_config=tiny.model_config(),
                  decoding_config=DECODING, vocabulary="byte", batch_size=8,
                  input_length=INPUT_LENGTH)
    kwargs.update(overrides)
    return infer.infer(**kwargs)


def _read_jsonl(path):
    return [json.loads(line) for line in open(path)]


def test_predictions_in_order_with_truncation_flags(model_dir, tmp_path, capsys):
    # 10 prompts: two batches of 8 (the last padded); line 3 is blank and skipped.
    prompts = [f"reverse: alpha {i}" for i in range(10)]
    prompts[4] = "reverse: " + "ocean " * 10  # > INPUT_LENGTH bytes
    text = "\n".join(prompts[:2] + [""] + prompts[2:]) + "\n"
    (tmp_path / "p.txt").write_text(text)
    run = _infer(model_dir, tmp_path / "p.txt", tmp_path / "out.jsonl")

    records = _read_jsonl(tmp_path / "out.jsonl")
    assert [r["inputs"] for r in records] == prompts
    assert [r["truncated"] for r in records] == [i == 4 for i in range(10)]
    assert run.num_truncated == 1
    err = capsys.readouterr().err
    assert (f"1 of 10 prompts were longer than INPUT_LENGTH={INPUT_LENGTH} tokens and were "
            "truncated: lines 6") in err

    # Decode independently, the whole set in one unsharded batch.
    vocab = seqio.ByteVocabulary()
    tokens = np.zeros((10, INPUT_LENGTH), np.int32)
    for row, prompt in enumerate(prompts):
        ids = list(vocab.encode(prompt))[:INPUT_LENGTH - 1] + [vocab.eos_id]
        tokens[row, :len(ids)] = ids
    assert (tokens[4] != 0).all() and tokens[4, -1] == vocab.eos_id
    model = t5.Transformer(tiny.model_config())
    abstract = jax.eval_shape(lambda: nn.meta.unbox(model.init(
        jax.random.PRNGKey(0), np.zeros((1, 4), np.int32), np.zeros((1, 4), np.int32),
        np.zeros((1, 4), np.int32), enable_dropout=False)["params"]))
    params = checkpointing.load_initial_params(model_dir, abstract)
    out, scores = decoding.generate(model, params, tokens, DECODING, eos_id=vocab.eos_id)
    expected = [infer.detokenize(np.asarray(t), vocab) for t in out]
    assert [r["prediction"] for r in records] == expected
    np.testing.assert_allclose([r["score"] for r in records], np.asarray(scores), rtol=1e-4,
                               atol=1e-4)


def test_jsonl_fields_pass_through(model_dir, tmp_path):
    rows = [{"inputs": "reverse: maple", "id": 7, "meta": {"a": [1]}},
            {"inputs": "reverse: lemon pearl", "id": 8}]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _infer(model_dir, path, tmp_path / "out.jsonl")
    records = _read_jsonl(tmp_path / "out.jsonl")
    assert [(r["inputs"], r["id"]) for r in records] == [("reverse: maple", 7),
                                                         ("reverse: lemon pearl", 8)]
    assert records[0]["meta"] == {"a": [1]} and "meta" not in records[1]
    assert all(isinstance(r["prediction"], str) and r["truncated"] is False for r in records)


def test_empty_prompt_file_and_missing_checkpoint_are_refused(model_dir, tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="holds no prompts"):
        _infer(model_dir, tmp_path / "empty.txt", tmp_path / "out.jsonl")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _infer(model_dir, tmp_path / "nope.txt", tmp_path / "out.jsonl")
    (tmp_path / "p.txt").write_text("hello\n")
    with pytest.raises(FileNotFoundError, match="holds no flan_jax checkpoint"):
        _infer(str(tmp_path), tmp_path / "p.txt", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def _tiny_infer_gin(tmp_path) -> str:
    """infer.gin with the tests' tiny model shape (tests/tiny.py model_config)."""
    c = tiny.model_config()
    path = tmp_path / "tiny_infer.gin"
    path.write_text(
        "from __gin__ import dynamic_registration\n"
        "from flan_jax.models import t5\n"
        "include 'gin_configs/runs/infer.gin'\n"
        "MODEL_CONFIG = @t5.T5Config()\n"
        + "".join(f"t5.T5Config.{name} = {getattr(c, name)}\n" for name in (
            "vocab_size", "emb_dim", "num_heads", "num_encoder_layers", "num_decoder_layers",
            "head_dim", "mlp_dim"))
        + "t5.T5Config.dropout_rate = 0.0\n"
        "t5.T5Config.dtype = 'float32'\n"
        "VOCABULARY = 'byte'\n"
        f"INPUT_LENGTH = {INPUT_LENGTH}\n"
        "BATCH_SIZE = 8\n"
        "MAX_DECODE_LENGTH = 8\n")
    return str(path)


def _run_infer(tmp_path, checkpoint, stdin):
    env = dict(os.environ, PYTHONPATH=TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "flan_jax.infer", f"--gin_file={_tiny_infer_gin(tmp_path)}",
         f"--gin.CHECKPOINT_PATH='{checkpoint}'", "--gin.INPUT_FILE='-'",
         "--gin.OUTPUT_FILE='-'"],
        cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=300)


def test_entry_point_reads_stdin_writes_stdout(model_dir, tmp_path):
    result = _run_infer(tmp_path, f"{model_dir}/checkpoints/2", "reverse: ember\nreverse: x\n")
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["inputs"] for r in records] == ["reverse: ember", "reverse: x"]
    assert "2 predictions from" in result.stderr
