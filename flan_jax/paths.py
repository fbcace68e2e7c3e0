"""Checks of the paths a launch reads and writes, done before anything is written.

Every entry point (train, eval, infer, convert, the tools) names its paths by the setting
they came from (MODEL_DIR, INPUT_FILE, --data_dir, ...), so one bad path gives one paragraph
naming the setting, the value and the fix. Remote paths (gs://..., anything with '://') are
left to their filesystem client: probing them here would need credentials and network.

The checks write nothing that outlives them: writability is probed by creating and removing
an empty temporary directory (os.access is no help when running as root, which ignores mode
bits but not read-only or virtual filesystems).
"""
from __future__ import annotations

import os
import tempfile


class PathError(ValueError):
    """A user-supplied path cannot be used as given."""


def _require_string(path: object, setting: str) -> str:
    if not isinstance(path, str) or not path.strip():
        example = (f"--gin.{setting}=\"'/tmp/run'\" (gin strings need inner quotes)"
                   if setting.isupper() else f"{setting}=/tmp/run")
        raise PathError(f"{setting}={path!r} is not a path: give a non-empty string, e.g. "
                        f"{example}.")
    return path


def is_remote(path: str) -> bool:
    return "://" in path


def output_dir(path: object, setting: str) -> str:
    """A directory the launch will create (with its parents) or write into; -> absolute path.

    Raises PathError when it, or the nearest existing directory above it, is a file, or when
    that directory is not writable.
    """
    path = _require_string(path, setting)
    if is_remote(path):
        return path
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise PathError(f"{setting}={path!r} is an existing file, not a directory. Give a new "
                        "or existing directory (a file there is never overwritten).")
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        raise PathError(f"{setting}={path!r} cannot be created: {existing!r} above it is a "
                        "file. Choose a path whose parents are directories.")
    _require_writable(existing, setting, path)
    return path


def output_file(path: object, setting: str) -> str:
    """A file the launch will (over)write; '-' means stdout. -> the path (absolute)."""
    path = _require_string(path, setting)
    if path == "-" or is_remote(path):
        return path
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise PathError(f"{setting}={path!r} is a directory. Give a file path inside it, e.g. "
                        f"{os.path.join(path, 'predictions.jsonl')!r}.")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise PathError(f"{setting}={path!r}: the directory {parent!r} does not exist. Create "
                        "it first or choose a file in an existing directory.")
    _require_writable(parent, setting, path)
    return path


def existing(path: object, setting: str, what: str = "") -> str:
    """A file or directory the launch reads; `what` says what it should be. -> the path."""
    path = _require_string(path, setting)
    if not is_remote(path) and path != "-" and not os.path.exists(path):
        raise FileNotFoundError(f"{setting}={path!r} does not exist. {what}Check the path "
                                f"(relative paths start at {os.getcwd()!r}).")
    return path


def input_file(path: object, setting: str) -> str:
    """A file the launch reads; '-' means stdin. -> the path as given."""
    path = existing(path, setting)
    if path == "-" or is_remote(path):
        return path
    if os.path.isdir(path):
        raise PathError(f"{setting}={path!r} is a directory; give a file.")
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise PathError(f"{setting}={path!r} cannot be read ({error.strerror}); fix its "
                        "permissions or give another file.") from None
    return path


def input_dir(path: object, setting: str) -> str:
    """A directory the launch reads. -> the path as given."""
    path = existing(path, setting)
    if is_remote(path):
        return path
    if not os.path.isdir(path):
        raise PathError(f"{setting}={path!r} is a file; give a directory.")
    return path


def _nearest_existing(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _require_writable(directory: str, setting: str, path: str) -> None:
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".flan_jax_write_check_", dir=directory))
    except OSError as error:
        raise PathError(f"{setting}={path!r} cannot be written: {directory!r} is not writable "
                        f"({error.strerror}). Choose a directory you can write to, or fix its "
                        "permissions.") from None
