"""The prompt-tuning and LoRA gin files, and the real entry points running them."""
import os
import subprocess
import sys

import gin
import pytest

from flan_jax import launch, optim, train
from flan_jax.models import t5

REPO = launch.REPO_ROOT


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _parse(*files):
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings([os.path.join(REPO, f) for f in files], [],
                                        finalize_config=False)


def test_run_files_set_t5x_prompt_tuning_defaults_and_lora():
    _parse("gin_configs/models/t5_1_1/base.gin", "gin_configs/runs/prompt_tune.gin")
    config = gin.get_configurable(t5.T5Config)()
    assert config.prompt_length == 100 and config.lora_rank == 0
    assert gin.query_parameter("%PACK_EXAMPLES") is False
    assert gin.query_parameter("%LEARNING_RATE") == 0.3
    assert "REQUIRED" in repr(gin.query_parameter("%INITIAL_CHECKPOINT_PATH"))

    gin.clear_config()
    _parse("gin_configs/models/t5_1_1/base.gin", "gin_configs/runs/lora.gin")
    config = gin.get_configurable(t5.T5Config)()
    assert (config.lora_rank, config.lora_scale, config.prompt_length) == (8, 1.0, 0)
    assert config.lora_targets == ("query", "key", "value", "out")
    assert gin.get_configurable(optim.OptimizerConfig)().multiply_by_parameter_scale is False


def _run(module, *flags, timeout=400):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_mini_prompt_and_lora_configs_train_through_the_entry_point(tmp_path):
    """`make run`'s config (shortened) as the base; mini_cpu_prompt.gin on top, then
    flan_jax.eval loads base + prompt; mini_cpu_lora.gin on the same base."""
    base, run = tmp_path / "base", tmp_path / "prompt"
    short = ("--gin.TRAIN_STEPS=2", "--gin.BATCH_SIZE=8",
             "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 32}")
    result = _run("flan_jax.train", "--gin_file=gin_configs/local/mini_cpu.gin",
                  f"--gin.MODEL_DIR='{base}'", *short)
    assert result.returncode == 0, result.stderr[-3000:]
    result = _run("flan_jax.train", "--gin_file=gin_configs/local/mini_cpu_prompt.gin",
                  f"--gin.MODEL_DIR='{run}'", f"--gin.INITIAL_CHECKPOINT_PATH='{base}'", *short)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained steps 0..2" in result.stdout
    # The held-out cluster's scoring mixture: rank classification only, so the launch
    # compiles no generation step (the suite's slowest file otherwise).
    result = _run("flan_jax.eval", "--gin_file=gin_configs/local/mini_cpu_eval.gin",
                  f"--gin.CHECKPOINT_PATH='{run}'", f"--gin.EVAL_OUTPUT_DIR='{run}/eval'",
                  "--gin.MIXTURE_OR_TASK_NAME='mini_flan_heldout_entailment_scoring_eval'",
                  "--gin.NUM_EVAL_EXAMPLES=4", "--gin.t5.T5Config.prompt_length=20")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| entailment |" in result.stdout
    result = _run("flan_jax.train", "--gin_file=gin_configs/local/mini_cpu_lora.gin",
                  f"--gin.MODEL_DIR='{tmp_path / 'lora'}'",
                  f"--gin.INITIAL_CHECKPOINT_PATH='{base}'", *short)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "trained steps 0..2" in result.stdout
