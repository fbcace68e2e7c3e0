"""Each bad launch gives one clear error before any training step, and writes nothing."""
import os

import gin
import pytest

import tiny
from flan_jax import checkpointing, data, launch, train

MINI = "--gin_file=gin_configs/local/mini_cpu.gin"


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def _bad_launch(entry, argv, capsys) -> str:
    """Runs `entry.main(argv)` as `python -m` does; returns stderr of its exit with code 2."""
    gin.clear_config()
    with pytest.raises(SystemExit) as stop:
        launch.exit_on_user_error(lambda: entry.main(argv), entry.__name__)
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert "Traceback" not in err
    return err


def _assert_nothing_written(model_dir):
    assert not os.path.exists(model_dir), os.listdir(model_dir)


# The data configs validate themselves (DatasetConfig.__post_init__): gin builds them before
# train() runs, so a bad name or length stops the launch before anything is written.
def test_unknown_mixture_lists_the_closest_names(tmp_path):
    kwargs = tiny.train_kwargs(tmp_path / "run")
    with pytest.raises(ValueError, match=r"Unknown mixture or task 'flan_jax_test_revrse'.*"
                                         r"Closest registered names: flan_jax_test_reverse"):
        kwargs["train_dataset"] = data.DatasetConfig("flan_jax_test_revrse",
                                                     tiny.FEATURE_LENGTHS)
        train.train(**kwargs)
    _assert_nothing_written(tmp_path / "run")


def test_batch_size_not_divisible_by_the_data_axis(tmp_path):
    with pytest.raises(ValueError, match=r"BATCH_SIZE=6 cannot be split evenly.*multiple of 4"):
        train.train(**tiny.train_kwargs(tmp_path / "run", batch_size=6, num_partitions=2))
    _assert_nothing_written(tmp_path / "run")


def test_num_partitions_must_divide_devices(tmp_path):
    with pytest.raises(ValueError, match="num_partitions=3 does not divide the 8"):
        train.train(**tiny.train_kwargs(tmp_path / "run", num_partitions=3))
    _assert_nothing_written(tmp_path / "run")


def test_feature_length_key_the_task_lacks(tmp_path):
    kwargs = tiny.train_kwargs(tmp_path / "run")
    with pytest.raises(ValueError, match=r"TASK_FEATURE_LENGTHS has \['answers'\]"):
        kwargs["train_dataset"] = data.DatasetConfig(
            tiny.TEST_TASK, {"inputs": 32, "targets": 32, "answers": 8})
        train.train(**kwargs)
    _assert_nothing_written(tmp_path / "run")


def test_vocabulary_larger_than_the_model(tmp_path):
    kwargs = tiny.train_kwargs(tmp_path / "run", model_config=tiny.model_config(vocab_size=128))
    with pytest.raises(ValueError, match="vocabulary of 259 ids but the model's vocab_size is 128"):
        train.train(**kwargs)


def test_model_dir_of_a_different_model_shape(tmp_path):
    model_dir = tmp_path / "run"
    train.train(**tiny.train_kwargs(model_dir, steps=2))
    step_dir = model_dir / "checkpoints" / "2"
    before = sorted((str(p), p.stat().st_mtime_ns) for p in step_dir.rglob("*"))
    bigger = tiny.train_kwargs(model_dir, steps=4, model_config=tiny.model_config(emb_dim=64))
    with pytest.raises(checkpointing.ShapeMismatchError,
                       match=r"different shape.*decoder/decoder_norm/scale: checkpoint \(32,\) "
                             r"vs model \(64,\).*Nothing was changed on disk"):
        train.train(**bigger)
    after = sorted((str(p), p.stat().st_mtime_ns) for p in step_dir.rglob("*"))
    assert before == after
    assert checkpointing.Checkpointer(str(model_dir)).all_steps() == [2]


def test_params_only_checkpoint_as_model_dir_points_to_initial_checkpoint_path(tmp_path):
    import jax
    import flax.linen as nn
    import orbax.checkpoint as ocp
    from flan_jax import trainer
    from flan_jax.models import t5

    model = t5.Transformer(tiny.model_config())
    params = nn.unbox(trainer._init_params(model, jax.random.PRNGKey(0)))
    converted = tmp_path / "converted"
    manager = ocp.CheckpointManager(str(converted / "checkpoints"))
    manager.save(0, args=ocp.args.Composite(state=ocp.args.StandardSave({"params": params})))
    manager.wait_until_finished()
    with pytest.raises(ValueError, match="holds params only.*INITIAL_CHECKPOINT_PATH"):
        train.train(**tiny.train_kwargs(converted, steps=2))
    assert sorted(os.listdir(converted / "checkpoints")) == ["0"]


