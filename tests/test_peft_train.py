"""Prompt tuning and LoRA through the real train() loop: frozen base, small state, resume.

A module-scoped base run (full fine-tuning of the tiny model for a few steps) is the frozen
base every parameter-efficient run here starts from (INITIAL_CHECKPOINT_PATH).
"""
import json
import os

import flax.traverse_util
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

import tiny
from flan_jax import checkpointing, data, metrics_log, partitioning, peft, train
from flan_jax.models import t5

LORA = dict(lora_rank=4, lora_targets=("query", "key", "value", "out", "mlp"))
PROMPT = dict(prompt_length=6)  # trained unpacked, as T5X prompt tuning does
PACKED_PROMPT = dict(prompt_length=6)  # the same prompt, a copy per packed segment
UNPACKED = data.DatasetConfig(tiny.TEST_TASK, tiny.FEATURE_LENGTHS, batch_size=8, seed=0,
                              pack=False)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("peft_base") / "base"
    train.train(**tiny.train_kwargs(model_dir, steps=3))
    return model_dir


def _kwargs(model_dir, base, fields, **overrides):
    kwargs = dict(model_config=tiny.model_config(**fields), initial_checkpoint_path=str(base),
                  optimizer=tiny.optim.OptimizerConfig(learning_rate=0.1))
    if fields is PROMPT:
        kwargs["train_dataset"] = UNPACKED
    kwargs.update(overrides)
    return tiny.train_kwargs(model_dir, **kwargs)


def _saved_state(model_dir, step):
    path = os.path.join(str(model_dir), "checkpoints", str(step), "state")
    return ocp.StandardCheckpointer().restore(path)


def _flat(tree):
    return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): leaf
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _losses(model_dir):
    return {r["step"]: r["loss"] for r in metrics_log.read_metrics(str(model_dir))}


def _restore(model_dir, config):
    return checkpointing.restore_params(str(model_dir), t5.Transformer(config),
                                        partitioning.create_mesh(1),
                                        partitioning.logical_axis_rules()).params


@pytest.mark.parametrize("fields", [LORA, PROMPT], ids=["lora", "prompt"])
def test_only_the_trainable_part_trains_and_is_saved(base_dir, tmp_path, fields):
    config = tiny.model_config(**fields)
    run = tmp_path / "run"
    summary = train.train(**_kwargs(run, base_dir, fields, steps=3))
    assert summary.final_step == 3

    # The checkpoint: params and optimizer state of the trainable leaves only.
    state = _saved_state(run, 3)
    saved_params = _flat(state["params"])
    assert saved_params and all(k.split("/")[-1] in peft.TRAINABLE_NAMES for k in saved_params)
    assert sum(v.size for v in saved_params.values()) == config.num_peft_params()
    opt_leaves = _flat(state["opt_state"])
    big = {k: v for k, v in opt_leaves.items() if v.size > 1}  # skip step counters
    assert big and all(any(n in k for n in peft.TRAINABLE_NAMES) for k in big), sorted(big)
    # Adafactor keeps at most one statistic per parameter (plus per-leaf placeholders).
    assert sum(v.size for v in opt_leaves.values()) < 2 * config.num_peft_params()
    # The run directory names the frozen base's step directory.
    pointer = json.loads((run / peft.BASE_POINTER_FILE).read_text())["base_checkpoint"]
    assert pointer == os.path.join(str(base_dir), "checkpoints", "3")

    # Base + trainable restored together; frozen leaves bit-identical to the base.
    restored = _restore(run, config)
    base = _flat(_saved_state(base_dir, 3)["params"])
    merged = _flat(restored)
    assert set(merged) == set(base) | set(saved_params)
    for name, value in base.items():
        np.testing.assert_array_equal(np.asarray(merged[name]), value, err_msg=name)
    for name, value in saved_params.items():
        np.testing.assert_array_equal(np.asarray(merged[name]), value, err_msg=name)
    with pytest.raises(ValueError, match="T5Config"):  # loading it as plain T5 is refused
        _restore(run, tiny.model_config())
    # And the trainable part did move: LoRA's B left zero; the prompt left its init.
    if fields is LORA:
        assert any(np.any(v) for k, v in saved_params.items() if k.endswith("lora_b"))
    losses = _losses(run)
    assert losses[3] != losses[1]


@pytest.mark.parametrize("fields", [LORA, PROMPT, PACKED_PROMPT],
                         ids=["lora", "prompt", "packed_prompt"])
def test_resume_is_bit_exact(base_dir, tmp_path, fields):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train.train(**_kwargs(straight, base_dir, fields, steps=4, save_every=2))
    train.train(**_kwargs(split, base_dir, fields, steps=2, save_every=2))
    # Resuming needs no INITIAL_CHECKPOINT_PATH: the run directory names its base.
    resumed = train.train(**_kwargs(split, base_dir, fields, steps=4, save_every=2,
                                    initial_checkpoint_path=None))
    assert resumed.start_step == 2
    a, b = _losses(straight), _losses(split)
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert all(a[s] == b[s] for s in a), (a, b)
    assert a[4] != a[1]  # it trains
    jax.tree.map(np.testing.assert_array_equal, _saved_state(straight, 4),
                 _saved_state(split, 4))


def test_lora_with_microbatches_and_sharding_matches_one_device(base_dir, tmp_path):
    train.train(**_kwargs(tmp_path / "plain", base_dir, LORA, steps=3))
    train.train(**_kwargs(tmp_path / "sharded", base_dir, LORA, steps=3, num_partitions=2,
                          parameter_sharding=True, num_microbatches=2))
    train.train(**_kwargs(tmp_path / "prompt_sharded", base_dir, PROMPT, steps=2,
                          num_partitions=2, parameter_sharding=True, num_microbatches=2))
    a, b = _losses(tmp_path / "plain"), _losses(tmp_path / "sharded")
    np.testing.assert_allclose([b[s] for s in (1, 2, 3)], [a[s] for s in (1, 2, 3)],
                               rtol=2e-4)


