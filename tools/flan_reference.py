r"""Records facts of FLAN's own code as test data: tests/data/flan/flan_2021_reference.json.gz.

    python tools/flan_reference.py --flan_repo=/work/.mirror/google-research+FLAN/repo
    python tools/flan_reference.py --flan_repo=... --few_shot   # flan_2021_few_shot.json

FLAN's package (google-research/FLAN, flan/) imports with the stable seqio and t5 of our
environment and registers its seqio tasks and mixtures without reading any data. This tool
checks FLAN's flan/ out of a git directory (no work tree needed) at two commits into a
temporary directory, imports it in a fresh interpreter per commit, and writes what FLAN's
code says, so that tests compare our collection with FLAN's facts rather than with our own
output:

  commit, later_commit     the 2021 release (3770e83) and the later commit read for pins
  datasets                 per TASK_CONFIGS entry of the 2021 release: tfds_name, splits,
                           metric_fns and postprocess_fn (described by `describe`), the
                           postprocess_fn of its `{name}_10templates` task, and
                           later_tfds_name, the TFDS pin at the later commit (FLAN's
                           2022-23 fixes for data that no longer builds), and mock: FLAN's
                           "answer" / "answers" / "options" of the first tfds mock examples
                           (mock_tfds_name: the version they were drawn from), and
                           mock_fields: every field FLAN's preprocessors give an example
  patterns                 FLAN's templates.PATTERNS: template-group key -> per template
                           {"input", "target": skeletons (template_skeleton: the fields in
                           place, each run of FLAN's words replaced by a hash of it),
                           "words": word_hashes of input + target}. Structure without
                           FLAN's prose: tests derive the structure from it and measure how
                           close our wording comes to FLAN's (difflib over word hashes equals
                           difflib over the words), and no FLAN sentence is stored here.
  pattern_names            dataset -> its PATTERNS key (utils.t_name_to_flan_pattern_name)
  classification_patterns  PATTERNS keys FLAN treats as classification (utils.is_classification)
  dialog_wrapped           FLAN's dialog wrapper (reformat_with_flan_dialog_prompt) on the
                           input "INPUT", and formatters_end_with_dialog_prompt: whether
                           FLAN's template formatters end with it
  task_names               every task name the 2021 release registers
  mixtures                 every mixture of the 2021 release -> its sorted task names

and tests/data/flan/flan_2021_few_shot.json (`few_shot_facts`, run inside FLAN's code):

  format_defaults          register_few_shot_version_of_task's delimiter arguments
  shot_suffixes            ShotConfig: task-name suffix -> number of exemplars ("multi")
  registered               per kind of base task (type, scoring_eval, templates,
                           continuations, continuations_scoring_eval) and shot suffix:
                           how many few-shot tasks, their num_shots, and their pruning
                           budget (max_input_length, None: no pruning), over every task
  steps                    the function names of a few-shot task's preprocessors, in order
  rendered                 FLAN's own few-shot code on FEW_SHOT_ROWS (our hand-written
                           rows and templates, not FLAN's, counted in bytes): the
                           pretokenized examples of its few-shot tasks, with FLAN's
                           dialog format and with its continuations (no dialog) format

Run it again only to refresh the file from another FLAN commit; the tests never run FLAN.
"""
from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

RELEASE_2021 = "3770e83"
# A template field, as FLAN's templates and ours write them: {name} (not {{literal}}).
TEMPLATE_FIELD = re.compile(r"(?<!\{)\{(\w+)\}")
LATER_PIN = "HEAD"
OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "tests", "data", "flan", "flan_2021_reference.json.gz")
OUTPUT_FEW_SHOT = os.path.join(os.path.dirname(OUTPUT), "flan_2021_few_shot.json")


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def template_skeleton(text: str) -> str:
    """A template with its fields in place and each run of other text replaced by «hash».

    Whitespace-only runs stay as they are (layout, not wording). Two templates have equal
    skeletons exactly when they are equal (up to a hash collision).
    """
    pieces = TEMPLATE_FIELD.split(text)  # text, field, text, field, ..., text
    return "".join(("{" + piece + "}") if i % 2 else
                   (piece if not piece.strip() else f"\u00ab{_hash(piece)}\u00bb")
                   for i, piece in enumerate(pieces))