# ---------------------------------------------------------------------- gin macros on the command line

def test_mistyped_macro_names_the_closest_known_one(tmp_path, capsys, clean_gin):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                              "--gin.LERNING_RATE=0.1"], capsys)
    assert "Unknown gin macro(s): LERNING_RATE (did you mean LEARNING_RATE?)" in err
    _assert_nothing_written(tmp_path / "run")


def test_reference_to_an_unbound_macro_is_unknown(tmp_path, capsys, clean_gin):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                              "--gin.TRAIN_STEPS=%TRAIN_STEP"], capsys)
    assert "Unknown gin macro(s): TRAIN_STEP (did you mean TRAIN_STEPS?)" in err
    _assert_nothing_written(tmp_path / "run")


def test_macro_declared_by_a_binding_that_reads_it_is_accepted(clean_gin):
    args = launch.parse_args([MINI, "--gin.MY_RATE=0.01",
                              "--gin_bindings=optim.OptimizerConfig.learning_rate = %MY_RATE"],
                             "test")
    launch.parse_gin(args)
    assert gin.query_parameter("optim.OptimizerConfig.learning_rate") is not None


def test_string_without_inner_quotes_explains_the_quoting(tmp_path, capsys, clean_gin):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR={tmp_path / 'run'}"], capsys)
    assert "gin cannot parse a command-line binding" in err
    assert "strings need inner quotes" in err
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.parametrize("flag, expected", [
    ("--gin.LEARNING_RATE='0.1'", "LEARNING_RATE = '0.1' is not a number"),
    ("--gin.TRAIN_STEPS='100'", "TRAIN_STEPS = '100' is not an integer"),
    ("--gin.BATCH_SIZE=16.0", "BATCH_SIZE = 16.0 is not an integer"),
    ("--gin.PACK_EXAMPLES=1", "PACK_EXAMPLES = 1 is not True or False"),
    ("--gin.TASK_FEATURE_LENGTHS=256", "TASK_FEATURE_LENGTHS = 256 is not a dict"),
    ("--gin.ACTIVATION_DTYPE=32", "ACTIVATION_DTYPE = 32 is not a string"),
])
def test_macro_of_the_wrong_type_names_the_expected_one(tmp_path, capsys, clean_gin, flag,
                                                        expected):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'run'}'", flag], capsys)
    assert expected in err
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.parametrize("value", ["233472", "None", "'AVERAGE_PER_SEQUENCE'"])
def test_loss_normalizing_factor_takes_every_kind_t5x_gives_it(clean_gin, value):
    launch.parse_gin(launch.parse_args(
        [MINI, f"--gin.LOSS_NORMALIZING_FACTOR={value}"], "test"))
    assert gin.query_parameter("%LOSS_NORMALIZING_FACTOR") == eval(value)


def test_an_int_for_a_float_macro_and_none_for_an_optional_one_are_accepted(clean_gin):
    args = launch.parse_args([MINI, "--gin.LEARNING_RATE=1", "--gin.KEEP_CHECKPOINTS=None"],
                             "test")
    launch.parse_gin(args)
    assert gin.query_parameter("%LEARNING_RATE") == 1
    assert gin.query_parameter("%KEEP_CHECKPOINTS") is None


# ---------------------------------------------------------------------- hostile values, per entry point
# Each case: exit code 2, one message naming the setting and the fix, nothing written.

TINY_RUN = ["--gin_file=gin_configs/models/t5_1_1/tiny.gin",
            "--gin_file=gin_configs/runs/finetune.gin",
            "--gin.MIXTURE_OR_TASK_NAME='mini_addition_10templates'",
            "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 16}", "--gin.TRAIN_STEPS=2"]
# /sys refuses new entries even to root (who ignores mode bits), so this is never writable.
UNWRITABLE = "/sys/flan_jax_run"


def _tree(path):
    return sorted((str(p), p.stat().st_mtime_ns) for p in path.rglob("*"))


