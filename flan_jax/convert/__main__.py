r"""Command line of flan_jax.convert: one subcommand per direction, plus a parity check.

    python -m flan_jax.convert from-hf /ckpt/flan-t5-base /ckpt/flan-t5-base-flan_jax
    python -m flan_jax.convert to-hf /runs/ft/checkpoints/2000 /ckpt/ft-hf
    python -m flan_jax.convert from-t5x gs-copy/flan_t5_base/checkpoint_1184000 /ckpt/out \
        --vocabulary=/ckpt/spiece.model
    python -m flan_jax.convert check-hf /ckpt/flan-t5-base /ckpt/flan-t5-base-flan_jax

Errors about the inputs (not a checkpoint, unsupported architecture, missing shards, shape
mismatches, a non-empty OUT_DIR) print one message and exit with status 2;
FLAN_JAX_TRACEBACK=1 shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

from flan_jax import console  # noqa: F401, I001  (first: TensorFlow loads without banners)
from flan_jax import paths
from flan_jax.convert import naming


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flan_jax.convert",
                                     description="Convert T5 checkpoints to and from flan_jax.")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("from-hf", help="Hugging Face T5 directory -> flan_jax checkpoint "
                                            "(+ model.gin, spiece.model)")
    p.add_argument("hf_dir")
    p.add_argument("out_dir", help="new or empty directory; use it as INITIAL_CHECKPOINT_PATH")

    p = commands.add_parser("to-hf", help="flan_jax checkpoint -> Hugging Face T5 directory")
    p.add_argument("checkpoint", help="converted OUT_DIR, MODEL_DIR, checkpoints/ or step dir")
    p.add_argument("out_dir")
    p.add_argument("--gin_file", action="append", default=[],
                   help="model gin file giving the T5Config (default: read off the param "
                        "shapes; gated MLPs taken as gated-GELU, max distance 128)")

    p = commands.add_parser("from-t5x", help="T5X checkpoint -> flan_jax checkpoint")
    p.add_argument("t5x_checkpoint", help="checkpoint_<step> dir (tensorstore or Orbax "
                                          "layout), its 'checkpoint' file, or their parent")
    p.add_argument("out_dir")
    p.add_argument("--gin_file", action="append", default=[],
                   help="model gin file giving the T5Config (default: from the shapes)")
    p.add_argument("--vocabulary", default=None,
                   help="SentencePiece model to copy into OUT_DIR and name in model.gin")
    p.add_argument("--scan_axis", type=int, default=1,
                   help="layers axis of scanned parameters (T5X param_scan_axis, default 1)")

    p = commands.add_parser("check-hf", help="max |logits difference| flan_jax vs transformers "
                                             "(needs torch + transformers)")
    p.add_argument("hf_dir")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="flan_jax checkpoint to compare (default: convert HF_DIR in memory)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def check_paths(args: argparse.Namespace) -> None:
    """The command's paths, checked before any conversion starts (nothing written yet)."""
    for source in ("hf_dir", "checkpoint"):
        if getattr(args, source, None) is not None:
            paths.input_dir(getattr(args, source), source.upper())
    if getattr(args, "t5x_checkpoint", None) is not None:
        paths.existing(args.t5x_checkpoint, "T5X_CHECKPOINT",
                       "Give a T5X checkpoint_<step> directory, its 'checkpoint' file, or their "
                       "parent. ")
    if getattr(args, "out_dir", None) is not None:
        paths.output_dir(args.out_dir, "OUT_DIR")
    for gin_file in getattr(args, "gin_file", []):
        paths.input_file(gin_file, "--gin_file")
    if getattr(args, "vocabulary", None) is not None:
        paths.input_file(args.vocabulary, "--vocabulary")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    check_paths(args)
    if args.command == "from-hf":
        from flan_jax.convert import hf
        config = hf.from_hf(args.hf_dir, args.out_dir)
        _report(args.out_dir, config)
    elif args.command == "to-hf":
        from flan_jax.convert import hf
        config = hf.to_hf(args.checkpoint, args.out_dir, args.gin_file)
        print(f"flan_jax.convert: wrote {os.path.abspath(args.out_dir)} (config.json, "
              f"model.safetensors) for {naming.config_summary(config)}")
    elif args.command == "from-t5x":
        from flan_jax.convert import t5x
        config = t5x.from_t5x(args.t5x_checkpoint, args.out_dir, args.gin_file,
                              args.vocabulary, args.scan_axis)
        _report(args.out_dir, config)
    elif args.command == "check-hf":
        from flan_jax.convert import hf
        print(json.dumps(hf.check_hf(args.hf_dir, args.checkpoint, seed=args.seed)))
    return 0


def _report(out_dir: str, config) -> None:
    out_dir = os.path.abspath(out_dir)
    vocabulary = os.path.join(out_dir, "spiece.model")
    # Given on the command line as well: a run file included after model.gin may rebind it.
    vocabulary_flag = (f" --gin.VOCABULARY_PATH=\"'{vocabulary}'\""
                       if os.path.isfile(vocabulary) else "")
    print(f"flan_jax.convert: wrote {out_dir} for {naming.config_summary(config)}\n"
          f"  fine-tune with: python -m flan_jax.train --gin_file={out_dir}/model.gin "
          f"--gin_file=gin_configs/runs/finetune.gin "
          f"--gin.INITIAL_CHECKPOINT_PATH=\"'{out_dir}'\"{vocabulary_flag} "
          "--gin.MODEL_DIR=... (a new directory, not this one)")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, KeyError) as error:
        if os.environ.get("FLAN_JAX_TRACEBACK"):
            raise
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"flan_jax.convert: error: {message}\n(FLAN_JAX_TRACEBACK=1 shows the "
              "traceback.)", file=sys.stderr)
        sys.exit(2)
