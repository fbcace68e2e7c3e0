"""Instruction templates in FLAN's format.

A dataset's templates are (input, target) pairs of Python format strings, e.g.

    ("{premise}\\n\\nCan we conclude that \\"{hypothesis}\\"?\\n\\n{options_}", "{answer}")

`{name}` is replaced by the example field `name`; `{options_}` is replaced by the
answer choices of a classification example (its `options` field) rendered as
"OPTIONS:\\n- yes\\n- no"; `{{` and `}}` are literal braces. This is the layout of
FLAN's PATTERNS dict (dataset name -> list of pairs), so `load_patterns` accepts
that dict unchanged.

Rendering happens twice in this code base: here in Python (tests, debugging,
reference behaviour) and in `flan_jax.preprocessors.apply_templates` with
TensorFlow string ops. Both walk the same parsed pieces (`template_pieces`), so
they cannot disagree on what a template means.
"""
from __future__ import annotations

import dataclasses
import functools
import string
from typing import Any, Iterable, Mapping, Sequence

OPTIONS_SLOT = "options_"  # the placeholder name FLAN uses for answer choices
OPTIONS_FIELD = "options"  # the example field the choices come from
OPTIONS_HEADER = "OPTIONS:"
OPTION_PREFIX = "\n- "  # every choice goes on its own "- choice" line

# (literal text, placeholder name or None); the literal precedes the placeholder.
Piece = tuple[str, str | None]


@functools.lru_cache(maxsize=None)
def template_pieces(fmt: str) -> tuple[Piece, ...]:
    """Splits a format string into (literal, placeholder) pieces.

    Only bare `{name}` placeholders are allowed: no positional `{}`, no
    `{a.b}` / `{a[0]}` lookups, no `!r` conversions and no `:spec` formats,
    because the TensorFlow renderer supports none of them.

    Raises:
      ValueError: if `fmt` is malformed (unbalanced braces, unsupported syntax).
    """
    pieces = []
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as e:  # e.g. "Single '}' encountered in format string"
        raise ValueError(f"malformed template {fmt!r}: {e}") from None
    for literal, name, spec, conversion in parsed:
        if name is not None:
            if not name.isidentifier():
                raise ValueError(
                    f"malformed template {fmt!r}: placeholder {{{name}}} must be a "
                    "bare field name (escape literal braces as {{ and }})")
            if spec or conversion:
                raise ValueError(
                    f"malformed template {fmt!r}: placeholder {{{name}}} may not use "
                    "a conversion or format spec")
        pieces.append((literal, name))
    return tuple(pieces)


def render_options(options: Iterable[Any]) -> str:
    """The text that replaces `{options_}`: a header, then one "- option" line each."""
    return OPTIONS_HEADER + "".join(OPTION_PREFIX + _as_text(o) for o in options)


def _as_text(value: Any) -> str:
    # Examples read back from tf.data hold bytes; raw Python examples hold str.
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _placeholders(fmt: str) -> list[str]:
    return [name for _, name in template_pieces(fmt) if name is not None]


@dataclasses.dataclass(frozen=True)
class Template:
    """One (input, target) instruction template; see the module docstring.

    Constructing a Template checks that both strings are well formed.
    """

    input: str
    target: str

    def __post_init__(self):
        template_pieces(self.input)
        template_pieces(self.target)

    @property
    def fields(self) -> tuple[str, ...]:
        """Example fields the template reads, in order of first use, without options_."""
        names = _placeholders(self.input) + _placeholders(self.target)
        return tuple(dict.fromkeys(n for n in names if n != OPTIONS_SLOT))

    @property
    def uses_options(self) -> bool:
        """Whether the template offers answer choices through `{options_}`."""
        return OPTIONS_SLOT in _placeholders(self.input) + _placeholders(self.target)

    def render(self, example: Mapping[str, Any]) -> tuple[str, str]:
        """Returns (inputs, targets) for one example (a field -> value mapping).

        Raises:
          KeyError: if the example lacks a field the template uses.
        """
        return _render(self.input, example), _render(self.target, example)


