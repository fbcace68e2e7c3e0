"""Evaluation: the seqio.Evaluator bridge, rank classification, the FLAN summary, flan_jax.eval.

The planted-answer task ("which word is marked? *brave*" -> "brave", options brave/cloud/...) is learnable
in a few dozen steps by a tiny model, so rank classification beating chance after real
training (flan_jax.train.train with evaluation during training) is an end-to-end check.
"""
import csv
import io
import json
import os
import random
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds
from t5.data import postprocessors as t5_postprocessors
from t5.evaluation import metrics as t5_metrics

import tasks  # noqa: F401  (registers mini-FLAN and its scoring variants)
import tiny
from test_console import assert_no_banners
from flan_jax import (checkpointing, data, eval as eval_script, evaluation, launch,
                      metrics_log, partitioning, preprocessors, summary, train, trainer)
from flan_jax.models import decoding, t5

REPO = launch.REPO_ROOT
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------- planted task
MARKED_TRAIN = "flan_jax_test_marked"
MARKED_SCORING = "flan_jax_test_marked_scoring_eval"
MARKED_LENGTHS = {"inputs": 32, "targets": 8}
NUM_OPTIONS = 3


def _marked_examples(split: str) -> dict:
    """'which word is marked? *brave*' -> 'brave'; options: the answer and two other words."""
    rng = random.Random({"train": 0, "validation": 1}[split])
    rows = {"inputs": [], "targets": [], "options": []}
    for _ in range(512 if split == "train" else 40):
        options = rng.sample(tiny.WORDS, NUM_OPTIONS)
        answer = rng.choice(options)
        rows["inputs"].append(f"which word is marked? *{answer}*")
        rows["targets"].append(answer)
        rows["options"].append(options)
    return rows


def _marked_train_source(split, shuffle_files=False, seed=None):
    rows = _marked_examples(split)
    return tf.data.Dataset.from_tensor_slices({k: rows[k] for k in ("inputs", "targets")})


def _marked_scoring_source(split, shuffle_files=False, seed=None):
    return tf.data.Dataset.from_tensor_slices(_marked_examples(split))


def _register_marked_tasks():
    features = {"inputs": seqio.Feature(seqio.ByteVocabulary(), add_eos=True),
                "targets": seqio.Feature(seqio.ByteVocabulary(), add_eos=True)}
    sizes = {"train": 512, "validation": 40}
    for name in (MARKED_TRAIN, MARKED_SCORING):
        seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        MARKED_TRAIN,
        source=seqio.FunctionDataSource(_marked_train_source, splits=("train",),
                                        num_input_examples={"train": 512}),
        preprocessors=[seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
                       seqio.preprocessors.append_eos_after_trim],
        output_features=features)
    seqio.TaskRegistry.add(
        MARKED_SCORING,
        source=seqio.FunctionDataSource(_marked_scoring_source, splits=tuple(sizes),
                                        num_input_examples=sizes),
        preprocessors=[preprocessors.rank_classification_expand, seqio.preprocessors.tokenize,
                       seqio.CacheDatasetPlaceholder(),
                       seqio.preprocessors.append_eos_after_trim],
        output_features=features,
        postprocess_fn=t5_postprocessors.rank_classification,
        metric_fns=[t5_metrics.rank_classification])


_register_marked_tasks()


# ---------------------------------------------------------------------------- helpers
def _setup(model_config=None):
    model = t5.Transformer(model_config or tiny.model_config())
    mesh = partitioning.create_mesh(1)
    rules = partitioning.logical_axis_rules()
    layout = trainer.state_layout(model, optax.set_to_zero(), mesh, rules)
    with mesh, nn.logical_axis_rules(rules):
        params = trainer.init_train_state(model, optax.set_to_zero(), layout, seed=3).params
    return model, mesh, rules, layout, params


def _rows(ds):
    """Enumerated model dataset -> (indices, {feature: [n, length]})."""
    items = list(tfds.as_numpy(ds))
    indices = np.array([i for i, _ in items])
    return indices, {k: np.stack([ex[k] for _, ex in items]) for k in items[0][1]}


