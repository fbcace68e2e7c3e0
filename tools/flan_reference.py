r"""Records facts of FLAN's own code as test data: tests/data/flan/flan_2021_reference.json.gz.

    python tools/flan_reference.py --flan_repo=/work/.mirror/google-research+FLAN/repo

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


def _read_commit(flan_repo: str, commit: str, with_mock: bool) -> dict[str, Any]:
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
                              f"print(json.dumps(flan_reference._extract({with_mock})))"],
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flan_repo", required=True,
                        help="a git directory of google-research/FLAN (bare is fine)")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)
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