def test_bad_launches_are_refused_before_anything_is_written(base_dir, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="INITIAL_CHECKPOINT_PATH"):
        train.train(**_kwargs(run, base_dir, LORA, initial_checkpoint_path=None))
    assert not run.exists()


def test_resume_keeps_its_recorded_base_and_refuses_another(base_dir, tmp_path):
    own_base, run = tmp_path / "own_base", tmp_path / "run"
    train.train(**tiny.train_kwargs(own_base, steps=1))
    train.train(**_kwargs(run, own_base, LORA, steps=1))
    train.train(**tiny.train_kwargs(own_base, steps=2))  # the base run saves a later step
    resumed = train.train(**_kwargs(run, own_base, LORA, steps=2))  # the same command again
    assert resumed.start_step == 1
    assert peft.read_base_pointer(str(run)) == os.path.join(str(own_base), "checkpoints", "1")
    with pytest.raises(ValueError, match="frozen base"):
        train.train(**_kwargs(run, base_dir, LORA, steps=3))


def test_lora_run_exports_to_hf_as_a_plain_t5_with_the_same_logits(base_dir, tmp_path):
    from flan_jax.convert import hf
    run, out = tmp_path / "run", tmp_path / "hf"
    train.train(**_kwargs(run, base_dir, LORA, steps=2))
    config = tiny.model_config(**LORA)
    exported_config = hf.to_hf(str(run), str(out))
    assert exported_config.lora_rank == 0 and exported_config.prompt_length == 0
    with hf.HfCheckpoint(str(out)) as checkpoint:
        exported = checkpointing.unflatten(hf.read_hf_params(checkpoint))
    assert not any(k[-1].startswith("lora") for k in flax.traverse_util.flatten_dict(exported))
    rng = np.random.RandomState(0)
    tokens = rng.randint(2, 300, (2, 10)).astype(np.int32)
    batch = dict(encoder_input_tokens=tokens, decoder_input_tokens=tokens[:, :6],
                 decoder_target_tokens=tokens[:, :6])
    plain = tiny.model_config()
    adapted = t5.Transformer(config).apply({"params": _restore(run, config)}, **batch,
                                           enable_dropout=False)
    merged = t5.Transformer(plain).apply({"params": exported}, **batch, enable_dropout=False)
    np.testing.assert_allclose(np.asarray(merged), np.asarray(adapted), rtol=1e-4, atol=1e-4)
    base = t5.Transformer(plain).apply({"params": _restore(base_dir, plain)}, **batch,
                                       enable_dropout=False)
    assert np.abs(np.asarray(base) - np.asarray(adapted)).max() > 1e-3  # LoRA did change it


def test_prompt_run_is_not_exported_to_hf(base_dir, tmp_path):
    from flan_jax.convert import hf
    run = tmp_path / "run"
    train.train(**_kwargs(run, base_dir, PROMPT, steps=1))
    with pytest.raises(ValueError, match="soft prompt"):
        hf.to_hf(str(run), str(tmp_path / "hf"))
    assert not (tmp_path / "hf").exists()


def test_prompt_tuning_learns_a_task_the_frozen_base_was_not_trained_on(tmp_path):
    """Base: the tiny model fully trained on word reversal. Prompt-tuned on the planted-
    answer task of test_evaluation ("which word is marked? *brave*"), only the 8-vector prompt
    trains, and rank classification over 3 options goes far above chance and the base."""
    import test_evaluation as marked  # registers the planted-answer tasks
    from flan_jax import evaluation
    base, run = tmp_path / "base", tmp_path / "prompt"
    train.train(**tiny.train_kwargs(base, steps=120))
    eval_config = evaluation.EvalConfig(marked.MARKED_SCORING, marked.MARKED_LENGTHS,
                                        batch_size=16)
    plain = tiny.model_config()
    mesh, rules = partitioning.create_mesh(1), partitioning.logical_axis_rules()
    restored = checkpointing.restore_params(str(base), t5.Transformer(plain), mesh, rules)
    evaluator = evaluation.Evaluator(eval_config, t5.Transformer(plain), mesh, rules,
                                     restored.shardings)
    key = f"eval/{marked.MARKED_SCORING}/accuracy"
    base_accuracy = evaluator.evaluate(restored.params).flat()[key]
    evaluator.close()

    fields = dict(prompt_length=8)
    train.train(**_kwargs(
        run, base, fields, steps=80, batch_size=16, save_every=80, log_every_steps=40,
        optimizer=tiny.optim.OptimizerConfig(learning_rate=0.3),
        train_dataset=data.DatasetConfig(marked.MARKED_TRAIN, marked.MARKED_LENGTHS,
                                         batch_size=16, seed=0, pack=False),
        eval_dataset=eval_config, eval_period=80))
    accuracy = {r["step"]: r[key] for r in metrics_log.read_metrics(str(run)) if key in r}
    chance = 100 / marked.NUM_OPTIONS
    assert accuracy[80] > chance + 30 and accuracy[80] > base_accuracy + 20, (
        base_accuracy, accuracy)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in
               os.walk(run / "checkpoints" / "80" / "state") for f in files)
    print(f"prompt tuning: base {base_accuracy:.1f} % -> {accuracy[80]:.1f} %, checkpoint "
          f"state {size / 1024:.0f} KiB for {8 * plain.emb_dim} trainable params")
