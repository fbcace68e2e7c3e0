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


def test_unknown_mixture_lists_the_closest_names(tmp_path):
    kwargs = tiny.train_kwargs(tmp_path / "run")
    kwargs["train_dataset"] = data.DatasetConfig("flan_jax_test_revrse", tiny.FEATURE_LENGTHS)
    with pytest.raises(ValueError, match=r"Unknown mixture or task 'flan_jax_test_revrse'.*"
                                         r"Closest registered names: flan_jax_test_reverse"):
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
    kwargs["train_dataset"] = data.DatasetConfig(
        tiny.TEST_TASK, {"inputs": 32, "targets": 32, "answers": 8})
    with pytest.raises(ValueError, match=r"TASK_FEATURE_LENGTHS has \['answers'\]"):
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


def test_an_int_for_a_float_macro_and_none_for_an_optional_one_are_accepted(clean_gin):
    args = launch.parse_args([MINI, "--gin.LEARNING_RATE=1", "--gin.KEEP_CHECKPOINTS=None"],
                             "test")
    launch.parse_gin(args)
    assert gin.query_parameter("%LEARNING_RATE") == 1
    assert gin.query_parameter("%KEEP_CHECKPOINTS") is None