def test_train_model_dir_that_is_a_file(tmp_path, capsys, clean_gin):
    model_dir = tmp_path / "run"
    model_dir.write_text("my notes")
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{model_dir}'"], capsys)
    assert f"MODEL_DIR='{model_dir}' is an existing file, not a directory" in err
    assert model_dir.read_text() == "my notes"


def test_train_model_dir_below_a_file(tmp_path, capsys, clean_gin):
    (tmp_path / "notes").write_text("x")
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'notes' / 'run'}'"], capsys)
    assert f"cannot be created: '{tmp_path / 'notes'}' above it is a file" in err
    assert sorted(os.listdir(tmp_path)) == ["notes"]


def test_train_model_dir_not_writable(capsys, clean_gin):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{UNWRITABLE}'"], capsys)
    assert f"MODEL_DIR='{UNWRITABLE}' cannot be written: '/sys' is not writable" in err


@pytest.mark.parametrize("value", ["5", "''"])
def test_train_model_dir_not_a_path(value, capsys, clean_gin):
    err = _bad_launch(train, [*TINY_RUN, f"--gin.MODEL_DIR={value}"], capsys)
    assert f"MODEL_DIR={eval(value)!r} is not a path: give a non-empty string" in err


def test_train_steps_given_as_a_string(tmp_path, capsys, clean_gin):
    err = _bad_launch(train, [*TINY_RUN, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                              "--gin.TRAIN_STEPS='100'"], capsys)
    assert "TRAIN_STEPS must be a positive integer, got '100'" in err
    _assert_nothing_written(tmp_path / "run")


def test_task_feature_lengths_not_a_dict(tmp_path, capsys, clean_gin):
    err = _bad_launch(train, [*TINY_RUN, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                              "--gin.TASK_FEATURE_LENGTHS=256"], capsys)
    assert "TASK_FEATURE_LENGTHS=256 must be a dict of feature name -> length" in err
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.parametrize("path_kind", ["missing", "file"])
def test_train_initial_checkpoint_path_without_a_checkpoint(tmp_path, capsys, clean_gin,
                                                            path_kind):
    initial = tmp_path / "init"
    if path_kind == "file":
        initial.write_text("x")
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
                              f"--gin.INITIAL_CHECKPOINT_PATH='{initial}'"], capsys)
    assert f"INITIAL_CHECKPOINT_PATH='{initial}' holds no flan_jax checkpoint" in err
    _assert_nothing_written(tmp_path / "run")


@pytest.mark.parametrize("flag, expected", [
    ("--gin.LEARNING_RATE_SCHEDULE='cosine'", "cosine"),
    ("--gin.ACTIVATION_DTYPE='float8'", "T5Config.dtype must be one of"),
    ("--gin.REMAT_POLICY='some'", "T5Config.remat_policy must be 'none', 'full' or 'dots'"),
    ("--gin.EVAL_MIXTURE_OR_TASK_NAME='mini_flan_heldout_entailment_scoring_evl'",
     "Closest registered names: mini_flan_heldout_entailment_scoring_eval"),
])
def test_train_unknown_names(tmp_path, capsys, clean_gin, flag, expected):
    err = _bad_launch(train, [MINI, f"--gin.MODEL_DIR='{tmp_path / 'run'}'", flag], capsys)
    assert expected in err
    _assert_nothing_written(tmp_path / "run")


EVAL = ["--gin_file=gin_configs/local/mini_cpu_eval.gin"]


def test_eval_output_dir_that_is_a_file(tmp_path, capsys, clean_gin):
    from flan_jax import eval as eval_entry
    out = tmp_path / "eval"
    out.write_text("results of last week")
    err = _bad_launch(eval_entry, [*EVAL, f"--gin.CHECKPOINT_PATH='{tmp_path}'",
                                   f"--gin.EVAL_OUTPUT_DIR='{out}'"], capsys)
    assert f"EVAL_OUTPUT_DIR='{out}' is an existing file, not a directory" in err
    assert out.read_text() == "results of last week"


def test_eval_output_dir_not_writable(tmp_path, capsys, clean_gin):
    from flan_jax import eval as eval_entry
    err = _bad_launch(eval_entry, [*EVAL, f"--gin.CHECKPOINT_PATH='{tmp_path}'",
                                   f"--gin.EVAL_OUTPUT_DIR='{UNWRITABLE}'"], capsys)
    assert f"EVAL_OUTPUT_DIR='{UNWRITABLE}' cannot be written" in err