def template_words(text: str) -> list[str]:
    """A template's instruction words: lower-cased, fields and punctuation dropped."""
    return re.findall(r"[a-z0-9']+", TEMPLATE_FIELD.sub(" ", text.lower()))


def word_hashes(text: str) -> list[str]:
    """template_words(text), each replaced by a hash: comparable, not readable."""
    return [_hash(word) for word in template_words(text)]


def pattern_facts(patterns: dict[str, list]) -> dict[str, list[dict[str, Any]]]:
    """FLAN's PATTERNS as stored: skeletons and word hashes, none of FLAN's wording."""
    return {key: [{"input": template_skeleton(inp), "target": template_skeleton(out),
                   "words": word_hashes(inp + " " + out)} for inp, out in pairs]
            for key, pairs in patterns.items()}


def describe(fn: Any) -> str | None:
    """A stable text name for a metric or postprocess function, for comparing code paths.

    module.qualname; functools.partial adds its bound keywords; a closure made by a
    factory (t5's deduplicate_metric, mean_group_metric, sklearn_metrics_wrapper) adds the
    values it closed over, so `deduplicate_metric(squad)` reads differently from `squad`.
    """
    if fn is None:
        return None
    if isinstance(fn, functools.partial):
        bound = ", ".join(f"{k}={_value(v)}" for k, v in sorted(fn.keywords.items()))
        return f"{describe(fn.func)}({bound})"
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    cells = getattr(fn, "__closure__", None) or ()
    if cells:
        name += "[" + ", ".join(_value(c.cell_contents) for c in cells) + "]"
    return name


def _value(v: Any) -> str:
    if callable(v):
        return describe(v)
    if isinstance(v, (list, tuple, range)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in sorted(v.items())) + "}"
    return repr(v)


def _extract(with_mock: bool) -> dict[str, Any]:
    """Runs inside a fresh interpreter whose sys.path starts with FLAN's checkout."""
    import seqio  # pylint: disable=g-import-not-at-top

    class RecordingTfdsSource(seqio.TfdsDataSource):
        """Keeps the tfds_name as FLAN wrote it; later FLAN pins some without a version
        ("glue/cola"), which this seqio refuses, so those register under version 0.0.0."""

        def __init__(self, tfds_name, *args, **kwargs):
            self.flan_tfds_name = tfds_name
            super().__init__(tfds_name if ":" in tfds_name else f"{tfds_name}:0.0.0",
                             *args, **kwargs)

    seqio.TfdsDataSource = RecordingTfdsSource
    from flan import mixtures as _  # noqa: F401  (registers FLAN's mixtures)
    from flan import tasks as flan_tasks  # pylint: disable=g-import-not-at-top
    from flan import templates as flan_templates  # pylint: disable=g-import-not-at-top
    from flan import utils as flan_utils  # pylint: disable=g-import-not-at-top

    datasets = {}
    for name, config in flan_tasks.TASK_CONFIGS.items():
        source = config.source
        datasets[name] = {
            "tfds_name": getattr(source, "flan_tfds_name", None),
            # None: the TFDS splits themselves (FLAN's wsc273 passes no split map).
            "splits": source.tfds_dataset._split_map,  # pylint: disable=protected-access
            "metric_fns": [describe(f) for f in config.metric_fns],
            "postprocess_fn": describe(config.postprocess_fn),
            # FLAN's round-robin training tasks, which its eval mixtures also hold.
            "templated_postprocess_fn": describe(
                seqio.get_mixture_or_task(f"{name}_10templates").postprocessor),
        }
    extra = {}
    if with_mock:
        _add_mock_fields(flan_tasks, datasets)
        extra["dialog_wrapped"] = _dialog_wrapped("INPUT")
        # FLAN's formatters, the templated (get_flan_formatter) and the round-robin ones.
        extra["formatters_end_with_dialog_prompt"] = _formatters_end_with_dialog_prompt()
        extra["patterns"] = pattern_facts(flan_templates.PATTERNS)
        extra["pattern_names"] = {name: flan_utils.t_name_to_flan_pattern_name(name)
                                  for name in flan_tasks.TASK_CONFIGS}
        extra["classification_patterns"] = sorted(
            key for key in flan_templates.PATTERNS if flan_utils.is_classification(key))
    return {
        **extra,
        "datasets": datasets,
        "task_names": sorted(seqio.TaskRegistry.names()),
        "mixtures": {name: sorted(t.name for t in seqio.get_mixture_or_task(name).tasks)
                     for name in sorted(seqio.MixtureRegistry.names())},
    }