@pytest.fixture(scope="module")
def marked_run(tmp_path_factory):
    """A tiny model trained briefly on the planted task, evaluated during training."""
    model_dir = tmp_path_factory.mktemp("marked") / "run"
    eval_config = evaluation.EvalConfig(MARKED_SCORING, MARKED_LENGTHS, batch_size=16)
    summary_ = train.train(**tiny.train_kwargs(
        model_dir, steps=60, batch_size=16, save_every=60,
        train_dataset=data.DatasetConfig(MARKED_TRAIN, MARKED_LENGTHS, batch_size=16, seed=0),
        log_every_steps=20, eval_dataset=eval_config, eval_period=30))
    return model_dir, summary_


# ---------------------------------------------------------------------------- scoring
def test_scores_are_teacher_forced_log_likelihoods_and_best_option_wins():
    model, mesh, rules, layout, params = _setup()
    # 40 examples x 3 options = 120 rows: batches of 16 leave a padded last batch.
    ev = evaluation.Evaluator(evaluation.EvalConfig(MARKED_SCORING, MARKED_LENGTHS,
                                                    batch_size=16),
                              model, mesh, rules, layout.shardings.params)
    ds = ev.model_datasets[MARKED_SCORING]
    with mesh, nn.logical_axis_rules(rules):
        got = dict(ev.score_fn(params)(ds))
    indices, rows = _rows(ds)
    assert sorted(got) == sorted(indices.tolist()) and len(got) == 120

    # Independently: log-softmax of the logits at each target token, summed over the targets.
    logits = model.apply({"params": params}, encoder_input_tokens=rows["encoder_input_tokens"],
                         decoder_input_tokens=rows["decoder_input_tokens"],
                         decoder_target_tokens=rows["decoder_target_tokens"],
                         enable_dropout=False)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    targets = rows["decoder_target_tokens"]
    token_lp = np.take_along_axis(np.asarray(log_probs), targets[..., None], -1)[..., 0]
    expected = (token_lp * (targets > 0)).sum(-1)
    np.testing.assert_allclose([got[i] for i in indices.tolist()], expected, rtol=1e-4,
                               atol=1e-4)

    # The metric picks, per example, the option with the highest total log-likelihood.
    examples = ev.task_examples[MARKED_SCORING]
    by_example = {}
    for ex, score in zip(examples, expected):
        by_example.setdefault(int(ex["idx"][0]), []).append((score, bool(ex["is_correct"])))
    want = 100 * np.mean([max(opts)[1] for opts in by_example.values()])
    results = ev.evaluate(params, step=0)
    assert results.metrics[MARKED_SCORING]["accuracy"] == pytest.approx(want)
    assert results.per_template[MARKED_SCORING] == {
        summary.ALL_TEMPLATES: results.metrics[MARKED_SCORING]}


def test_predict_fn_returns_generated_tokens_in_order_and_per_template_metrics():
    model, mesh, rules, layout, params = _setup()
    config = evaluation.EvalConfig(
        "mini_flan_heldout_arithmetic_eval", {"inputs": 112, "targets": 8}, batch_size=8,
        num_examples=20, decoding=decoding.DecodingConfig(max_decode_length=6))
    ev = evaluation.Evaluator(config, model, mesh, rules, layout.shardings.params)
    ds = ev.model_datasets["mini_addition_10templates"]
    with mesh, nn.logical_axis_rules(rules):
        got = dict(ev.predict_fn(params)(ds))  # 20 rows: batches of 8, 8 and 4 (+4 padding)
        indices, rows = _rows(ds)
        want, _ = decoding.generate(model, params, rows["encoder_input_tokens"],
                                    decoding.DecodingConfig(max_decode_length=6))
    assert sorted(got) == list(range(20))
    np.testing.assert_array_equal(np.stack([got[i] for i in indices.tolist()]), want)

    results = ev.evaluate(params, step=5)
    add, sub = "mini_addition_10templates", "mini_subtraction_10templates"
    assert set(results.metrics) == {add, sub}
    assert "accuracy" in results.metrics[add]
    # Round-robin templates: 20 examples over 10 templates, two each.
    assert sorted(results.per_template[add]) == list(range(10))
    assert results.flat()[f"eval/{add}/accuracy"] == results.metrics[add]["accuracy"]


