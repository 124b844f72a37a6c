"""`gankit train | sample | bench | list`: parse arguments, call the Python API, print results.

Bad input ends with one line `gankit: error: ...` and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Optional, Sequence

from .cli_train import add_train_parser, cmd_list, cmd_train
from .config import TRANSLATION_MODELS
from .errors import GankitError
from .export.command import add_export_parser, cmd_export
from .refine.flags import add_refine_options, refine_args


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse would print the usage block too)
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="draw samples from a trained run",
                       description="Write N samples of a run to a PNG grid or an .npz file "
                                   "(key images: uint8 N x H x W x C; key samples: float32 N x 2 for 2-D data).")
    p.add_argument("run_dir", metavar="RUN_DIR", nargs="+",
                   help="a run folder; several folders sample their ensemble (an equal-weight mixture)")
    p.add_argument("--num", type=int, default=64, help="number of samples (default 64); a PNG grid takes up "
                   "to 1024 images, an .npz more (written in chunks)")
    p.add_argument("--out", required=True, metavar="FILE.png|FILE.npz")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent draws (default 0)")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-000500 (default: the newest)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    p.add_argument("--class", dest="klass", metavar="K", help="class-conditional runs: draw only class K "
                   "(its index or name, e.g. 7 or Sneaker)")
    p.add_argument("--vary", metavar="CODE", help="InfoGAN runs: a latent traversal grid, one row per z, "
                   "columns varying CODE (cat0, cat1, ... or cont0, cont1, ...)")
    add_refine_options(p)


def _classify_parser(sub) -> None:
    p = sub.add_parser("classify", help="classify images with a semi-supervised (or AC-GAN) run's D",
                       description="Print the class D's classifier gives each image (index, name, probability).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (png, jpg, ...)")
    p.add_argument("--checkpoint", metavar="NAME", help="e.g. step-000500 (default: the newest)")
    p.add_argument("--top", type=int, default=1, help="also list the next most likely classes (default 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="one JSON object per image")


DEMO_MODELS = {demo: model for model, (_, _, demo) in TRANSLATION_MODELS.items()}  # gankit demo NAME -> its model


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
    d.add_argument("name", choices=list(DEMO_MODELS))
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
    p.add_argument("--first-seed", type=int, default=0, metavar="K", help="seeds K, K+1, ... (default 0): more "
                   "seeds for a table already run, e.g. --seeds 2 --first-seed 3 runs seeds 3 and 4")
    p.add_argument("--jobs", type=int, metavar="N", help="runs at once in separate processes, each with "
                   "cores/N threads (default: one per core)")


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
    s.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="time the presets with this override too, e.g. --set model.minibatch_discrimination=50")
    s.add_argument("--json", action="store_true", help="print one JSON object per preset and option")
    t = bsub.add_parser("toy2d", help="techniques on ring and grid: modes, %% high quality, reverse KL")
    t.add_argument("--configs", default=None, help="comma list of configurations (default: all; with --refine, all "
                   "but those whose D judges packs; see --list)")
    t.add_argument("--datasets", default="ring,grid", help="comma list of ring, grid (default both)")
    t.add_argument("--seeds", type=int, default=10, help="seeds per configuration (default 10)")
    t.add_argument("--refine", metavar="METHODS", help="also score each run's samples refined by its D with each "
                   "of these methods (comma list of drs, mh, latent): a row 'CONFIG + METHOD' beside the raw one")
    t.add_argument("--list", action="store_true", help="list the configurations and exit")
    _run_options(t, "toy", "train.epochs=20")
    g = bsub.add_parser("ssgan", help="semi-supervised K+1 GAN and its switches vs the same D on the labels alone")
    g.add_argument("--labels", default="10,100", help="comma list of labelled examples per class (default 10,100)")
    g.add_argument("--seeds", type=int, default=3, help="seeds per setting (default 3)")
    g.add_argument("--minutes", type=float, default=2.0, help="training minutes per run (default 2; the "
                   "sup-long baseline trains 5 times as long)")
    g.add_argument("--methods", default=None, help="comma list of gan, badgan, consistency, sup, sup-long "
                   "(default: all)")
    g.add_argument("--dataset", default="fashion-mnist", help="fashion-mnist (default), mnist or a class folder")
    g.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    _run_options(g, "ssgan-mlp", "train.threads=1")
    f = bsub.add_parser("fashion", help="techniques on Fashion-MNIST at equal wall-clock time, judged")
    f.add_argument("--minutes", default="2", help="training minutes per run (default 2); several, e.g. "
                   "2,5,10: each run trains for the longest and is scored at each")
    f.add_argument("--configs", default=None, help="comma list of configurations (default: all; see --list)")
    f.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    f.add_argument("--dataset", default="fashion-mnist",
                   choices=("fashion-mnist", "mnist", "stacked-fashion-mnist", "stacked-mnist"),
                   help="a stacked dataset is scored by its modes of 1,000 and their reverse KL to uniform")
    f.add_argument("--data-dir", metavar="DIR", help="where the dataset files are")
    f.add_argument("--num", type=int, default=None, help="generated images scored per run (default 5000; 26,000 "
                   "on a stacked dataset, as VEEGAN and PacGAN)")
    f.add_argument("--limit", type=int, metavar="N", help="a small dataset: train on the first N training images "
                   "only, and judge against the test split, with D's held-out accuracy and whether the overfitting "
                   "warning fired")
    f.add_argument("--list", action="store_true", help="list the configurations and exit")
    _run_options(f, "dcgan", "train.threads=1")


def _eval_parser(sub) -> None:
    from .cli_train import RegistryHelp

    p = sub.add_parser("eval", help="score a run or two image sets (FID, KID, IS, precision/recall, modes)",
                       formatter_class=RegistryHelp,
                       description="Score a run's newest checkpoint against its data, or --real against --fake. "
                       "Prints one line per metric (name, value) and where the numbers come from; a run's "
                       "results are appended to RUN_DIR/metrics.json and its plots and report.html redrawn.")
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR")
    p.add_argument("--real", metavar="SET", help="dataset name, image folder or .npz")
    p.add_argument("--fake", metavar="SET", help="image folder or .npz (e.g. from gankit sample)")
    p.add_argument("--metrics", help="comma list of %(metrics)s (default: every metric that applies: the image "
                   "metrics, or those of ring/grid points)")
    p.add_argument("--features", default="auto", metavar="auto|inception|judge",
                   help="feature extractor (auto: the judge for fashion-mnist/mnist, else inception)")
    p.add_argument("--num", type=int, help="samples per set (default 10000; 2500 for ring/grid); refused above "
                   "what fits in memory")
    p.add_argument("--checkpoint", metavar="NAME", help="checkpoint of RUN_DIR (default: the newest)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated samples")
    p.add_argument("--inception-weights", metavar="PATH", help="FID Inception weights file (else cached download)")
    p.add_argument("--real-stats", metavar="FILE.npz", help="reuse (or create) the reference set's statistics")
    p.add_argument("--split", default="train", choices=("train", "test"),
                   help="a run's reference images: its training set (default) or the real images it never trained "
                   "on (the dataset's test split, whole even after --limit; or data.holdout's share)")
    p.add_argument("--data-dir", help="where to look for dataset files first")
    p.add_argument("--device", default="auto", help="auto (default: cuda, then mps, then cpu), cpu, cuda or mps")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--per-class", action="store_true", help="class-conditional runs: FID, recall and the "
                   "judge's accuracy for each class (--num images per class, default 1000)")
    p.add_argument("--no-record", action="store_true", help="print the result only; leave RUN_DIR untouched")
    add_refine_options(p)


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


def _tune_parser(sub) -> None:
    p = sub.add_parser("tune", help="search hyper-parameters (Optuna): trials of a preset, each scored by the judge",
                       description="Each trial is a gankit run of --minutes in OUT/trial-NNNN, pruned on its --eval-every "
                       "values (median pruner), then scored. Running the same command again continues the study "
                       "until N trials are finished in all. At the end: best.yaml, trials.csv, plots, summary.html.")
    p.add_argument("--preset", required=True, help="the preset to tune (gankit list)")
    p.add_argument("--dataset", metavar="NAME|PATH", help="its dataset (default: the preset's)")
    p.add_argument("--space", required=True, metavar="SPACE.yaml", help="config keys and distributions, e.g. "
                   "optim.lr_g: {log_uniform: [1.0e-5, 1.0e-3]} (also uniform, int: [low, high], categorical: [...])")
    p.add_argument("--trials", type=int, required=True, metavar="N", help="finished trials (completed or pruned) "
                   "the study should have in all")
    p.add_argument("--minutes", type=float, required=True, metavar="M", help="training minutes per trial")
    p.add_argument("--metric", choices=("fid", "kid", "precision", "modes", "accuracy"), help="the judge (default: "
                   "modes for ring/grid, accuracy for ssgan, else fid; precision trials are not pruned)")
    p.add_argument("--jobs", type=int, default=1, metavar="J", help="worker processes on this machine, each with "
                   "cores/J threads (default 1)")
    p.add_argument("--storage", metavar="URL", help="Optuna storage shared by every worker, e.g. "
                   "postgresql://user@host/db (default: sqlite in OUT/study.db)")
    p.add_argument("--study", metavar="NAME", help="study name in the storage (default: the name of OUT)")
    p.add_argument("--out", metavar="DIR", help="tune folder (default runs/tune-PRESET-DATASET)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override the preset in every trial, e.g. --set train.eval_every=2")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = Parser(prog="gankit", description="Train, watch, evaluate and compare GANs.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    add_train_parser(sub)
    _sample_parser(sub)
    _bench_parser(sub)
    _classify_parser(sub)
    _translate_parsers(sub)
    _eval_parser(sub)
    _judge_parser(sub)
    _compare_parser(sub)
    add_export_parser(sub)
    _tune_parser(sub)
    sub.add_parser("list", help="list presets, models, losses, label modes, metrics and technique switches")
    return parser


def cmd_sample(args: argparse.Namespace) -> int:
    from .refine import describe, sample

    method, settings = refine_args(args)
    path, n, report = sample(args.run_dir, args.num, args.out, seed=args.seed, checkpoint=args.checkpoint,
                             device=args.device, klass=args.klass, vary=args.vary, refine=method,
                             refine_settings=settings, with_report=True)
    print(f"wrote {n} samples to {path}")
    if report is not None:
        print(describe(report))
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
    print(f"wrote {out}; train on it with: gankit train --preset {DEMO_MODELS[args.name]} --dataset {out} "
          "--image-size 32")
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


def cmd_eval(args: argparse.Namespace) -> int:
    from .metrics.api import evaluate, printer

    method, settings = refine_args(args)
    evaluate(args.run_dir, real=args.real, fake=args.fake, metrics=args.metrics, features=args.features, num=args.num,
             checkpoint=args.checkpoint, seed=args.seed, per_class=args.per_class,
             inception_weights=args.inception_weights, real_stats=args.real_stats, data_dir=args.data_dir,
             device=args.device, record=not args.no_record, show=printer(args.json), refine=method,
             refine_settings=settings, split=args.split)
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


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import from_args, print_result

    print_result(from_args(args))
    return 0


COMMANDS = {"tune": cmd_tune, "translate": cmd_translate, "demo": cmd_demo, "classify": cmd_classify, "compare": cmd_compare,
            "train": cmd_train, "sample": cmd_sample, "bench": cmd_bench, "eval": cmd_eval, "judge": cmd_judge,
            "list": cmd_list, "export": cmd_export}


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
    except OSError as e:  # a full disk, a read-only or vanished folder anywhere else: one line, never a traceback
        from .run import disk_error

        print(f"gankit: error: {disk_error(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