MOCK_EXAMPLES = 3
MOCK_FIELDS = ("answer", "answers", "options")


def _add_mock_fields(flan_tasks, datasets: dict[str, Any]) -> None:
    """datasets[name]["mock"]: FLAN's "answer"/"answers"/"options" on tfds mock examples.

    FLAN's own preprocessors run on tfds.testing.mock_data's examples of the "test" split
    (random but reproducible), so tests can compare our field mappings with FLAN's example
    by example. None where FLAN's preprocessors fail on random data (e.g. a label that
    indexes no option).
    """
    import seqio  # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    def text(v):
        if isinstance(v, bytes):
            return v.decode("utf-8")
        if hasattr(v, "tolist"):
            return text(v.tolist())
        if isinstance(v, list):
            return [text(x) for x in v]
        return v

    def rows(source, preprocessors):
        with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
            ds = source.get_dataset("test", shuffle=False)
            for step in preprocessors:
                ds = seqio.utils.add_kwargs_to_transform(
                    step, output_features={}, sequence_length=None)(ds)
            return list(ds.take(MOCK_EXAMPLES).as_numpy_iterator())

    for name, config in flan_tasks.TASK_CONFIGS.items():
        facts = datasets[name]
        facts["mock"] = facts["mock_tfds_name"] = facts["mock_fields"] = None
        source = config.source
        try:
            found = rows(source, config.preprocessors)
        except Exception:  # pylint: disable=broad-except  (an old version, or random data)
            # FLAN's code on the version this TFDS builds, where FLAN's is gone.
            base = source.tfds_dataset.name.split(":")[0]
            try:
                builder = tfds.builder_cls(base.split("/")[0])
                source = seqio.TfdsDataSource(f"{base}:{builder.VERSION}",
                                              splits=source.tfds_dataset._split_map)
                found = rows(source, config.preprocessors)
            except Exception:  # pylint: disable=broad-except
                continue
        facts["mock_tfds_name"] = source.tfds_dataset.name
        facts["mock"] = [{k: text(r[k]) for k in MOCK_FIELDS if k in r} for r in found]
        facts["mock_fields"] = sorted(found[0]) if found else None


def _dialog_wrapped(text: str) -> dict[str, str]:
    """FLAN's reformat_with_flan_dialog_prompt (the last step of its formatters) on `text`."""
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from flan import preprocessors as flan_preprocessors  # pylint: disable=g-import-not-at-top

    ds = tf.data.Dataset.from_tensors({"inputs": text, "targets": "target"})
    out = next(flan_preprocessors.reformat_with_flan_dialog_prompt(ds).as_numpy_iterator())
    return {k: v.decode("utf-8") for k, v in out.items()}


def _formatters_end_with_dialog_prompt() -> bool:
    from flan import preprocessors as flan_preprocessors  # pylint: disable=g-import-not-at-top

    wrapper = flan_preprocessors.reformat_with_flan_dialog_prompt
    return (flan_preprocessors.get_flan_formatter("{a}", "{b}")[-1] is wrapper
            and flan_preprocessors.get_batch_flan_formatter([("{a}", "{b}")])[-1] is wrapper)


# --- Few-shot facts -------------------------------------------------------------------------