def test_rank_classification_beats_chance_after_brief_training(marked_run):
    model_dir, _ = marked_run
    records = metrics_log.read_metrics(str(model_dir))
    key = f"eval/{MARKED_SCORING}/accuracy"
    evaluated = {r["step"]: r[key] for r in records if key in r}
    # Evaluated exactly at the period, in the same records as the train metrics.
    assert sorted(evaluated) == [30, 60]
    assert all("loss" in r for r in records if key in r)
    chance = 100 / NUM_OPTIONS
    assert evaluated[60] > chance + 25, evaluated


# ---------------------------------------------------------------------------- summary
def test_summary_table_from_known_numbers(tmp_path):
    per_template = {
        "nli": {0: {"accuracy": 50.0}, 1: {"accuracy": 70.0}, 2: {"accuracy": 90.0},
                9: {"accuracy": 0.0}},  # 9 is turned around: excluded
        "rte": {0: {"accuracy": 60.0}, 1: {"accuracy": 40.0}},
        "qa": {0: {"em": 10.0, "f1": 30.0}, 1: {"em": 20.0, "f1": 50.0}},
        "lone": {summary.ALL_TEMPLATES: {"bleu": 12.0, "accuracy": 3.0}},
    }
    s = summary.summarize(per_template, {"entailment": ["nli", "rte"], "qa": ["qa"]},
                          excluded_templates={"nli": [9]})
    rows = {r.task: r for r in s.tasks}
    assert [r.task for r in s.tasks] == ["nli", "rte", "qa", "lone"]
    assert (rows["nli"].average, rows["nli"].best, rows["nli"].best_template,
            rows["nli"].num_templates) == (70.0, 90.0, 2, 3)
    assert (rows["rte"].average, rows["rte"].best, rows["rte"].best_template) == (50.0, 60.0, 0)
    assert (rows["qa"].metric, rows["qa"].average, rows["qa"].best) == ("f1", 40.0, 50.0)
    assert (rows["lone"].cluster, rows["lone"].metric, rows["lone"].best) == (
        "other", "accuracy", 3.0)
    clusters = {c.cluster: c for c in s.clusters}
    assert (clusters["entailment"].average, clusters["entailment"].best) == (60.0, 75.0)
    assert (clusters["qa"].average, clusters["qa"].best, clusters["qa"].num_tasks) == (
        40.0, 50.0, 1)

    md_path, csv_path = summary.write(s, str(tmp_path))
    assert "| entailment | 2 | 60.00 | 75.00 |" in open(md_path).read()
    table = list(csv.DictReader(io.StringIO(open(csv_path).read())))
    assert {(r["cluster"], r["task"]): float(r["best_template"]) for r in table}[
        ("entailment", "ALL")] == 75.0
    with pytest.raises(ValueError, match="no template left"):
        summary.summarize({"nli": {9: {"accuracy": 1.0}}}, excluded_templates={"nli": [9]})


# ---------------------------------------------------------------------------- entry point
def _run_eval(*flags, timeout=300):
    env = dict(os.environ, PYTHONPATH=TESTS_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "flan_jax.eval", *flags], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _tiny_eval_gin(tmp_path) -> str:
    """eval.gin with the tests' tiny model shape (tests/tiny.py model_config)."""
    c = tiny.model_config()
    path = tmp_path / "tiny_eval.gin"
    path.write_text(
        "from __gin__ import dynamic_registration\n"
        "from flan_jax.models import t5\n"
        "from tasks import mini\n"
        "from tasks.flan import reporting\n"
        "include 'gin_configs/runs/eval.gin'\n"
        "MODEL_CONFIG = @t5.T5Config()\n"
        f"t5.T5Config.vocab_size = {c.vocab_size}\n"
        f"t5.T5Config.emb_dim = {c.emb_dim}\n"
        f"t5.T5Config.num_heads = {c.num_heads}\n"
        f"t5.T5Config.num_encoder_layers = {c.num_encoder_layers}\n"
        f"t5.T5Config.num_decoder_layers = {c.num_decoder_layers}\n"
        f"t5.T5Config.head_dim = {c.head_dim}\n"
        f"t5.T5Config.mlp_dim = {c.mlp_dim}\n"
        "t5.T5Config.dropout_rate = 0.0\n"
        "t5.T5Config.dtype = 'float32'\n"
        "EVAL_CLUSTERS = @mini.eval_clusters()\n"
        "EXCLUDED_TEMPLATES = @reporting.excluded_templates()\n")
    return str(path)