def _render(fmt: str, example: Mapping[str, Any]) -> str:
    parts = []
    for literal, name in template_pieces(fmt):
        parts.append(literal)
        if name == OPTIONS_SLOT:
            parts.append(render_options(example[OPTIONS_FIELD]))
        elif name is not None:
            parts.append(_as_text(example[name]))
    return "".join(parts)


def load_patterns(
    patterns: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, list[Template]]:
    """Turns a FLAN-style PATTERNS dict (name -> [(input, target), ...]) into Templates.

    Raises:
      ValueError: naming the dataset and template index of a malformed pair.
    """
    loaded = {}
    for name, pairs in patterns.items():
        templates = []
        for i, pair in enumerate(pairs):
            try:
                input_fmt, target_fmt = pair
                templates.append(Template(input_fmt, target_fmt))
            except ValueError as e:
                raise ValueError(f"{name}: template {i}: {e}") from None
        loaded[name] = templates
    return loaded


def validate_templates(
    task_name: str,
    templates: Sequence[Template],
    available_fields: Iterable[str],
) -> None:
    """Checks at registration time that every template can be filled in.

    Args:
      task_name: used in error messages only.
      templates: the task's templates.
      available_fields: the fields of the task's raw examples (include
        "options" if the examples carry answer choices).

    Raises:
      ValueError: if there are no templates, or a template reads a field the
        examples do not have; the message names the task, the template index,
        the missing field and the available fields.
    """
    available = sorted(set(available_fields))
    if not templates:
        raise ValueError(f"{task_name}: no templates")
    for i, template in enumerate(templates):
        needed = list(template.fields)
        if template.uses_options:
            needed.append(OPTIONS_FIELD)
        missing = [f for f in needed if f not in available]
        if missing:
            raise ValueError(
                f"{task_name}: template {i} uses field(s) {missing} that the examples "
                f"do not have; available fields: {available}")


def template_index(example_index: int, num_templates: int) -> int:
    """FLAN's round robin: example i of a dataset uses template i % num_templates."""
    return example_index % num_templates


def render_round_robin(
    templates: Sequence[Template], examples: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """Pure-Python reference for `preprocessors.apply_templates` (same round robin)."""
    return [
        templates[template_index(i, len(templates))].render(ex)
        for i, ex in enumerate(examples)
    ]


# ---------------------------------------------------------------------------
# Ablations of paper section 4.3: the same data with the instructions removed.


def _fields_only_input(template: Template) -> str:
    """The template's input with the instruction text dropped: its fields, one per line.

    Answer choices stay (after a blank line) so a classifier still sees them.
    """
    names = _placeholders(template.input)
    lines = "\n".join("{" + n + "}" for n in dict.fromkeys(names) if n != OPTIONS_SLOT)
    if OPTIONS_SLOT in names:
        lines += "\n\n{" + OPTIONS_SLOT + "}"
    return lines


def no_template(templates: Sequence[Template]) -> list[Template]:
    """"No template" ablation: inputs are only the data fields, no instruction.

    Derived from each template (targets kept) and de-duplicated, so a dataset
    whose instructions all read the same fields collapses to one template,
    while turned-around templates keep their own (swapped) direction. A template
    whose input reads no field (FLAN's "Write a sentence." kind) would be left
    with an empty input, so it is dropped.
    """
    derived = (Template(_fields_only_input(t), t.target) for t in templates
               if _placeholders(t.input))
    return list(dict.fromkeys(derived))


def dataset_name(
    templates: Sequence[Template], cluster: str, dataset: str
) -> list[Template]:
    """"Dataset name" ablation: `no_template` inputs prefixed by "[Cluster: dataset] ".

    E.g. dataset_name(ts, "Sentiment", "mini_sentiment") gives inputs like
    "[Sentiment: mini_sentiment] The soup was bland.\\n\\nOPTIONS:...".
    Braces in the names are escaped so they stay literal.
    """
    prefix = f"[{cluster}: {dataset}] ".replace("{", "{{").replace("}", "}}")
    return [Template(prefix + t.input, t.target) for t in no_template(templates)]