# Hand-written rows and templates (ours, none of FLAN's text) that FLAN's few-shot code
# renders for the reference, counted in bytes (few_shot_vocabulary) so that the budget
# bites: train inputs of varied lengths, one test input too long for any exemplar; an even
# number of rows, as FLAN's batch formatter drops a last incomplete round of templates.
FEW_SHOT_ROWS = {
    "train": [{"text": f"t{i} " + "ab" * (i % 7), "answer": ("yes", "no")[i % 3 == 0]}
              for i in range(24)],
    "test": [{"text": "short", "answer": "yes"}, {"text": "a middle one", "answer": "no"},
             {"text": "x" * 90, "answer": "no"}, {"text": "last", "answer": "yes"}],
}
FEW_SHOT_OPTIONS = ("yes", "no")
# Template 0 makes the one-template tasks; both, round robin, the two-template tasks.
FEW_SHOT_TEMPLATES = (("Is it so? {text}", "{answer}"), ("Really, {text}?", "{answer}"))
FEW_SHOT_MAX_INPUT_LENGTH = 100  # bytes
FEW_SHOT_RENDERED = {"_two_shot": 2, "_multi_shot": 16}
FEW_SHOT_FORMAT_ARGS = ("x_y_delimiter", "inputs_prefix", "targets_prefix",
                        "example_separator", "final_suffix")


def few_shot_source(rows: dict[str, list[dict[str, str]]] = FEW_SHOT_ROWS,
                    options: tuple[str, ...] = FEW_SHOT_OPTIONS):
    """A seqio.FunctionDataSource of `rows`: split -> [{"text", "answer"}], + "options"."""
    import seqio  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    def dataset_fn(split, shuffle_files, seed=None):
        del shuffle_files, seed
        return tf.data.Dataset.from_tensor_slices({
            "text": [r["text"] for r in rows[split]],
            "answer": [r["answer"] for r in rows[split]],
            "options": [list(options)] * len(rows[split])})

    return seqio.FunctionDataSource(dataset_fn, splits=tuple(rows))


def few_shot_vocabulary():
    """seqio.ByteVocabulary that also encodes a vector of strings of unequal lengths.

    FLAN's get_fewshot_num_tokens encodes all exemplars at once (a SentencePiece
    vocabulary returns a ragged tensor); ByteVocabulary's decode_raw needs equal lengths.
    For the ASCII of FEW_SHOT_ROWS the two give the same ids, one per character.
    """
    import seqio  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top

    class RaggedByteVocabulary(seqio.ByteVocabulary):

        def _encode_tf(self, s):
            return tf.strings.unicode_decode(s, "UTF-8") + self._num_special_tokens

    return RaggedByteVocabulary()


def few_shot_kind(base: str) -> str:
    """The kind of task a few-shot task is made from, by FLAN's naming."""
    if base.startswith("continuations_"):
        return "continuations" + ("_scoring_eval" if base.endswith("_scoring_eval") else "")
    for kind, pattern in (("scoring_eval", r".+_type_\d+_scoring_eval"),
                          ("type", r".+_type_\d+"), ("templates", r".+_\d+templates")):
        if re.fullmatch(pattern, base):
            return kind
    return "other"


