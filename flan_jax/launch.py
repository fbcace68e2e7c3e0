"""What every entry point (train, and later eval / infer) does before its main function runs.

  - T5X-style flags: --gin_file=F (repeatable), --gin.MACRO=VALUE or --gin_bindings='X = Y'
    (repeatable), --gin_search_paths=a,b;
  - multi-host start: --coordinator_address / --num_processes / --process_id call
    jax.distributed.initialize (on TPU pods --distributed alone auto-detects the rest);
  - gin parsing with the repository root on the search path, so
    `--gin_file=gin_configs/...` works from any working directory;
  - a check that every macro bound on the command line is one the gin files declare or read
    (a typo such as --gin.LERNING_RATE would otherwise be ignored silently) and keeps the type
    of its default, and that every %gin.REQUIRED macro was given a value, before any work
    starts;
  - the VOCABULARY_PATH macro, if bound, handed to flan_jax.vocabularies (tasks tokenize
    with that SentencePiece model).
"""
from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import difflib
import logging
import os
import re
import sys
from typing import Callable, Sequence, TypeVar

import gin
import jax

from flan_jax import console, cpu_runtime, vocabularies

T = TypeVar("T")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class LaunchArgs:
    gin_files: list[str]
    gin_bindings: list[str]
    gin_search_paths: list[str]
    distributed: bool
    coordinator_address: str | None
    num_processes: int | None
    process_id: int | None
    verbose: bool = False


def _rewrite_gin_dot_flags(argv: Sequence[str]) -> list[str]:
    """--gin.MODEL_DIR=x  ->  --gin_bindings=MODEL_DIR = x (T5X's shorthand)."""
    out = []
    for arg in argv:
        if arg.startswith("--gin.") and "=" in arg:
            name, value = arg[len("--gin."):].split("=", 1)
            out.append(f"--gin_bindings={name} = {value}")
        else:
            out.append(arg)
    return out


def parse_args(argv: Sequence[str], description: str) -> LaunchArgs:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--gin_file", action="append", default=[],
                        help="gin config file; repeat to layer model, run and experiment files")
    parser.add_argument("--gin_bindings", action="append", default=[],
                        help="a gin binding 'NAME = VALUE'; --gin.NAME=VALUE is the shorthand")
    parser.add_argument("--gin_search_paths", default="",
                        help="comma-separated directories searched for gin files and includes")
    parser.add_argument("--distributed", action="store_true",
                        help="call jax.distributed.initialize() (auto-detected on TPU pods)")
    parser.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=None)
    parser.add_argument("--verbose", action="store_true",
                        help="show every log line, TensorFlow's start-up banners and the "
                             "expected seqio / Orbax warnings included (as FLAN_JAX_VERBOSE=1)")
    ns = parser.parse_args(_rewrite_gin_dot_flags(argv))
    if not ns.gin_file:
        parser.error("at least one --gin_file is required, e.g. "
                     "--gin_file=gin_configs/local/mini_cpu.gin")
    return LaunchArgs(
        gin_files=ns.gin_file, gin_bindings=ns.gin_bindings,
        gin_search_paths=[p for p in ns.gin_search_paths.split(",") if p],
        distributed=ns.distributed or ns.coordinator_address is not None,
        coordinator_address=ns.coordinator_address, num_processes=ns.num_processes,
        process_id=ns.process_id, verbose=ns.verbose or console.verbose())


def maybe_initialize_distributed(args: LaunchArgs) -> None:
    """Joins the multi-process job when the launch asks for one (before touching devices)."""
    if not args.distributed:
        return
    if jax.config.jax_platforms in (None, "", "cpu") and args.coordinator_address:
        # CPU processes need a collectives backend for cross-process reductions.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator_address,
        num_processes=args.num_processes,
        process_id=args.process_id)


def parse_gin(args: LaunchArgs) -> None:
    """Parses the gin files, then the command-line bindings, checking the bindings' macros."""
    for path in [REPO_ROOT, os.getcwd(), *args.gin_search_paths]:
        gin.add_config_file_search_path(path)
    for path in args.gin_files:
        if not _gin_file_exists(path, [REPO_ROOT, os.getcwd(), *args.gin_search_paths]):
            raise FileNotFoundError(
                f"gin file {path!r} not found (looked relative to the working directory, "
                f"{REPO_ROOT} and --gin_search_paths).")
    # Files first, bindings second (what gin.parse_config_files_and_bindings does in one
    # call): the macros as the files leave them are the known names and their defaults.
    with _gin_syntax_errors_as_value_errors():
        gin.parse_config_files_and_bindings(args.gin_files, None, finalize_config=False)
        file_macros = _bound_macros()
        gin.parse_config(args.gin_bindings)
    check_command_line_macros(file_macros)
    _apply_vocabulary_path()


