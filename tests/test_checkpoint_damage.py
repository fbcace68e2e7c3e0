"""Damaged checkpoints: the newest step that restores is used, the damaged one is kept.

Each damage case is made the way it happens (a torn copy, a full disk, a partial rsync) on a
copy of a run with checkpoints at steps 2 and 4, damaging step 4:
  tensor:   the largest array data file that step 4's state reads (OCDBT state/d/*) cut in half
  metadata: state/_METADATA cut to 100 bytes (the issue's "Expecting value: line 1 column 101")
  data:     the data item (the data iterator position) deleted
  pipeline: the process's saved tf.data iterator state (data/process_0-of-1/) cut in half
"""
import glob
import logging
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import tiny
from flan_jax import checkpointing, partitioning, train
from flan_jax.models import t5

DAMAGE_CASES = ("tensor", "metadata", "data", "pipeline")


def _largest_data_file(step_dir) -> str:
    # The manifest's data files. The per-process database (state/ocdbt.process_0/) is merged
    # into these at the end of a save and is not read by a restore.
    return max(glob.glob(os.path.join(str(step_dir), "state", "d", "*")), key=os.path.getsize)


def damage(step_dir, case: str) -> None:
    if case == "tensor":
        path = _largest_data_file(step_dir)
        os.truncate(path, os.path.getsize(path) // 2)
    elif case == "metadata":
        os.truncate(os.path.join(str(step_dir), "state", "_METADATA"), 100)
    elif case == "data":
        shutil.rmtree(os.path.join(str(step_dir), "data"))
    elif case == "pipeline":
        path = os.path.join(str(step_dir), "data", "process_0-of-1",
                            "pipeline.data-00000-of-00001")
        os.truncate(path, os.path.getsize(path) // 2)
    else:
        raise ValueError(case)


def _listing(directory) -> list[tuple[str, int]]:
    """(relative path, size) of every file: enough to see that nothing was touched."""
    return sorted((os.path.relpath(p, directory), os.path.getsize(p))
                  for p in glob.glob(os.path.join(str(directory), "**"), recursive=True)
                  if os.path.isfile(p))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(a run with checkpoints 2 and 4, a 6-step run never interrupted)."""
    base = tmp_path_factory.mktemp("damage")
    train.train(**tiny.train_kwargs(base / "run", steps=4, save_every=2))
    train.train(**tiny.train_kwargs(base / "straight", steps=6, save_every=6))
    return base / "run", base / "straight"


def _damaged_copy(runs, tmp_path, case, steps=(4,)):
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    for step in steps:
        damage(run / "checkpoints" / str(step), case)
    return run


@pytest.mark.parametrize("case", DAMAGE_CASES)
def test_training_resumes_from_the_newest_checkpoint_that_restores(runs, tmp_path, case,
                                                                    caplog):
    run = _damaged_copy(runs, tmp_path, case)
    damaged_files = _listing(run / "checkpoints" / "4")
    kwargs = tiny.train_kwargs(run, steps=6)
    # keep=2: retention runs (and deletes step 2) while the damaged directory stays.
    kwargs["checkpoint"] = checkpointing.CheckpointConfig(save_every_steps=2, keep=2)
    with caplog.at_level(logging.WARNING):
        summary = train.train(**kwargs)

    assert summary.start_step == 2 and summary.final_step == 6
    checkpoints = run / "checkpoints"
    assert sorted(os.listdir(checkpoints)) == ["4", "4.damaged", "6"]
    assert _listing(checkpoints / "4.damaged") == damaged_files  # kept, untouched
    assert f"checkpoint {checkpoints}/4 cannot be read" in caplog.text
    assert "Resumed from step 2" in caplog.text and "4.damaged" in caplog.text
    # Resuming from step 2 gives exactly the uninterrupted run.
    resumed, _ = checkpointing.load_params(str(checkpoints / "6"))
    straight, _ = checkpointing.load_params(str(runs[1]))
    assert sorted(resumed) == sorted(straight)
    for name in straight:
        np.testing.assert_array_equal(resumed[name], straight[name], err_msg=name)


def test_nothing_restores_stops_naming_every_step_and_moves_nothing(runs, tmp_path):
    run = _damaged_copy(runs, tmp_path, "metadata", steps=(2, 4))
    before = _listing(run)
    with pytest.raises(checkpointing.DamagedCheckpointError,
                       match=r"No checkpoint in .*/checkpoints restores \(step\(s\) 4, 2, all "
                             r"damaged: checkpoint .*/4 cannot be read .*checkpoint .*/2 cannot "
                             r"be read .*Nothing was changed on disk"):
        train.train(**tiny.train_kwargs(run, steps=6))
    assert _listing(run) == before


@pytest.mark.parametrize("case", ["tensor", "metadata"])
def test_params_readers_fall_back_and_leave_the_run_as_it_is(runs, tmp_path, case):
    """eval and infer (restore_params) and convert (load_params) read the params only."""
    run = _damaged_copy(runs, tmp_path, case)
    before = _listing(run)
    mesh = partitioning.create_mesh(1)
    restored = checkpointing.restore_params(str(run), t5.Transformer(tiny.model_config()),
                                            mesh, partitioning.logical_axis_rules())
    assert restored.step == 2
    params, where = checkpointing.load_params(str(run))
    assert where == f"{run}/checkpoints/2"
    expected, _ = checkpointing.load_params(str(runs[0] / "checkpoints" / "2"))
    for name, array in checkpointing.flatten(restored.params).items():
        np.testing.assert_array_equal(np.asarray(array), expected[name], err_msg=name)
        np.testing.assert_array_equal(params[name], expected[name], err_msg=name)
    assert _listing(run) == before  # readers never move anything
    # A step directory named explicitly is read or refused, never swapped for another step.
    with pytest.raises(checkpointing.DamagedCheckpointError,
                       match=rf"No checkpoint in {run}/checkpoints restores \(step\(s\) 4,"):
        checkpointing.load_params(str(run / "checkpoints" / "4"))


def test_params_readers_do_not_need_the_data_item(runs, tmp_path):
    # Evaluation reads params only: a step whose data position is lost still evaluates.
    run = _damaged_copy(runs, tmp_path, "data")
    assert checkpointing.load_params(str(run))[1] == f"{run}/checkpoints/4"


def test_convert_cli_exits_2_naming_the_damaged_steps(runs, tmp_path):
    run = _damaged_copy(runs, tmp_path, "tensor", steps=(2, 4))
    result = subprocess.run(
        [sys.executable, "-m", "flan_jax.convert", "to-hf", str(run), str(tmp_path / "hf")],
        capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.returncode == 2, result.stderr
    assert "No checkpoint in" in result.stderr and "step(s) 4, 2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "hf").exists()


def test_an_entry_point_exits_2_when_no_checkpoint_restores(runs, tmp_path, capsys):
    from flan_jax import launch
    run = _damaged_copy(runs, tmp_path, "data", steps=(2, 4))

    def main():
        train.train(**tiny.train_kwargs(run, steps=6))

    with pytest.raises(SystemExit) as exit_info:
        launch.exit_on_user_error(main, "flan_jax.train")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "flan_jax.train: error: No checkpoint in" in err and "'data' item" in err
    assert "Traceback" not in err


def test_a_failed_restore_does_not_print_closed_event_loop_tracebacks(runs, tmp_path,
                                                                      monkeypatch):
    # After a failed array read, TensorStore finishes the reads in flight and calls back into
    # the event loop Orbax has closed; each RuntimeError arrives at sys.unraisablehook (about
    # half of the runs printed hundreds of traceback lines before the filter).
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    run = _damaged_copy(runs, tmp_path, "tensor", steps=(2, 4))
    with pytest.raises(checkpointing.DamagedCheckpointError):
        checkpointing.load_params(str(run))

    def unraisable(error):
        return types.SimpleNamespace(exc_type=type(error), exc_value=error, exc_traceback=None,
                                     err_msg=None, object=None)

    # Reports that arrived before the failure installed the filter (e.g. late reads of an
    # earlier test's failed restore) are not this check's business: from now on, the closed
    # event loop's echo is dropped and everything else still reaches the previous hook.
    before = len(reported)
    sys.unraisablehook(unraisable(RuntimeError("Event loop is closed")))
    other = unraisable(RuntimeError("something else"))
    sys.unraisablehook(other)
    assert reported[before:] == [other]


def test_a_cut_file_that_no_restore_reads_is_not_damage(runs, tmp_path):
    # Why the restore is the check (see flan_jax/checkpointing.py): after a save, Orbax has
    # merged the per-process OCDBT database into state/d/ and no longer reads it, so a
    # file-size check would condemn a sound checkpoint that restores exactly.
    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    leftover = max(glob.glob(str(run / "checkpoints" / "4" / "state" / "ocdbt.process_*" / "d"
                                 / "*")), key=os.path.getsize)
    os.truncate(leftover, os.path.getsize(leftover) // 2)
    params, where = checkpointing.load_params(str(run))
    assert where == f"{run}/checkpoints/4"
    expected, _ = checkpointing.load_params(str(runs[0] / "checkpoints" / "4"))
    for name in expected:
        np.testing.assert_array_equal(params[name], expected[name], err_msg=name)