def few_shot_facts() -> dict[str, Any]:
    """Runs inside a fresh interpreter whose sys.path starts with FLAN's checkout."""
    import inspect  # pylint: disable=g-import-not-at-top

    import seqio  # pylint: disable=g-import-not-at-top
    from flan import few_shot  # pylint: disable=g-import-not-at-top
    from flan import preprocessors as flan_prep  # pylint: disable=g-import-not-at-top

    register = few_shot.register_few_shot_version_of_task
    signature = inspect.signature(register)
    suffixes = {c.name_suffix: c.value for c in few_shot.ShotConfig if c.value != 0}
    calls = []

    def recording(*args, **kwargs):  # every call FLAN's tasks.py makes, defaults filled in
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        calls.append(dict(bound.arguments))
        return register(*args, **kwargs)

    few_shot.register_few_shot_version_of_task = recording
    try:
        from flan import tasks as _  # noqa: F401  pylint: disable=g-import-not-at-top
    finally:
        few_shot.register_few_shot_version_of_task = register

    registered: dict[str, dict[str, dict[str, Any]]] = {}
    for call in calls:
        name = call["new_task_name"]
        suffix = next(s for s in suffixes if name.endswith(s))
        assert call["base_task_name"] + suffix == name, name
        entry = registered.setdefault(few_shot_kind(call["base_task_name"]), {}).setdefault(
            suffix, {"tasks": 0})
        entry["tasks"] += 1
        for key in ("num_shots", "prune_exemplars", "max_input_length",
                    *FEW_SHOT_FORMAT_ARGS):
            if call[key] not in entry.setdefault(key, []):
                entry[key].append(call[key])

    def step_names(task_name):
        return [getattr(getattr(p, "func", p), "__name__", type(p).__name__)
                for p in seqio.TaskRegistry.get(task_name).preprocessors]

    return {
        "format_defaults": {k: signature.parameters[k].default for k in FEW_SHOT_FORMAT_ARGS},
        "shot_suffixes": suffixes,
        "registered": registered,
        "steps": {name: step_names(name) for name in
                  ("rte_type_0_two_shot", "rte_type_0_scoring_eval_two_shot")},
        "rows": FEW_SHOT_ROWS, "options": list(FEW_SHOT_OPTIONS),
        "templates": [list(t) for t in FEW_SHOT_TEMPLATES],
        "max_input_length": FEW_SHOT_MAX_INPUT_LENGTH,
        "rendered": _render_few_shot(register, flan_prep, registered),
    }


def _render_few_shot(register, flan_prep, registered) -> dict[str, Any]:
    """FLAN's few-shot code on FEW_SHOT_ROWS: format -> kind of base task -> suffix -> rows."""
    import seqio  # pylint: disable=g-import-not-at-top

    vocab = few_shot_vocabulary()
    features = {"inputs": seqio.Feature(vocab, add_eos=True, required=False),
                "targets": seqio.Feature(vocab, add_eos=True)}
    inputs_pattern, targets_pattern = FEW_SHOT_TEMPLATES[0]
    # FLAN's two formats as its tasks.py calls them: dialog (its instruction tasks, whose
    # formatters end with the dialog wrapper) and continuations (no wrapper). Base tasks:
    # generation and scoring with template 0 ("generation", "scoring_eval"), and all
    # templates round robin with FLAN's batch formatter ("templates").
    formats = {"dialog": (flan_prep.get_flan_formatter, "type",
                          flan_prep.rank_classification_from_options),
               "continuations": (flan_prep.get_glm_formatter, "continuations",
                                 flan_prep.GLM_RANK_CLASSIFICATION)}
    rendered: dict[str, Any] = {}
    for fmt, (formatter, kind, scorer) in formats.items():
        calls = registered[kind]["_two_shot"]
        fmt_args = {k: calls[k][0] for k in FEW_SHOT_FORMAT_ARGS}
        bases = {
            "generation": formatter(inputs_pattern, targets_pattern),
            "scoring_eval": formatter(inputs_pattern, targets_pattern) + [scorer],
            "templates": flan_prep.get_batch_flan_formatter(list(FEW_SHOT_TEMPLATES)),
        }
        for base_kind, steps in bases.items():
            base = f"few_shot_reference_{fmt}_{base_kind}"
            seqio.TaskRegistry.add(base, source=few_shot_source(), output_features=features,
                                   preprocessors=steps + flan_prep.FLAN_TOKENIZE)
            for suffix, num_shots in FEW_SHOT_RENDERED.items():
                register(base, base + suffix, num_shots, prune_exemplars=True,
                         max_input_length=FEW_SHOT_MAX_INPUT_LENGTH, **fmt_args)
                task = seqio.TaskRegistry.get(base + suffix)
                ds = task.source.get_dataset("test", shuffle=False)
                for step in task.preprocessors:
                    if step is seqio.preprocessors.tokenize:
                        break
                    ds = seqio.utils.add_kwargs_to_transform(
                        step, output_features=features, sequence_length=None)(ds)
                keys = ("inputs", "targets") + (("is_correct",) if "scoring" in base_kind
                                                else ())
                rendered.setdefault(fmt, {}).setdefault(base_kind, {})[suffix] = [
                    {k: (bool(r[k]) if k == "is_correct" else r[k].decode("utf-8"))
                     for k in keys} for r in ds.as_numpy_iterator()]
    return rendered