class _gin_syntax_errors_as_value_errors:
    """gin reports an unparsable value (most often a string without inner quotes) as a
    SyntaxError; the user gets it as a bad-launch message, with the quoting fix."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is None or not issubclass(kind, SyntaxError):
            return False
        where = ("a command-line binding" if error.filename in (None, "<string>")
                 else f"{error.filename} line {error.lineno}")
        raise ValueError(
            f"gin cannot parse {where}: {(error.text or '').strip()!r} ({error.msg}). Values are "
            "Python literals: strings need inner quotes on the command line, e.g. "
            "--gin.MODEL_DIR=\"'/tmp/run'\"; numbers, True/False, None, lists and dicts are "
            "written as in Python.") from None


# Macros read by this module (gin.query_parameter), not by a binding: known to every launch.
_LAUNCH_MACROS = ("VOCABULARY_PATH",)


def _bound_macros() -> dict[str, object]:
    """Macro name -> its bound value, as gin holds them now."""
    return {scope: bindings.get("value") for (scope, selector), bindings
            in gin.config._CONFIG.items() if selector == "gin.macro"}


def _referenced_macros() -> set[str]:
    """Names of the macros some binding reads (%NAME), after all parsing."""
    return {ref.scoped_selector.rsplit("/", 1)[0]
            for ref in gin.config.iterate_references(gin.config._CONFIG)
            if ref.selector == "gin.macro"}


def check_command_line_macros(file_macros: dict[str, object]) -> None:
    """Every macro must be declared by a gin file or read by a binding, and a command-line
    value must have the kind of the file's default (an int for an int, a string for a string).

    Args:
      file_macros: name -> value of the macros the gin files bound (before the command line).
    """
    bound = _bound_macros()
    referenced = _referenced_macros()
    known = set(file_macros) | referenced | set(_LAUNCH_MACROS)
    unknown = sorted((set(bound) - known) | (referenced - set(bound)))
    if unknown:
        choices = sorted(known - set(unknown))
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
            hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
        raise ValueError(
            f"Unknown gin macro(s): {', '.join(hints)}. No gin file of this launch declares or "
            "reads them, so the value would be ignored (or a %reference would have no value). "
            "Check the spelling against the macros a run file declares with their defaults "
            "(gin_configs/runs/*.gin, and the model file), or declare the macro in your own "
            "gin file where a binding reads it.")
    for name, default in file_macros.items():
        value = bound[name]
        expected = _MACRO_KINDS.get(name) or _kind(default)
        if expected is None or value is None or value is default:
            continue
        if not _has_kind(value, expected):
            raise ValueError(
                f"Gin macro {name} = {value!r} is not {expected[0]}, which {name} takes (its "
                f"default is {default!r}). Give e.g. "
                f"--gin.{name}={_example(expected[0], default)}.")


# (description, accepted Python types) of the defaults whose kind is checked; a default takes
# the first kind it is an instance of (bool before int: True is an int to Python).
_KINDS = (
    ("True or False", (bool,)),
    ("an integer", (int,)),
    ("a number", (int, float)),
    ("a string", (str,)),
    ("a dict", (collections.abc.Mapping,)),
    ("a list or tuple", (list, tuple)),
)


# Macros whose values may be of several kinds: checked against this, not their default's
# kind; the config that reads them checks the rest (e.g. trainer.LossConfig the names).
_MACRO_KINDS = {
    "LOSS_NORMALIZING_FACTOR": ("None, a number or one of T5X's names", (int, float, str)),
}


def _kind(default: object) -> tuple[str, tuple[type, ...]] | None:
    """The kind a macro's value must have, from its default; None: not checked (None
    defaults, references such as %gin.REQUIRED or @Config(), other objects)."""
    return next((kind for kind in _KINDS if isinstance(default, kind[1])), None)


def _has_kind(value: object, kind: tuple[str, tuple[type, ...]]) -> bool:
    description, types = kind
    if isinstance(value, bool) and description != "True or False":
        return False  # True is an int to Python, never a number or a count to a user
    return isinstance(value, types)


def _example(description: str, default: object) -> str:
    if description == "a string":
        return f"\"{default!r}\""
    return repr(default).replace(" ", "")


def _apply_vocabulary_path() -> None:
    try:
        path = gin.query_parameter("%VOCABULARY_PATH")
    except ValueError:  # macro not bound: keep the environment / default vocabulary
        return
    if path is not None and not _is_required(path):
        vocabularies.set_vocabulary_path(path)


def _gin_file_exists(path: str, roots: Sequence[str]) -> bool:
    return os.path.isfile(path) or any(os.path.isfile(os.path.join(r, path)) for r in roots)


def _is_required(value: object) -> bool:
    # gin returns a reference that prints as written in the config.
    return isinstance(value, gin.config.ConfigurableReference) and repr(value) == "%gin.REQUIRED"


def check_required_macros(names: Sequence[str]) -> None:
    """Every macro in `names` must be bound to a real value (not %gin.REQUIRED)."""
    missing = []
    for name in names:
        try:
            value = gin.query_parameter(f"%{name}")
        except ValueError:
            missing.append(name)
            continue
        if _is_required(value):
            missing.append(name)
    if missing:
        example = " ".join(f"--gin.{m}=..." for m in missing)
        raise ValueError(
            f"Required gin macro(s) not set: {', '.join(missing)}. Set them in an experiment "
            f"gin file or on the command line, e.g. {example} (strings need inner quotes: "
            "--gin.MODEL_DIR=\"'/tmp/run'\").")


# seqio warnings that are expected for generated (FunctionDataSource) tasks and say nothing
# actionable in a launch; everything else from absl still shows.
_EXPECTED_SEQIO_WARNINGS = (
    "not cached so using number of input examples",  # mixing rates from input counts
    "Using an uncached FunctionDataset for training",  # generated data, shuffled after
    "will be removed during packing",  # *_pretokenized strings are not model inputs
    # Evaluation pads to fixed lengths on purpose: generate/score then compile once.
    "sequence lengths are longer than necessary for some evaluation",
    # Orbax, when eval / infer open a checkpoint read-only and restore its params item alone.
    "was found in the checkpoint, but could not be restored",
    "CheckpointManagerOptions.read_only=True, setting save_interval_steps=0",
    "Given directory is read only=",
)


class _DropExpectedSeqioWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _EXPECTED_SEQIO_WARNINGS)


def quiet_expected_warnings(verbose: bool = False) -> None:
    """Drops the expected warnings above, unless `verbose` (--verbose, FLAN_JAX_VERBOSE=1)."""
    if not verbose:
        logging.getLogger("absl").addFilter(_DropExpectedSeqioWarnings())


def run_gin_function(fn: Callable[..., T], argv: Sequence[str] | None, description: str,
                     required_macros: Sequence[str]) -> T:
    """The body of every entry point's main(): flags, multi-host start, gin, the CPU
    runtime's settings (flan_jax.cpu_runtime), then fn().

    fn's arguments all come from gin: the run files bind it by dynamic registration, which
    leaves the module attribute undecorated, hence gin.get_configurable.
    """
    args = parse_args(sys.argv[1:] if argv is None else argv, description=description)
    quiet_expected_warnings(args.verbose)
    maybe_initialize_distributed(args)
    parse_gin(args)
    check_required_macros(required_macros)
    runtime = cpu_runtime.configure()  # before fn's first computation
    if jax.process_index() == 0:
        # stderr: infer's stdout carries only its JSON lines.
        print(f"flan_jax: {runtime.describe()}", file=sys.stderr, flush=True)
    return gin.get_configurable(fn)()


# Errors that describe a bad launch (names, paths, shapes, sizes, a diverging run): the user
# gets the message, not a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError)
_GIN_CALL_CONTEXT = re.compile(r"\n\s*In call to configurable '[^']*' \([^\n]*\)")


def exit_on_user_error(main: Callable[[], object], program: str) -> None:
    """Runs an entry point's main() for `python -m`, turning USER_ERRORS into exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        main()
    except USER_ERRORS as error:
        if os.environ.get("FLAN_JAX_TRACEBACK"):
            raise
        # gin appends where it called the function ("In call to configurable ..."): noise here.
        message = _GIN_CALL_CONTEXT.sub("", str(error))
        print(f"{program}: error: {message}\n(FLAN_JAX_TRACEBACK=1 shows the traceback.)",
              file=sys.stderr)
        sys.exit(2)
