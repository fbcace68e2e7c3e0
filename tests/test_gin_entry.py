"""Every gin file parses; the real `python -m flan_jax.train` entry point runs end to end."""
import glob
import json
import os
import subprocess
import sys

import gin
import jax
import pytest

from flan_jax import launch
from flan_jax.models import t5
from test_console import assert_no_banners

REPO = launch.REPO_ROOT
GIN_FILES = sorted(glob.glob(os.path.join(REPO, "gin_configs", "**", "*.gin"), recursive=True))
MODEL_FILES = [f for f in GIN_FILES if "/models/" in f]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


@pytest.mark.parametrize("path", GIN_FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_every_gin_file_parses(path):
    gin.add_config_file_search_path(REPO)
    gin.parse_config_file(path)


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: os.path.relpath(p, REPO))
def test_model_file_with_run_file_builds_a_valid_config(path):
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings(
        [path, os.path.join(REPO, "gin_configs/runs/finetune.gin")], [], finalize_config=False)
    config = gin.get_configurable(t5.T5Config)()
    assert config.vocab_size == 32128 and config.dropout_rate == 0.1
    assert config.dtype == "bfloat16"
    v10 = "/t5_1_0/" in path
    assert config.logits_via_embedding == v10
    assert config.mlp_activations == (("relu",) if v10 else ("gelu", "linear"))


def test_t5_1_1_sizes_match_the_published_models():
    expected = {  # emb, mlp, heads, layers
        "small": (512, 1024, 6, 8), "base": (768, 2048, 12, 12), "large": (1024, 2816, 16, 24),
        "xl": (2048, 5120, 32, 24), "xxl": (4096, 10240, 64, 24)}
    gin.add_config_file_search_path(REPO)
    for size, (emb, mlp, heads, layers) in expected.items():
        gin.clear_config()
        gin.parse_config_files_and_bindings(
            [os.path.join(REPO, f"gin_configs/models/t5_1_1/{size}.gin"),
             os.path.join(REPO, "gin_configs/runs/finetune.gin")], [], finalize_config=False)
        c = gin.get_configurable(t5.T5Config)()
        assert (c.emb_dim, c.mlp_dim, c.num_heads, c.num_encoder_layers,
                c.num_decoder_layers, c.head_dim) == (emb, mlp, heads, layers, layers, 64), size


def test_missing_required_macro_is_named():
    args = launch.parse_args([
        "--gin_file=gin_configs/models/t5_1_1/tiny.gin",
        "--gin_file=gin_configs/runs/finetune.gin",
        "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}",
    ], description="test")
    launch.parse_gin(args)
    with pytest.raises(ValueError, match=r"Required gin macro\(s\) not set: MODEL_DIR, "
                                         r"TRAIN_STEPS.*--gin.MODEL_DIR=\.\.\."):
        launch.check_required_macros(("MODEL_DIR", "MIXTURE_OR_TASK_NAME",
                                      "TASK_FEATURE_LENGTHS", "TRAIN_STEPS"))


def test_gin_dot_flags_become_bindings():
    args = launch.parse_args(["--gin_file=a.gin", "--gin.TRAIN_STEPS=5",
                              "--gin.MODEL_DIR='/x=y'"], description="test")
    assert args.gin_bindings == ["TRAIN_STEPS = 5", "MODEL_DIR = '/x=y'"]


def _run_entry(*flags, timeout=300):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "flan_jax.train", *flags], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_entry_point_end_to_end_on_the_mini_cpu_config(tmp_path):
    model_dir = tmp_path / "mini"
    result = _run_entry(
        "--gin_file=gin_configs/local/mini_cpu.gin", f"--gin.MODEL_DIR='{model_dir}'",
        "--gin.TRAIN_STEPS=4", "--gin.LOG_EVERY_STEPS=2", "--gin.SAVE_EVERY_STEPS=2",
        "--gin.BATCH_SIZE=8", "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_banners(result.stderr)
    # flan_jax.cpu_runtime took effect before the first computation (tests/test_cpu_runtime.py).
    # The entry point leaves the device count to XLA_FLAGS (conftest's, as in this process).
    assert (f"flan_jax: CPU runtime: inline dispatch, heap reuse; {jax.local_device_count()} "
            "CPU devices\n" in result.stderr)
    assert f"checkpoints: {model_dir}/checkpoints" in result.stdout
    assert "loss:" in result.stdout
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    for key in ("loss", "accuracy", "learning_rate", "tokens_per_s", "seconds_per_step"):
        assert all(key in r for r in records), key
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["2", "4"]
    assert glob.glob(str(model_dir / "train" / "events.out.tfevents.*"))


def test_entry_point_unknown_mixture_exits_with_a_clear_message(tmp_path):
    result = _run_entry(
        "--gin_file=gin_configs/local/mini_cpu.gin", f"--gin.MODEL_DIR='{tmp_path / 'x'}'",
        "--gin.MIXTURE_OR_TASK_NAME='mini_flan_heldout_entailmnt_train'")
    assert result.returncode == 2
    assert "Unknown mixture or task 'mini_flan_heldout_entailmnt_train'" in result.stderr
    assert "mini_flan_heldout_entailment_train" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_vocabulary_path_macro_reaches_the_vocabularies_module(tmp_path):
    from flan_jax import vocabularies
    model_file = tmp_path / "spiece.model"
    model_file.write_bytes(b"not read until first use")
    args = launch.parse_args(["--gin_file=gin_configs/local/mini_cpu.gin",
                              f"--gin.VOCABULARY_PATH='{model_file}'"], description="test")
    try:
        launch.parse_gin(args)
        assert vocabularies.vocabulary_path() == str(model_file)
    finally:
        vocabularies.set_vocabulary_path(None)