def test_eval_entry_point_end_to_end(marked_run, tmp_path):
    model_dir, _ = marked_run
    out = tmp_path / "eval"
    result = _run_eval(
        f"--gin_file={_tiny_eval_gin(tmp_path)}",
        f"--gin.CHECKPOINT_PATH='{model_dir}/checkpoints/60'",  # a step directory
        "--gin.MIXTURE_OR_TASK_NAME='mini_flan_heldout_entailment_scoring_eval'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 224, 'targets': 8}",
        "--gin.BATCH_SIZE=16", "--gin.NUM_EVAL_EXAMPLES=60",
        f"--gin.EVAL_OUTPUT_DIR='{out}'")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_no_banners(result.stderr)
    for task in ("mini_nli_10templates_scoring_eval", "mini_rte_10templates_scoring_eval"):
        record = json.loads((out / f"{task}.json").read_text())
        assert record["step"] == 60 and 0 <= record["metrics"]["accuracy"] <= 100
        assert record["per_template"]  # template indices survive the expansion
        assert (out / task).is_dir()  # TensorBoard events
    md = (out / "summary.md").read_text()
    assert "| entailment | mini_nli_10templates_scoring_eval | accuracy |" in md
    assert "| entailment | 2 |" in md
    assert "entailment,ALL" in (out / "summary.csv").read_text()
    assert "| entailment | 2 |" in result.stdout


def test_eval_entry_point_bad_checkpoint_path(tmp_path):
    result = _run_eval(
        "--gin_file=gin_configs/local/mini_cpu_eval.gin",
        f"--gin.CHECKPOINT_PATH='{tmp_path / 'nothing_here'}'",
        f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'")
    assert result.returncode == 2
    assert "holds no flan_jax checkpoint" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_inputs_are_explained(marked_run, tmp_path):
    model_dir, _ = marked_run
    config = evaluation.EvalConfig("mini_flan_heldout_entailment_scoring_eval",
                                   {"inputs": 224, "targets": 8}, batch_size=8)
    with pytest.raises(checkpointing.ShapeMismatchError, match="different shape"):
        eval_script.evaluate(checkpoint_path=str(model_dir), output_dir=str(tmp_path),
                             model_config=tiny.model_config(emb_dim=64), eval_dataset=config)
    with pytest.raises(ValueError, match="no 'validation' split"):
        evaluation.eval_tasks(MARKED_TRAIN, "validation")
    with pytest.raises(ValueError, match="Closest registered names: mini_flan_heldout_entailment"):
        evaluation.eval_tasks("mini_flan_heldout_entailment_scoring_evl", "validation")
    with pytest.raises(ValueError, match="does not define metrics|defines metrics"):
        evaluation.eval_tasks(tiny.TEST_TASK, "validation")


def test_eval_during_training_checks_the_eval_mixture_before_writing(tmp_path):
    with pytest.raises(ValueError, match="no 'validation' split"):
        # The config checks itself when built (gin builds it before train() runs).
        bad = evaluation.EvalConfig(MARKED_TRAIN, MARKED_LENGTHS, batch_size=16)  # no eval split
        train.train(**tiny.train_kwargs(tmp_path / "run", eval_dataset=bad, eval_period=2))
    assert not (tmp_path / "run").exists()
