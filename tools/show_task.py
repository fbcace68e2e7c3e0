"""Prints rendered examples of a task or mixture, without tokenizing or training.

    python tools/show_task.py mini_flan_heldout_entailment_train -n 3
    python tools/show_task.py rte_10templates --split validation --data_dir gs://bucket/tfds

For a mixture it first lists the tasks and their mixing rates, then shows
examples drawn round robin from its tasks. Tokenization and everything after it
are skipped, so no vocabulary file is needed, except for few-shot tasks: FLAN's
pruning counts the exemplars' tokens (FLAN_JAX_VOCABULARY names a local
sentencepiece.model; otherwise T5's is read from GCS).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from flan_jax import console  # noqa: E402,F401  (first: TensorFlow loads without banners)
import seqio  # noqa: E402

import tasks  # noqa: E402,F401  (registers every task and mixture)
from flan_jax import data, paths  # noqa: E402

_STOP = (seqio.preprocessors.tokenize, seqio.preprocessors.tokenize_and_append_eos)


def _is_tokenizer(step) -> bool:
    return getattr(step, "func", step) in _STOP or isinstance(step, seqio.CacheDatasetPlaceholder)


def rendered_examples(task: seqio.Task, split: str):
    """The task's examples after templating, before tokenization (a tf.data.Dataset)."""
    ds = task.source.get_dataset(split=split, shuffle=False)
    for step in task.preprocessors:
        if _is_tokenizer(step):
            break
        ds = seqio.utils.add_kwargs_to_transform(
            step, output_features=task.output_features, sequence_length=None)(ds)
    return ds


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "tolist"):
        return repr([_text(v) for v in value.tolist()]) if value.ndim else _text(value.item())
    return str(value)


def show(name: str, num: int, split: str, out=sys.stdout) -> None:
    provider = data.get_mixture_or_task(name)
    splits = sorted({s for t in seqio.get_subtasks(provider) for s in t.splits})
    if split not in splits:
        raise ValueError(f"{name!r} has no {split!r} split; its tasks have {splits}. Pass "
                         "--split with one of them.")
    if isinstance(provider, seqio.Mixture):
        task_list = provider.tasks
        print(f"Mixture {name}: {len(task_list)} tasks", file=out)
        for task in task_list:
            try:
                rate = f"{provider.get_rate(task):g}"
            except Exception as e:  # e.g. TFDS data not prepared: show the rest anyway
                rate = f"unknown ({type(e).__name__})"
            print(f"  {task.name}  rate={rate}", file=out)
    else:
        task_list = [provider]
    iterators = [iter(rendered_examples(t, split).as_numpy_iterator()) for t in task_list]
    shown, exhausted = 0, set()
    for task, it in itertools.cycle(zip(task_list, iterators)):
        if shown >= num or len(exhausted) == len(task_list):
            break
        example = next(it, None)
        if example is None:
            exhausted.add(task.name)
            continue
        shown += 1
        print(f"\n=== {task.name} [{split}] example {shown} ===", file=out)
        for key in ("inputs", "targets", "options"):
            if key in example:
                print(f"--- {key}:\n{_text(example[key])}", file=out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="task or mixture name")
    parser.add_argument("-n", "--num_examples", type=int, default=3)
    parser.add_argument("--split", default="validation")
    parser.add_argument("--data_dir", default=None, help="TFDS data_dir of prepared datasets")
    args = parser.parse_args(argv)
    if args.num_examples < 1:
        parser.error(f"--num_examples={args.num_examples}: give a positive number of examples.")
    try:
        if args.data_dir:
            seqio.set_tfds_data_dir_override(paths.input_dir(args.data_dir, "--data_dir"))
        show(args.name, args.num_examples, args.split)
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"show_task.py: error: {error}\n")


if __name__ == "__main__":
    main()
