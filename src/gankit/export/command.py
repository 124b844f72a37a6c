"""`gankit export`: its arguments and what it prints (gankit.cli adds the subcommand; nothing heavy is
imported until it runs)."""
from __future__ import annotations

import argparse


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's generator: safetensors + config + model card (+ ONNX, Hub)",
                       description="Write the generator of RUN_DIR (its EMA weights when kept; no D, no optimizer) as a "
                       "folder in the Hugging Face Hub layout: model.safetensors, config.json, README.md (model card), "
                       "samples.png; --format onnx adds model.onnx, checked against PyTorch with onnxruntime. "
                       "gankit sample, gankit translate and gankit.load_generator read the folder like a run.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="DIR", help="the folder to write (new or empty); optional with --push-to-hub")
    p.add_argument("--format", default="safetensors", choices=("safetensors", "onnx"),
                   help="safetensors (default), or onnx: safetensors plus model.onnx")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-000500 or best (default: the newest)")
    p.add_argument("--push-to-hub", metavar="USER/REPO", help="upload the folder to this Hugging Face Hub model repo "
                   "(created if missing; needs `hf auth login` or HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repo private")
    p.add_argument("--license", default="other", metavar="ID", help="license of the weights in the model card "
                   "(a Hub license id such as mit or cc-by-4.0; default other)")


def cmd_export(args: argparse.Namespace) -> int:
    from .write import export_run

    if args.private and not args.push_to_hub:
        from ..errors import GankitError

        raise GankitError("--private applies to --push-to-hub USER/REPO; add it or drop --private")
    r = export_run(args.run_dir, args.out, args.format, args.checkpoint, args.push_to_hub, args.license, args.private)
    if r["folder"] is not None:
        print(f"exported {args.run_dir} ({r['checkpoint']}, step {r['step']}) to {r['folder']}: {', '.join(r['files'])}")
    if r["onnx"]:
        check = r["onnx"]["check"]
        print(f"ONNX: onnxruntime {check['onnxruntime']} matches PyTorch within {check['max_abs_diff']:.2g} "
              f"(limit {check['tolerance']:g}) at batch sizes {', '.join(map(str, check['batches']))}")
    if r["url"]:
        print(f"pushed to {r['url']}")
    return 0