def _read_commit(flan_repo: str, commit: str, with_mock: bool,
                 call: str | None = None) -> dict[str, Any]:
    """Runs `call` (default: _extract(with_mock)) of this module inside FLAN at `commit`."""
    call = call or f"_extract({with_mock})"
    sha = subprocess.run(["git", "-C", flan_repo, "rev-parse", commit], check=True,
                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        # The Python files of flan/ only: later commits add flan/v2 with large data files.
        listing = subprocess.run(["git", "-C", flan_repo, "ls-tree", "--name-only", sha,
                                  "flan/"], check=True, capture_output=True, text=True).stdout
        files = [f for f in listing.split() if f.endswith(".py")]
        archive = subprocess.run(["git", "-C", flan_repo, "archive", sha, *files], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join([tmp, os.path.dirname(os.path.abspath(__file__))]))
        out = subprocess.run([sys.executable, "-c",
                              "import json, flan_reference; "
                              f"print(json.dumps(flan_reference.{call}))"],
                             capture_output=True, text=True, env=env, cwd=tmp)
        if out.returncode:
            raise RuntimeError(f"importing FLAN at {sha} failed:\n{out.stderr[-3000:]}")
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    facts["commit"] = sha
    return facts


def build(flan_repo: str) -> dict[str, Any]:
    release = _read_commit(flan_repo, RELEASE_2021, with_mock=True)
    later = _read_commit(flan_repo, LATER_PIN, with_mock=False)
    for name, facts in release["datasets"].items():
        facts["later_tfds_name"] = later["datasets"].get(name, {}).get("tfds_name")
    return {"commit": release["commit"], "later_commit": later["commit"],
            "dialog_wrapped": release["dialog_wrapped"],
            "formatters_end_with_dialog_prompt": release["formatters_end_with_dialog_prompt"],
            "patterns": release["patterns"], "pattern_names": release["pattern_names"],
            "classification_patterns": release["classification_patterns"],
            "datasets": release["datasets"], "task_names": release["task_names"],
            "mixtures": release["mixtures"]}


def load(path: str = OUTPUT) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def build_few_shot(flan_repo: str) -> dict[str, Any]:
    """few_shot_facts of the 2021 release (FLAN's few-shot code is the same at HEAD)."""
    return _read_commit(flan_repo, RELEASE_2021, with_mock=False, call="few_shot_facts()")


def load_few_shot(path: str = OUTPUT_FEW_SHOT) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flan_repo", required=True,
                        help="a git directory of google-research/FLAN (bare is fine)")
    parser.add_argument("--output", default=None,
                        help=f"default: {OUTPUT}, or {OUTPUT_FEW_SHOT} with --few_shot")
    parser.add_argument("--few_shot", action="store_true",
                        help="write only the few-shot facts (few_shot_facts)")
    args = parser.parse_args(argv)
    if args.few_shot:
        facts = build_few_shot(args.flan_repo)
        output = args.output or OUTPUT_FEW_SHOT
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            json.dump(facts, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"{output}: few-shot facts of {len(facts['registered'])} task kinds "
              f"(FLAN {facts['commit'][:7]})")
        return 0
    args.output = args.output or OUTPUT
    facts = build(args.flan_repo)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    # mtime=0: the same facts give the same bytes.
    with open(args.output, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(facts, indent=1, sort_keys=True).encode("utf-8"))
    print(f"{args.output}: {len(facts['datasets'])} datasets, {len(facts['task_names'])} "
          f"task names, {len(facts['mixtures'])} mixtures (FLAN {facts['commit'][:7]}, "
          f"pins of {facts['later_commit'][:7]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
