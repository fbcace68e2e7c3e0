"""Hugging Face T5 <-> flan_jax conversion, checked against transformers (test-only reference).

Every checkpoint is a randomly initialised tiny HF T5 written by the test. Parity: same inputs
(encoder padding included) -> logits within 1e-4 in fp32. Round trip HF -> flan_jax -> HF:
every tensor bit-identical, and transformers loads the result with no missing/unexpected keys.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from safetensors.numpy import load_file  # noqa: E402

from flan_jax import checkpointing, launch  # noqa: E402
from flan_jax.convert import checkpoint_io, hf, naming  # noqa: E402

REPO = launch.REPO_ROOT
PARITY_TOLERANCE = 1e-4  # max |logits difference|, fp32
# T5 v1.0 (ReLU, tied, scaled logits); v1.1 / Flan-T5 (gated GELU, untied); gated SiLU.
VARIANTS = {"v1_0": ("relu", True), "v1_1": ("gated-gelu", False),
            "gated_silu": ("gated-silu", False)}


def _tiny_hf_config(feed_forward_proj: str, tie: bool):
    # vocab >= 259 so the byte-level mini tasks fit; 2 heads x 16, d_ff 64, 2+2 layers.
    return transformers.T5Config(
        vocab_size=384, d_model=32, d_kv=16, num_heads=2, d_ff=64, num_layers=2,
        num_decoder_layers=2, feed_forward_proj=feed_forward_proj, tie_word_embeddings=tie,
        dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def _save_tiny_hf(directory, variant: str, seed: int = 0, **save_kwargs) -> str:
    torch.manual_seed(seed)
    model = transformers.T5ForConditionalGeneration(_tiny_hf_config(*VARIANTS[variant]))
    # HF initialises T5 with small layer-norm scales of exactly 1; randomise them (and the
    # relative position tables) so a mix-up of any two tensors shows in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "relative_attention_bias" in name:
                p.copy_(torch.rand_like(p) + 0.5)
    model.save_pretrained(str(directory), **save_kwargs)
    return str(directory)


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {v: _save_tiny_hf(root / v, v) for v in VARIANTS}


@pytest.fixture(scope="module")
def converted(hf_dirs, tmp_path_factory):
    root = tmp_path_factory.mktemp("converted")
    out = {}
    for variant, directory in hf_dirs.items():
        out[variant] = str(root / variant)
        hf.from_hf(directory, out[variant])
    return out


# ----------------------------------------------------------------------------------------
# Parity and round trip
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_converted_logits_equal_transformers_logits(variant, hf_dirs, converted):
    result = hf.check_hf(hf_dirs[variant], converted[variant])
    assert result["logits_shape"] == [2, 7, 384]
    assert result["max_abs_logits"] > 1.0  # a real signal, not all zeros
    assert result["max_abs_logits_diff"] <= PARITY_TOLERANCE, (
        f"{variant}: max |logits(flan_jax) - logits(transformers)| = "
        f"{result['max_abs_logits_diff']:.3g} > {PARITY_TOLERANCE}")


def test_converted_dir_layout_and_model_gin(hf_dirs, converted):
    out = converted["v1_0"]
    assert sorted(os.listdir(out)) == ["checkpoints", "conversion.json", "model.gin"]
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["0"]
    config = checkpoint_io.config_from_gin([os.path.join(out, "model.gin")])
    assert config == hf.HfCheckpoint(hf_dirs["v1_0"]).config
    assert config.logits_via_embedding and config.mlp_activations == ("relu",)
    assert "VOCABULARY_PATH" not in open(os.path.join(out, "model.gin")).read()
    assert not [n for n in os.listdir(os.path.dirname(out)) if ".tmp-" in n]


def test_load_initial_params_reads_the_converted_checkpoint(hf_dirs, converted):
    config = checkpoint_io.config_from_gin([os.path.join(converted["v1_1"], "model.gin")])
    import jax
    abstract = checkpointing.unflatten({k: jax.ShapeDtypeStruct(s, np.float32)
                                 for k, s in naming.param_shapes(config).items()})
    params = checkpointing.load_initial_params(converted["v1_1"], abstract)
    hf_tensors = load_file(os.path.join(hf_dirs["v1_1"], "model.safetensors"))
    np.testing.assert_array_equal(
        np.asarray(params["encoder"]["layers_1"]["attention"]["query"]["kernel"]),
        hf_tensors["encoder.block.1.layer.0.SelfAttention.q.weight"].T)
    np.testing.assert_array_equal(np.asarray(params["decoder"]["logits_dense"]["kernel"]),
                                  hf_tensors["lm_head.weight"].T)


@pytest.mark.parametrize("variant", ["v1_0", "v1_1"])
def test_hf_to_flan_jax_to_hf_round_trip_is_bit_exact(variant, hf_dirs, converted, tmp_path):
    back = tmp_path / "back"
    hf.to_hf(converted[variant], str(back))
    original = load_file(os.path.join(hf_dirs[variant], "model.safetensors"))
    written = load_file(str(back / "model.safetensors"))
    # save_pretrained may also store tied aliases of shared.weight; we write each tensor once.
    assert set(original) - set(written) <= set(naming.HF_TIED_ALIASES) | {"lm_head.weight"}
    assert set(written) <= set(original)
    for name, array in written.items():
        assert array.dtype == original[name].dtype, name
        np.testing.assert_array_equal(array, original[name], err_msg=name)
    model, info = transformers.T5ForConditionalGeneration.from_pretrained(
        str(back), output_loading_info=True)
    assert info == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [],
                    "error_msgs": []}
    assert model.config.tie_word_embeddings == (variant == "v1_0")


def test_to_hf_with_a_gin_file_that_does_not_fit_names_the_tensor(converted, tmp_path):
    with pytest.raises(ValueError,
                       match=r"encoder/layers_0/mlp/wi_0/kernel: not in the checkpoint"):
        hf.to_hf(converted["v1_0"], str(tmp_path / "x"),
                 [os.path.join(converted["v1_1"], "model.gin")])
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------------------------------
# Input formats: sharded safetensors, pytorch_model.bin, vocabulary
# ----------------------------------------------------------------------------------------

def _params_of(out_dir):
    return checkpointing.load_params(out_dir)[0]


def test_sharded_safetensors_and_weights_only_bin_give_the_same_params(converted, tmp_path):
    sharded = _save_tiny_hf(tmp_path / "sharded", "v1_1", max_shard_size="40KB")
    assert os.path.isfile(os.path.join(sharded, hf.SAFETENSORS_INDEX))
    assert len([n for n in os.listdir(sharded) if n.endswith(".safetensors")]) > 1
    pickled = _save_tiny_hf(tmp_path / "bin", "v1_1", safe_serialization=False)
    assert os.path.isfile(os.path.join(pickled, hf.TORCH_FILE))
    reference = _params_of(converted["v1_1"])
    for source in (sharded, pickled):
        hf.from_hf(source, str(tmp_path / f"{os.path.basename(source)}_out"))
        params = _params_of(str(tmp_path / f"{os.path.basename(source)}_out"))
        assert params.keys() == reference.keys()
        for name in reference:
            np.testing.assert_array_equal(params[name], reference[name], err_msg=name)


def test_spiece_model_is_copied_and_named_in_model_gin(hf_dirs, tmp_path):
    source = tmp_path / "with_vocab"
    shutil.copytree(hf_dirs["v1_1"], source)
    (source / "spiece.model").write_bytes(b"sentencepiece model bytes")
    out = tmp_path / "out"
    hf.from_hf(str(source), str(out))
    assert (out / "spiece.model").read_bytes() == b"sentencepiece model bytes"
    assert f"VOCABULARY_PATH = '{out}/spiece.model'" in (out / "model.gin").read_text()
    back = tmp_path / "back"
    hf.to_hf(str(out), str(back))
    assert (back / "spiece.model").read_bytes() == b"sentencepiece model bytes"


# ----------------------------------------------------------------------------------------
# Bad input: clear errors naming file and tensor; nothing half-written
# ----------------------------------------------------------------------------------------

def _copy_with_config(source, destination, **changes):
    shutil.copytree(source, destination)
    config = json.loads((destination / "config.json").read_text())
    config.update(changes)
    (destination / "config.json").write_text(json.dumps(config))
    return str(destination)


def _assert_nothing_written(tmp_path, out_name="out"):
    assert not (tmp_path / out_name).exists()
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_directory_without_config_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"notes is not a Hugging Face checkpoint "
                                                r"directory: it has no config.json"):
        hf.from_hf(str(tmp_path / "notes"), str(tmp_path / "out"))
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"feed_forward_proj": "gelu"}, r"config.json: feed_forward_proj='gelu' is not supported"),
    ({"model_type": "bart"}, r"config.json: model_type='bart'; only T5 encoder-decoders"),
    ({"layer_norm_epsilon": 1e-5}, r"config.json: layer_norm_epsilon=1e-05 is not supported"),
], ids=["feed_forward_proj", "model_type", "layer_norm_epsilon"])
def test_unsupported_architecture_names_the_field(hf_dirs, tmp_path, change, message):
    source = _copy_with_config(hf_dirs["v1_1"], tmp_path / "src", **change)
    with pytest.raises(ValueError, match=message):
        hf.from_hf(source, str(tmp_path / "out"))
    _assert_nothing_written(tmp_path)


def test_shape_mismatch_names_file_and_tensor(hf_dirs, tmp_path):
    source = _copy_with_config(hf_dirs["v1_1"], tmp_path / "wide", d_ff=128)
    with pytest.raises(ValueError, match=r"model.safetensors: tensor "
                                         r"'encoder.block.0.layer.1.DenseReluDense.wi_0.weight' "
                                         r"has shape \(64, 32\) but .*config.json implies "
                                         r"\(128, 32\)"):
        hf.from_hf(source, str(tmp_path / "out"))
    _assert_nothing_written(tmp_path)


def test_wrong_variant_in_config_names_the_unexpected_tensors(hf_dirs, tmp_path):
    source = _copy_with_config(hf_dirs["v1_1"], tmp_path / "relu", feed_forward_proj="relu")
    with pytest.raises(ValueError, match=r"lacks tensor\(s\).*DenseReluDense.wi.weight"):
        hf.from_hf(source, str(tmp_path / "out"))
    _assert_nothing_written(tmp_path)


def test_missing_shard_is_named(tmp_path):
    sharded = _save_tiny_hf(tmp_path / "sharded", "v1_1", max_shard_size="40KB")
    shard = sorted(n for n in os.listdir(sharded) if n.endswith(".safetensors"))[-1]
    os.remove(os.path.join(sharded, shard))
    with pytest.raises(FileNotFoundError, match=rf"model.safetensors.index.json names shard\(s\) "
                                                rf"that are missing: \['{shard}'\]"):
        hf.from_hf(sharded, str(tmp_path / "out"))
    _assert_nothing_written(tmp_path)


def test_non_empty_out_dir_is_refused_and_kept(hf_dirs, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists and is not empty"):
        hf.from_hf(hf_dirs["v1_1"], str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == ["keep.txt"]


# ----------------------------------------------------------------------------------------
# Command line and fine-tuning through the gin entry point
# ----------------------------------------------------------------------------------------

def _run(*argv, timeout=300):
    # The subprocess shares the test session's persistent compilation cache (conftest.py).
    import jax
    env = dict(os.environ, PYTHONUNBUFFERED="1",
               JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_reports_bad_input_without_a_traceback(tmp_path):
    result = _run("flan_jax.convert", "from-hf", str(tmp_path), str(tmp_path / "out"))
    assert result.returncode == 2
    assert "flan_jax.convert: error:" in result.stderr and "no config.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_finetune_from_a_converted_checkpoint_via_the_cli(hf_dirs, tmp_path, capsys):
    from flan_jax.convert import __main__ as cli
    # The convert CLI in-process (its subprocess behaviour is tested above); training through
    # the real gin entry point in a subprocess.
    out = tmp_path / "flan_t5_tiny"
    assert cli.main(["from-hf", hf_dirs["v1_1"], str(out)]) == 0
    assert "INITIAL_CHECKPOINT_PATH" in capsys.readouterr().out
    assert cli.main(["check-hf", hf_dirs["v1_1"], str(out)]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["max_abs_logits_diff"] <= PARITY_TOLERANCE

    model_dir = tmp_path / "run"
    result = _run(
        "flan_jax.train", f"--gin_file={out}/model.gin",
        "--gin_file=gin_configs/runs/finetune.gin",
        "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 8}",
        "--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=8", f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.INITIAL_CHECKPOINT_PATH='{out}'", "--gin.ACTIVATION_DTYPE='float32'")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"params from {out}" in result.stdout + result.stderr
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["2"]
    records = [json.loads(x) for x in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["step"] == 2 and np.isfinite(records[-1]["loss"])

    # The fine-tuned run directory (full TrainState) exports back to transformers.
    hf.to_hf(str(model_dir), str(tmp_path / "finetuned_hf"))
    result = hf.check_hf(str(tmp_path / "finetuned_hf"), str(model_dir))
    assert result["max_abs_logits_diff"] <= PARITY_TOLERANCE
    tuned = load_file(str(tmp_path / "finetuned_hf" / "model.safetensors"))
    original = load_file(os.path.join(hf_dirs["v1_1"], "model.safetensors"))
    assert not np.array_equal(tuned["lm_head.weight"], original["lm_head.weight"])
