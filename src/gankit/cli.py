"""`gankit train | sample | bench | list`: parse arguments, call the Python API, print results.

Bad input ends with one line `gankit: error: ...` and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

from .errors import GankitError

# command-line flag -> dotted config key
TRAIN_FLAGS = {
    "dataset": "data.dataset", "data_dir": "data.data_dir", "image_size": "data.image_size",
    "channels": "data.channels", "limit": "data.limit",
    "model": "model.name", "latent_dim": "model.latent_dim", "latent_dist": "model.latent_dist",
    "loss": "loss.name",
    "optimizer": "optim.optimizer", "lr_g": "optim.lr_g", "lr_d": "optim.lr_d", "beta1": "optim.beta1",
    "beta2": "optim.beta2", "n_critic": "optim.n_critic",
    "epochs": "train.epochs", "minutes": "train.minutes", "max_steps": "train.max_steps",
    "batch_size": "train.batch_size", "seed": "train.seed", "out": "train.out", "device": "train.device",
    "checkpoint_every": "train.checkpoint_every", "keep_checkpoints": "train.keep_checkpoints",
    "threads": "train.threads", "eval_every": "train.eval_every", "eval_metric": "train.eval_metric",
    "amp": "train.amp", "labels_per_class": "cond.labels_per_class",
}
BUDGET_FLAGS = ("epochs", "minutes", "max_steps")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage block too)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a GAN", description="Train a GAN. With no options: DCGAN on "
                       "Fashion-MNIST for 10 minutes. Later options override earlier sources: preset < "
                       "--config < flags < --set.")
    p.add_argument("--preset", help="a shipped preset (see `gankit list`); default dcgan, or toy for ring/grid")
    p.add_argument("--config", metavar="FILE.yaml", help="a YAML file of config sections")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR exactly")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", metavar="NAME|PATH", help="fashion-mnist, mnist, cifar10, ring, grid or an image folder")
    g.add_argument("--data-dir", help="folder to look for dataset files in first")
    g.add_argument("--image-size", type=int, help="resize images to this many pixels")
    g.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")
    g.add_argument("--limit", type=int, help="use only the first N examples")
    g = p.add_argument_group("model and loss")
    g.add_argument("--model", help="gan-mlp, dcgan, resnet-rrb, dcgan-attn, resnet-attn")
    g.add_argument("--loss", help="minimax, nonsat, lsgan, wgan, wgan-gp, hinge")
    g.add_argument("--latent-dim", type=int, help="size of z")
    g.add_argument("--latent-dist", help="normal or uniform")
    g.add_argument("--labels-per-class", type=int, metavar="N",
                   help="semi-supervised GAN (--preset ssgan): labelled examples per class (default 100)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--optimizer", help="adam, rmsprop or sgd")
    g.add_argument("--lr-g", type=float, help="generator learning rate")
    g.add_argument("--lr-d", type=float, help="discriminator learning rate")
    g.add_argument("--beta1", type=float, help="Adam beta1")
    g.add_argument("--beta2", type=float, help="Adam beta2")
    g.add_argument("--n-critic", type=int, help="D steps per G step")
    g = p.add_argument_group("run")
    budget = g.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, help="train for E epochs")
    budget.add_argument("--minutes", type=float, help="train for M minutes of wall-clock time")
    g.add_argument("--max-steps", type=int, help="stop after this many steps (batches)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--seed", type=int)
    g.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<preset>-<dataset>-<time>)")
    g.add_argument("--device", help="auto, cpu, cuda or mps")
    g.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    g.add_argument("--keep-checkpoints", type=int, help="how many checkpoints to keep")
    g.add_argument("--threads", type=int, help="CPU threads for PyTorch")
    g.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N epochs; keeps checkpoints/best.pt")
    g.add_argument("--eval-metric", help="fid, kid or is (ring/grid: modes); default fid")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="set any config key, e.g. --set model.g_width=32 (repeatable)")
    g.add_argument("--tensorboard", action="store_true", help="also log to RUN_DIR/tensorboard")
    g.add_argument("--strict", action="store_true", help="stop with exit code 4 at the first diagnostic warning")
    g.add_argument("--quiet", action="store_true", help="no progress output")
    g = p.add_argument_group("speed (see README: Performance; several GPUs: torchrun --nproc_per_node K -m gankit train)")
    g.add_argument("--amp", choices=("off", "bf16", "fp16"), help="mixed precision on CUDA (default off)")
    g.add_argument("--compile", action="store_true", help="torch.compile G and D (minutes of compiling first)")
    g.add_argument("--channels-last", action="store_true", help="NHWC memory layout for conv models")


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Write N samples of a run to a PNG grid or an .npz file "
                                   "(key images: uint8 N x H x W x C; key samples: float32 N x 2 for 2-D data).")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="+",
                   help="a run folder; several folders sample their ensemble (an equal-weight mixture)")
    p.add_argument("--num", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--out", required=True, metavar="FILE.png|FILE.npz")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-000500 (default: the newest)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    p.add_argument("--class", dest="klass", metavar="K", help="class-conditional runs: draw only class K "
                   "(its index or name, e.g. 7 or Sneaker)")
    p.add_argument("--vary", metavar="CODE", help="InfoGAN runs: a latent traversal grid, one row per z, "
                   "columns varying CODE (cat0, cat1, ... or cont0, cont1, ...)")


def _classify_parser(sub) -> None:
    p = sub.add_parser("classify", help="classify images with a semi-supervised (or AC-GAN) run's D",
                       description="Print the class D's classifier gives each image (index, name, probability).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (png, jpg, ...)")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-000500 (default: the newest)")
    p.add_argument("--top", type=int, default=1, help="also list the next most likely classes (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="one JSON object per image")


def _translate_parsers(sub) -> None:
    p = sub.add_parser("translate", help="translate a folder of images with a pix2pix or cyclegan run",
                       description="Translate every image of INPUT_DIR into OUT_DIR (same names, PNG). Side-by-side "
                                   "A|B inputs give their A half (AtoB) or B half (BtoA).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("input_dir", metavar="INPUT_DIR")
    p.add_argument("--out", required=True, metavar="OUT_DIR")
    p.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"), help="default AtoB")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-001000 (default: the newest)")
    p.add_argument("--device", default="cpu")
    d = sub.add_parser("demo", help="write an offline image-to-image demo dataset from Fashion-MNIST",
                       description="edges2fashion: " + "; tops2trousers: ".join(
                           ["paired Sobel edges -> item (side-by-side A|B PNGs in train/ and test/)",
                            "unpaired T-shirts/tops <-> trousers (trainA/ trainB/ testA/ testB/)"]))
    d.add_argument("name", choices=("edges2fashion", "tops2trousers"))
    d.add_argument("out", metavar="DIR")
    d.add_argument("--num", type=int, default=5000, help="training images per domain (default 5000)")
    d.add_argument("--test", type=int, default=500, help="held-out images per domain (default 500)")
    d.add_argument("--data-dir", help="where the Fashion-MNIST files are")


def _run_options(p: argparse.ArgumentParser, preset: str, example: str) -> None:
    """--out, --set and --json of the benchmarks that train runs."""
    p.add_argument("--out", metavar="DIR", help="where the runs go (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help=f"override the {preset} preset for every run, e.g. --set {example}")
    p.add_argument("--json", action="store_true", help="print one JSON object per run")


def _bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks", description="Reproducible benchmarks.")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH", parser_class=Parser)
    s = bsub.add_parser("speed", help="training images/s and step time per preset")
    s.add_argument("--preset", action="append", help="preset(s) to time (default: dcgan); repeatable")
    s.add_argument("--seconds", type=float, default=20.0, help="measured time per preset (default 20)")
    s.add_argument("--batch-size", type=int, help="override the preset's batch size")
    s.add_argument("--device", default="auto")
    s.add_argument("--options", metavar="LIST", help="comma list of speed options to time, each against the "
                   "preset as shipped: default, loop-optim, channels-last, channels-first, compile, bf16, fp16, "
                   "batch-128 (default: default,loop-optim,channels-last,channels-first, plus bf16,fp16 on CUDA)")
    s.add_argument("--json", action="store_true", help="print one JSON object per preset and option")
    t = bsub.add_parser("toy2d", help="techniques on ring and grid: modes, %% high quality, reverse KL")
    t.add_argument("--configs", default=None, help="comma list of configurations (default: all; see --list)")
    t.add_argument("--datasets", default="ring,grid", help="comma list of ring, grid (default both)")
    t.add_argument("--seeds", type=int, default=10, help="seeds per configuration (default 10)")
    t.add_argument("--list", action="store_true", help="list the configurations and exit")
    _run_options(t, "toy", "train.epochs=20")
    g = bsub.add_parser("ssgan", help="semi-supervised K+1 GAN vs the same D on the labels alone")
    g.add_argument("--labels", default="10,100", help="comma list of labelled examples per class (default 10,100)")
    g.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
    g.add_argument("--minutes", type=float, default=2.0, help="training minutes per run (default 2)")
    g.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default), mnist or a class folder")
    g.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    _run_options(g, "ssgan", "train.threads=1")
    f = bsub.add_parser("fashion", help="techniques on Fashion-MNIST at equal wall-clock time, judged")
    f.add_argument("--minutes", type=float, default=2.0, help="training minutes per run (default 2)")
    f.add_argument("--configs", default=None, help="comma list of configurations (default: all; see --list)")
    f.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    f.add_argument("--dataset", default="fashion-mnist", choices=("fashion-mnist", "mnist"))
    f.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    f.add_argument("--num", type=int, default=5000, help="generated images scored per run (default 5000)")
    f.add_argument("--list", action="store_true", help="list the configurations and exit")
    _run_options(f, "dcgan", "train.threads=1")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="score a run or two image sets (FID, KID, IS, precision/recall, modes)",
                       description="Score a run's newest checkpoint against its data, or --real against --fake. "
                       "Prints one line per metric (name, value) and where the numbers come from; a run's "
                       "results are appended to RUN_DIR/metrics.json.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR")
    p.add_argument("--real", metavar="SET", help="dataset name, image folder or .npz")
    p.add_argument("--fake", metavar="SET", help="image folder or .npz (e.g. from gankit sample)")
    p.add_argument("--metrics", help="comma list of fid,kid,is,pr,modes (default: fid,kid,is,pr for images, "
                   "modes for ring/grid)")
    p.add_argument("--features", default="auto", choices=("auto", "inception", "judge"),
                   help="feature extractor (auto: the judge for fashion-mnist/mnist, else inception)")
    p.add_argument("--num", type=int, help="samples per set (default 10000; 2500 for ring/grid)")
    p.add_argument("--checkpoint", metavar="NAME", help="checkpoint of RUN_DIR (default: the newest)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    p.add_argument("--inception-weights", metavar="PATH", help="FID Inception weights file (else cached download)")
    p.add_argument("--real-stats", metavar="FILE.npz", help="reuse (or create) the reference set's statistics")
    p.add_argument("--data-dir", help="where to look for dataset files first")
    p.add_argument("--device", default="auto", help="auto (default: cuda, then mps, then cpu), cpu, cuda or mps")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--per-class", action="store_true", help="class-conditional runs: FID, recall and the "
                   "judge's accuracy for each class (--num images per class, default 1000)")


def _judge_parser(sub) -> None:
    p = sub.add_parser("judge", help="train the domain judge used as a feature extractor")
    jsub = p.add_subparsers(dest="judge", required=True, metavar="ACTION", parser_class=Parser)
    t = jsub.add_parser("train", help="train (or reuse) the judge of a dataset and report its test accuracy")
    t.add_argument("--dataset", required=True, metavar="NAME|PATH",
                   help="fashion-mnist, mnist, cifar10, or a labelled image folder (ROOT/CLASS/IMAGE)")
    t.add_argument("--data-dir", help="where to look for dataset files first")
    t.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    t.add_argument("--force", action="store_true", help="retrain even if a cached judge exists")
    t.add_argument("--device", default="cpu")


def _compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="compare runs: config differences, final/best metrics, curves overlaid",
                       description="Print a table of what differs between runs and how they ended; write a "
                                   "comparison page with the curves overlaid.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="compare.html", help="comparison page to write (default compare.html)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(prog="gankit", description="Train, watch, evaluate and compare GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    _train_parser(sub)
    _sample_parser(sub)
    _bench_parser(sub)
    _classify_parser(sub)
    _translate_parsers(sub)
    _eval_parser(sub)
    _judge_parser(sub)
    _compare_parser(sub)
    sub.add_parser("list", help="list presets, models and losses")
    return parser


def _overrides(args: argparse.Namespace) -> list[dict]:
    from .config import parse_override

    values: dict = {}
    for flag, key in TRAIN_FLAGS.items():
        v = getattr(args, flag)
        if v is not None:
            section, name = key.split(".")
            values.setdefault(section, {})[name] = v
    # one budget on the command line replaces the other budget of the preset
    if args.epochs is not None:
        values["train"].setdefault("minutes", None)
    if args.minutes is not None:
        values["train"].setdefault("epochs", None)
    return [values] + [parse_override(s) for s in args.set]


def cmd_train(args: argparse.Namespace) -> int:
    from .config import build_config
    from .training import resume, train

    if args.resume:
        given = [f for f in list(TRAIN_FLAGS) + ["preset", "config"]
                 if getattr(args, f) is not None and f not in BUDGET_FLAGS]
        if given or args.set:
            names = ", ".join("--" + f.replace("_", "-") for f in given) or "--set"
            raise GankitError(f"{names} cannot be combined with --resume; only --epochs, --minutes and "
                              "--max-steps can change when resuming")
        budget = {f: getattr(args, f) for f in BUDGET_FLAGS if getattr(args, f) is not None}
        if args.epochs is not None:
            budget.setdefault("minutes", None)
        if args.minutes is not None:
            budget.setdefault("epochs", None)
        summary = resume(args.resume, budget, quiet=args.quiet)
    else:
        over = _overrides(args) + ([{"diagnose": {"strict": True}}] if args.strict else [])
        over += [{"train": {"tensorboard": True}}] if args.tensorboard else []
        over += [{"train": {"compile": True}}] if args.compile else []
        over += [{"train": {"channels_last": True}}] if args.channels_last else []
        cfg = build_config(args.preset, args.config, over)
        summary = train(cfg, quiet=args.quiet)
    return _report(summary)


def _report(summary: dict) -> int:
    run = summary["run"]
    if int(os.environ.get("RANK", "0")) > 0:  # torchrun: rank 0 speaks for all processes
        return {"diverged": 3, "strict": 4, "interrupt": 130}.get(summary["stopped_by"], 0)
    if summary["stopped_by"] == "diverged":
        print(f"gankit: error: training diverged at step {summary['steps']} (a loss or weight became NaN or "
              f"infinite); no checkpoint of that state was saved. Lower --lr-g/--lr-d and start again, or "
              f"resume from the last good checkpoint with gankit train --resume {run}", file=sys.stderr)
        return 3
    if summary["stopped_by"] == "strict":
        print(f"gankit: error: stopped at step {summary['steps']} by a diagnostic warning (--strict); see "
              f"{run}/diagnostics.jsonl. Continue with gankit train --resume {run}", file=sys.stderr)
        return 4
    if summary["stopped_by"] == "interrupt":
        print(f"interrupted at step {summary['steps']}; checkpoint saved. Continue with: "
              f"gankit train --resume {run}", file=sys.stderr)
        return 130
    print(f"done: {summary['steps']} steps, {summary['epochs']} epochs, {summary['seconds']} s "
          f"(stopped by {summary['stopped_by']}). Run folder: {run}")
    print(f"  samples: {run}/samples/   curves: {run}/losses.png {run}/d_outputs.png   "
          f"log: {run}/log.jsonl")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .sampling import sample

    if (args.klass is not None or args.vary) and len(args.run_dir) > 1:
        raise GankitError("--class and --vary take one run folder, not an ensemble")
    path, n = sample(args.run_dir, args.num, args.out, seed=args.seed, checkpoint=args.checkpoint,
                     device=args.device, klass=args.klass, vary=args.vary, with_count=True)
    print(f"wrote {n} samples to {path}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from .translate import translate_folder

    n = translate_folder(args.run_dir, args.input_dir, args.out, args.direction, args.checkpoint, args.device)
    print(f"translated {n} images ({args.direction}) into {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .translate import make_demo

    if args.num < 1 or args.test < 1:
        raise GankitError("--num and --test must be at least 1")
    out = make_demo(args.name, args.out, args.data_dir, args.num, args.test)
    model = "pix2pix" if args.name == "edges2fashion" else "cyclegan"
    print(f"wrote {out}; train on it with: gankit train --preset {model} --dataset {out} --image-size 32")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    from .metrics.classify import classify

    rows = classify(args.run_dir, args.images, args.checkpoint, args.device, max(1, args.top))
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            rest = ", ".join(f"{t['name']} {t['probability']:.3f}" for t in r["top"][1:])
            print(f"{r['image']}\t{r['class']}\t{r['name']}\t{r['probability']:.3f}" + (f"\t({rest})" if rest else ""))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.bench == "toy2d":
        return cmd_bench_toy2d(args)
    if args.bench == "fashion":
        return cmd_bench_fashion(args)
    if args.bench == "ssgan":
        return cmd_bench_ssgan(args)
    from .bench.speed import format_speed_table, from_args

    return _print_rows(from_args(args), args.json, format_speed_table)


def _print_rows(rows: list[dict], as_json: bool, table) -> int:
    """One JSON object per line with --json, else a table a person reads."""
    from .bench.sweep import format_rows

    print(format_rows(rows, as_json, table))
    return 0


def cmd_bench_toy2d(args: argparse.Namespace) -> int:
    from .bench import toy2d

    if args.list:
        print(toy2d.list_toy_configs())
        return 0
    return _print_rows(toy2d.from_args(args), args.json, toy2d.format_toy_table)


def cmd_bench_ssgan(args: argparse.Namespace) -> int:
    from .bench import ssgan

    return _print_rows(ssgan.from_args(args), args.json, ssgan.format_ssgan_table)


def cmd_bench_fashion(args: argparse.Namespace) -> int:
    from .bench import fashion

    if args.list:
        print(fashion.list_fashion_configs())
        return 0
    return _print_rows(fashion.from_args(args), args.json, fashion.format_fashion_table)


def cmd_list(args: argparse.Namespace) -> int:
    from .config import preset_names
    from .losses import OBJECTIVES
    from .models import DISCRIMINATORS, GENERATORS, MODELS

    print("presets:        " + ", ".join(preset_names()))
    print("models:         " + ", ".join(f"{m} (G={MODELS.get(m)[0]}, D={MODELS.get(m)[1]})" for m in MODELS.names()))
    print("generators:     " + ", ".join(GENERATORS.names()))
    print("discriminators: " + ", ".join(DISCRIMINATORS.names()))
    print("losses:         " + ", ".join(OBJECTIVES.names()))
    print("image-to-image: pix2pix (U-Net G, PatchGAN D), cyclegan (2 ResNet Gs, 2 PatchGAN Ds)")
    print("cond.mode:      none, cgan, acgan, infogan, ssgan")
    print("datasets:       fashion-mnist, mnist, cifar10, ring, grid, or a folder of images")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .config import config_from_dict, load_yaml
    from .metrics.evaluate import evaluate_run, evaluate_sets, format_table, parse_metrics
    from .training.setup import pick_device

    metrics = parse_metrics(args.metrics) if args.metrics else None
    common = dict(features=args.features, inception_weights=args.inception_weights,
                  real_stats=args.real_stats, device=str(pick_device(args.device)))
    if args.run_dir and (args.real or args.fake):
        raise GankitError("give either RUN_DIR or --real and --fake, not both")
    if args.per_class:
        from .metrics.classify import class_names
        from .metrics.evaluate import evaluate_per_class, format_per_class

        if not args.run_dir:
            raise GankitError("--per-class scores a run; give RUN_DIR")
        result = evaluate_per_class(args.run_dir, args.num or 1000, args.checkpoint, args.seed,
                                    "judge" if args.features == "auto" else args.features, common["device"])
        cfg = config_from_dict(load_yaml(Path(args.run_dir) / "config.yaml"))
        print(json.dumps(result) if args.json else format_per_class(result, class_names(cfg, len(result["per_class"]))))
        return 0
    if args.run_dir and (Path(args.run_dir) / "config.yaml").is_file():
        cfg = config_from_dict(load_yaml(Path(args.run_dir) / "config.yaml"))
        if cfg.is_translation:
            from .metrics.translation import evaluate_translation

            result = evaluate_translation(args.run_dir, args.checkpoint, common["device"], args.seed)
            print(json.dumps(result) if args.json else "\n".join(
                f"{k:<22} {v:.6g}" for k, v in result["metrics"].items()) + f"\n# held-out: {result['n']}"
                + "".join(f"\n# {note}" for note in result["notes"]))
            return 0
    if args.run_dir:
        result = evaluate_run(args.run_dir, metrics, num=args.num, checkpoint=args.checkpoint, seed=args.seed,
                              **common)
    elif args.real and args.fake:
        result = evaluate_sets(args.real, args.fake, metrics or ["fid", "kid", "is", "pr"], num=args.num or 10000,
                               data_dir=args.data_dir, **common)
    else:
        raise GankitError("nothing to score; give RUN_DIR, or --real SET and --fake SET")
    print(json.dumps(result) if args.json else format_table(result))
    return 0


def cmd_judge(args: argparse.Namespace) -> int:
    from .metrics.judge import train_judge

    meta = train_judge(args.dataset, args.data_dir, epochs=args.epochs, device=args.device, force=args.force,
                       log=lambda m: print(m, file=sys.stderr))
    print(f"judge of {meta['dataset']}: test accuracy {meta['test_accuracy']:.4f} on {meta['test_size']} "
          f"images ({meta['num_classes']} classes); cached at {meta['path']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .observe.compare import compare

    text, page = compare(args.runs, args.out)
    print(text)
    print(f"comparison page: {page}")
    return 0


COMMANDS = {"translate": cmd_translate, "demo": cmd_demo, "classify": cmd_classify, "compare": cmd_compare,
            "train": cmd_train, "sample": cmd_sample, "bench": cmd_bench, "eval": cmd_eval, "judge": cmd_judge,
            "list": cmd_list}


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"gankit: warning: {message}\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _warning_line
    try:
        return COMMANDS[args.command](args)
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gankit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gankit list | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