@pytest.mark.parametrize("path_kind", ["missing", "file", "empty dir"])
def test_eval_checkpoint_path_without_a_checkpoint(tmp_path, capsys, clean_gin, path_kind):
    from flan_jax import eval as eval_entry
    checkpoint = tmp_path / "ckpt"
    if path_kind == "file":
        checkpoint.write_text("x")
    elif path_kind == "empty dir":
        checkpoint.mkdir()
    err = _bad_launch(eval_entry, [*EVAL, f"--gin.CHECKPOINT_PATH='{checkpoint}'",
                                   f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'"], capsys)
    assert f"CHECKPOINT_PATH='{checkpoint}' holds no flan_jax checkpoint" in err
    _assert_nothing_written(tmp_path / "eval")


def test_eval_split_the_tasks_lack(tmp_path, capsys, clean_gin):
    from flan_jax import eval as eval_entry
    err = _bad_launch(eval_entry, [*EVAL, f"--gin.CHECKPOINT_PATH='{tmp_path}'",
                                   f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'",
                                   "--gin.EVAL_SPLIT='tset'"], capsys)
    assert "has no 'tset' split to evaluate on (its tasks have ['test', 'train', " in err
    _assert_nothing_written(tmp_path / "eval")


INFER = ["--gin_file=gin_configs/local/mini_cpu_infer.gin"]


def _infer_args(tmp_path, input_file, output_file=None, *flags):
    output_file = output_file or tmp_path / "out.jsonl"
    return [*INFER, f"--gin.CHECKPOINT_PATH='{tmp_path / 'no_checkpoint'}'",
            f"--gin.INPUT_FILE='{input_file}'", f"--gin.OUTPUT_FILE='{output_file}'", *flags]


@pytest.mark.parametrize("content, expected", [
    (None, "does not exist"),
    ("dir", "is a directory; give a file"),
    (b"", "holds no prompts"),
    (b"\n  \n", "holds no prompts"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "is not UTF-8 text (byte 0 is b'\\x89')"),
    (b"abc\x00\x00\x01", "holds NUL bytes, so it is a binary file"),
    (b'{"inputs": 5}\n', "line 1: a JSONL record needs a string \"inputs\" field"),
])
def test_infer_input_file_that_holds_no_prompts(tmp_path, capsys, clean_gin, content, expected):
    from flan_jax import infer
    prompts = tmp_path / "prompts.jsonl"
    if content == "dir":
        prompts.mkdir()
    elif content is not None:
        prompts.write_bytes(content)
    err = _bad_launch(infer, _infer_args(tmp_path, prompts), capsys)
    assert "INPUT_FILE" in err and expected in err
    assert not (tmp_path / "out.jsonl").exists()


def test_infer_output_file_problems(tmp_path, capsys, clean_gin):
    from flan_jax import infer
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Translate to German: the cat\n")
    err = _bad_launch(infer, _infer_args(tmp_path, prompts, tmp_path), capsys)
    assert f"OUTPUT_FILE='{tmp_path}' is a directory" in err
    err = _bad_launch(infer, _infer_args(tmp_path, prompts, tmp_path / "no" / "o.jsonl"), capsys)
    assert f"the directory '{tmp_path / 'no'}' does not exist" in err
    err = _bad_launch(infer, _infer_args(tmp_path, prompts, prompts), capsys)
    assert "is INPUT_FILE: writing the predictions would overwrite the prompts" in err
    assert prompts.read_text() == "Translate to German: the cat\n"
    err = _bad_launch(infer, _infer_args(tmp_path, prompts, "/sys/out.jsonl"), capsys)
    assert "OUTPUT_FILE='/sys/out.jsonl' cannot be written" in err
    assert sorted(os.listdir(tmp_path)) == ["prompts.txt"]


@pytest.mark.parametrize("flags, expected", [
    (["--gin.VOCABULARY='/no/spiece.model'"],
     "VOCABULARY='/no/spiece.model' is neither 'byte', None nor an existing SentencePiece"),
    (["--gin.INPUT_LENGTH=1"], "INPUT_LENGTH=1 leaves no room for a prompt and EOS"),
    ([], "CHECKPOINT_PATH='{no_checkpoint}' holds no flan_jax checkpoint"),
])
def test_infer_bad_settings(tmp_path, capsys, clean_gin, flags, expected):
    from flan_jax import infer
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("hello\n")
    err = _bad_launch(infer, _infer_args(tmp_path, prompts, None, *flags), capsys)
    assert expected.format(no_checkpoint=tmp_path / "no_checkpoint") in err
    assert not (tmp_path / "out.jsonl").exists()


# ---------------------------------------------------------------------- convert and the tools

def _convert(argv):
    from flan_jax.convert import __main__ as cli
    return cli.main(argv)


@pytest.mark.parametrize("argv, error, expected", [
    (["from-hf", "{tmp}/missing", "{tmp}/out"], FileNotFoundError,
     "HF_DIR='{tmp}/missing' does not exist"),
    (["from-hf", "{tmp}/file", "{tmp}/out"], ValueError, "HF_DIR='{tmp}/file' is a file"),
    (["from-hf", "{tmp}", "{tmp}/file"], ValueError,
     "OUT_DIR='{tmp}/file' is an existing file, not a directory"),
    (["from-hf", "{tmp}", "/sys/flan_jax_out"], ValueError,
     "OUT_DIR='/sys/flan_jax_out' cannot be written"),
    (["to-hf", "{tmp}/missing", "{tmp}/out"], FileNotFoundError,
     "CHECKPOINT='{tmp}/missing' does not exist"),
    (["to-hf", "{tmp}", "{tmp}/out", "--gin_file={tmp}/model.gin"], FileNotFoundError,
     "--gin_file='{tmp}/model.gin' does not exist"),
    (["from-t5x", "{tmp}/checkpoint_100", "{tmp}/out"], FileNotFoundError,
     "T5X_CHECKPOINT='{tmp}/checkpoint_100' does not exist. Give a T5X checkpoint_<step>"),
    (["from-t5x", "{tmp}", "{tmp}/out", "--vocabulary={tmp}"], ValueError,
     "--vocabulary='{tmp}' is a directory; give a file"),
    (["check-hf", "{tmp}", "{tmp}/missing"], FileNotFoundError,
     "CHECKPOINT='{tmp}/missing' does not exist"),
])
def test_convert_paths_are_checked_before_converting(tmp_path, argv, error, expected):
    (tmp_path / "file").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(error) as raised:
        _convert([a.format(tmp=tmp_path) for a in argv])
    assert expected.format(tmp=tmp_path) in str(raised.value)
    assert _tree(tmp_path) == before


def test_convert_wrong_type_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _convert(["from-t5x", str(tmp_path), str(tmp_path / "out"), "--scan_axis=one"])
    assert stop.value.code == 2
    assert "argument --scan_axis: invalid int value: 'one'" in capsys.readouterr().err


def _tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(launch.REPO_ROOT, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, expected", [
    (["mini_flan_heldout_entailment_trian"],
     "Unknown mixture or task 'mini_flan_heldout_entailment_trian'. Closest registered names: "
     "mini_flan_heldout_entailment_train"),
    (["mini_nli_10templates", "--split=tset"], "'mini_nli_10templates' has no 'tset' split; its tasks have"),
    (["mini_nli_10templates", "-n", "0"], "--num_examples=0: give a positive number"),
    (["mini_nli_10templates", "-n", "three"], "argument -n/--num_examples: invalid int value: 'three'"),
    (["mini_nli_10templates", "--data_dir=/no/such/tfds"], "--data_dir='/no/such/tfds' does not exist"),
])
def test_show_task_bad_arguments(argv, expected, capsys):
    show_task = _tool("show_task")
    with pytest.raises(SystemExit) as stop:
        show_task.main(argv)
    captured = capsys.readouterr()
    assert stop.value.code == 2
    assert expected in captured.err and "Traceback" not in captured.err
    assert "===" not in captured.out  # no example printed


@pytest.mark.parametrize("argv, expected", [
    (["--datasets=rte,glue/mnlii", "--data_dir={tmp}/tfds"],
     "--datasets names unknown dataset(s): 'glue/mnlii'"),
    (["--datasets=super_gleu/rte", "--list"],
     "'super_gleu/rte' (did you mean 'super_glue/rte'?)"),
    (["--datasets=rte", "--data_dir={tmp}/file"],
     "--data_dir='{tmp}/file' is an existing file, not a directory"),
    (["--datasets=rte", "--data_dir={tmp}/tfds", "--manual_dir={tmp}/manual"],
     "--manual_dir='{tmp}/manual' does not exist"),
])
def test_prepare_data_bad_arguments(tmp_path, argv, expected, capsys):
    prepare_data = _tool("prepare_data")
    (tmp_path / "file").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(SystemExit) as stop:
        prepare_data.main([a.format(tmp=tmp_path) for a in argv])
    captured = capsys.readouterr()
    assert stop.value.code == 2
    assert expected.format(tmp=tmp_path) in captured.err
    assert captured.out == ""  # nothing listed, nothing downloaded
    assert _tree(tmp_path) == before


# ---------------------------------------------------------------------- the real `python -m` exit code

def _python(*argv):
    import subprocess
    import sys
    return subprocess.run([sys.executable, *argv], cwd=launch.REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_entry_points_exit_with_code_2_and_no_traceback(tmp_path):
    model_dir = tmp_path / "run"
    model_dir.write_text("x")
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(b"\xff\xfe\x00binary")
    results = [
        _python("-m", "flan_jax.train", MINI, f"--gin.MODEL_DIR='{model_dir}'",
                "--gin.LERNING_RATE=0.1"),
        _python("-m", "flan_jax.infer", *_infer_args(tmp_path, prompts)),
        _python("tools/show_task.py", "mini_nli_10templates", "--split=tset"),
    ]
    for result, expected in zip(results, ["Unknown gin macro(s): LERNING_RATE",
                                          "is not UTF-8 text", "has no 'tset' split"]):
        assert result.returncode == 2, result.stderr[-2000:]
        assert expected in result.stderr and "Traceback" not in result.stderr
    assert model_dir.read_text() == "x"
    assert sorted(os.listdir(tmp_path)) == ["prompts.txt", "run"]


@pytest.mark.parametrize("value, expected", [
    ("['entailmnt']", "HELDOUT_CLUSTERS names ['entailmnt'], which EVAL_CLUSTERS does not "
                      "define; its clusters are ['arithmetic', 'entailment',"),
    ("'entailment'", "HELDOUT_CLUSTERS = 'entailment' is not a list or tuple"),
])
def test_eval_held_out_clusters_that_eval_clusters_lack(tmp_path, capsys, clean_gin, value,
                                                        expected):
    from flan_jax import eval as eval_entry
    err = _bad_launch(eval_entry, [*EVAL, f"--gin.CHECKPOINT_PATH='{tmp_path}'",
                                   f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'",
                                   f"--gin.HELDOUT_CLUSTERS={value}"], capsys)
    assert expected in err
    _assert_nothing_written(tmp_path / "eval")


# ---------------------------------------------------------------------- validated once, by the owner

def test_data_configs_validate_themselves_once(monkeypatch, tmp_path):
    """DatasetConfig / EvalConfig check names, splits and lengths when built; train() and the
    BatchIterator trust a built config and do not look the checks up again."""
    import tasks  # noqa: F401  (registers mini-FLAN, so the file passes when run alone)
    from flan_jax import evaluation
    with pytest.raises(ValueError, match="RANDOM_SEED is None"):
        data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, seed=None)
    with pytest.raises(ValueError, match="MIXTURE_OR_TASK_NAME=5 is not a task or mixture"):
        data.DatasetConfig(5, tiny.FEATURE_LENGTHS)
    with pytest.raises(ValueError, match="TASK_FEATURE_LENGTHS lacks \\['targets'\\]"):
        evaluation.EvalConfig("mini_flan_heldout_entailment_scoring_eval", {"inputs": 64})
    config = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS)
    calls = []
    for name in ("check_feature_lengths", "get_mixture_or_task"):
        monkeypatch.setattr(data, name, lambda *a, _n=name, **k: calls.append(_n))
    monkeypatch.setattr(evaluation, "eval_tasks", lambda *a, **k: calls.append("eval_tasks"))
    batches = data.BatchIterator(config)
    assert set(next(batches)) >= {"encoder_input_tokens", "decoder_target_tokens"}
    assert calls == []
