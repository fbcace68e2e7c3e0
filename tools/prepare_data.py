"""Downloads and prepares every TFDS dataset the FLAN 2021 collection reads.

    python tools/prepare_data.py --data_dir=gs://my-bucket/tfds
    python tools/prepare_data.py --data_dir=/data/tfds --datasets=rte,anli_r1,glue/mnli
    python tools/prepare_data.py --list

Keeps going past failures and reports at the end which datasets failed (some
need manual downloads, e.g. story_cloze and newsroom: TFDS's error says where to
put the files; pass --manual_dir). Afterwards point training at the same
directory: seqio.set_tfds_data_dir_override(DIR) or TFDS_DATA_DIR=DIR.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import difflib  # noqa: E402

from flan_jax import console  # noqa: E402,F401  (first: TensorFlow loads without banners)
import tensorflow_datasets as tfds  # noqa: E402

from flan_jax import paths  # noqa: E402
from tasks.flan.datasets import DATASETS  # noqa: E402  (specs only; registers nothing)


def tfds_names(selection: list[str] | None = None) -> list[str]:
    """TFDS "name/config:version" strings to prepare, each once.

    `selection` may hold collection names (e.g. "mnli_matched") or TFDS names.
    """
    wanted = []
    for item in selection or list(DATASETS):
        wanted.append(DATASETS[item].tfds_name if item in DATASETS else item)
    # Only names the user typed are checked; the collection's own names are tested specs.
    collection = {spec.tfds_name for spec in DATASETS.values()}
    unknown = [name for name in wanted if name not in collection and not _is_known(name)]
    if unknown:
        known = sorted(DATASETS) + tfds.list_builders() + sorted(
            {_builder_name(DATASETS[n].tfds_name) + "/" + c for n in DATASETS
             for c in _configs(_builder_name(DATASETS[n].tfds_name))})
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        raise ValueError(
            f"--datasets names unknown dataset(s): {', '.join(hints)}. Give collection names "
            "(--list prints what each maps to) or TFDS names such as 'glue/mnli'.")
    return list(dict.fromkeys(wanted))


def _builder_name(tfds_name: str) -> str:
    """'super_glue/rte:1.0.2' -> 'super_glue' (what tfds.list_builders() holds)."""
    return tfds_name.split(":")[0].split("/")[0]


def _configs(builder: str) -> list[str]:
    """The builder's config names; [] when its module cannot be imported here (checked then
    by TFDS itself when preparing)."""
    try:
        return [c.name for c in tfds.builder_cls(builder).BUILDER_CONFIGS]
    except Exception:  # a builder's optional dependencies may be missing on this host
        return []


def _is_known(tfds_name: str) -> bool:
    """A registered TFDS builder, and (when named and checkable) one of its configs."""
    builder = _builder_name(tfds_name)
    if builder not in tfds.list_builders():
        return False
    parts = tfds_name.split(":")[0].split("/")
    configs = _configs(builder) if len(parts) > 1 else []
    return not configs or parts[1] in configs


def prepare(name: str, data_dir: str, manual_dir: str | None) -> None:
    builder = tfds.builder(name, data_dir=data_dir)
    config = tfds.download.DownloadConfig(manual_dir=manual_dir) if manual_dir else None
    builder.download_and_prepare(download_config=config)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", help="TFDS data_dir, local path or gs://")
    parser.add_argument("--datasets", default="", help="comma-separated subset (default: all)")
    parser.add_argument("--manual_dir", default=None, help="where manually downloaded files are")
    parser.add_argument("--list", action="store_true", help="print the TFDS names and exit")
    args = parser.parse_args(argv)
    try:
        names = tfds_names([s for s in args.datasets.split(",") if s] or None)
        if not args.list and args.data_dir:
            paths.output_dir(args.data_dir, "--data_dir")
        if not args.list and args.manual_dir:
            paths.input_dir(args.manual_dir, "--manual_dir")
    except (ValueError, FileNotFoundError) as error:
        parser.exit(2, f"prepare_data.py: error: {error}\n")
    if args.list:
        print("\n".join(names))
        return 0
    if not args.data_dir:
        parser.error("--data_dir is required")
    failed = {}
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}", flush=True)
        try:
            prepare(name, args.data_dir, args.manual_dir)
        except Exception as e:  # keep going; report at the end
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    print(f"\nPrepared {len(names) - len(failed)} of {len(names)} datasets in {args.data_dir}.")
    for name, why in failed.items():
        print(f"  FAILED {name}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
