"""The model card (README.md) of an exported generator: YAML front matter the Hugging Face Hub reads
(library_name, license, tags, pipeline tag, datasets), what the generator makes, its sample grid, the
metrics of its run with where each number comes from, how to load it (gankit, onnxruntime), the training
config, and the papers of the methods it was trained with (CITATIONS, keyed by config switch)."""
from __future__ import annotations

from typing import Callable

import yaml

from ..config import Config
from ..config_check import FEATURE_MATCHING_ON

# config switch -> (what it is, reference)
CITATIONS: dict[str, tuple[str, str]] = {
    "model.name=gan-mlp": ("GAN, MLP networks", "Goodfellow et al. 2014, Generative Adversarial Nets, arXiv:1406.2661"),
    "model.name=dcgan": ("DCGAN networks", "Radford, Metz & Chintala 2016, Unsupervised Representation Learning with "
                         "Deep Convolutional GANs, arXiv:1511.06434"),
    "model.name=resnet-rrb": ("residual generator", "He et al. 2016, Deep Residual Learning for Image Recognition, "
                              "arXiv:1512.03385"),
    "model.name=r3gan": ("R3GAN networks", "Huang et al. 2024, The GAN is dead; long live the GAN! A Modern GAN "
                         "Baseline, arXiv:2501.05441"),
    "model.name=r3gan-mlp": ("R3GAN's residual blocks, dense", "Huang et al. 2024, arXiv:2501.05441"),
    "model.name=pix2pix": ("Pix2Pix: U-Net G, PatchGAN D", "Isola et al. 2017, Image-to-Image Translation with "
                           "Conditional Adversarial Networks, arXiv:1611.07004"),
    "model.name=cyclegan": ("CycleGAN", "Zhu et al. 2017, Unpaired Image-to-Image Translation using Cycle-Consistent "
                            "Adversarial Networks, arXiv:1703.10593"),
    "loss.name=nonsat": ("non-saturating GAN loss", "Goodfellow et al. 2014, arXiv:1406.2661"),
    "loss.name=minimax": ("minimax GAN loss", "Goodfellow et al. 2014, arXiv:1406.2661"),
    "loss.name=lsgan": ("least-squares loss", "Mao et al. 2017, Least Squares Generative Adversarial Networks, "
                        "arXiv:1611.04076"),
    "loss.name=wgan": ("Wasserstein loss, weight clipping", "Arjovsky, Chintala & Bottou 2017, Wasserstein GAN, "
                       "arXiv:1701.07875"),
    "loss.name=wgan-gp": ("gradient penalty", "Gulrajani et al. 2017, Improved Training of Wasserstein GANs, "
                          "arXiv:1704.00028"),
    "loss.name=hinge": ("hinge loss", "Lim & Ye 2017, Geometric GAN, arXiv:1705.02894"),
    "loss.name=rpgan": ("relativistic pairing loss", "Jolicoeur-Martineau 2019, The relativistic discriminator, "
                        "arXiv:1807.00734"),
    "cond.mode=cgan": ("conditional GAN", "Mirza & Osindero 2014, Conditional Generative Adversarial Nets, "
                       "arXiv:1411.1784"),
    "cond.d=projection": ("projection discriminator", "Miyato & Koyama 2018, cGANs with Projection Discriminator, "
                          "arXiv:1802.05637"),
    "cond.g=cbn": ("conditional BatchNorm", "de Vries et al. 2017, Modulating early visual processing by language, "
                   "arXiv:1707.00683"),
    "cond.mode=acgan": ("AC-GAN", "Odena, Olah & Shlens 2017, Conditional Image Synthesis with Auxiliary Classifier "
                        "GANs, arXiv:1610.09585"),
    "cond.mode=infogan": ("InfoGAN", "Chen et al. 2016, InfoGAN, arXiv:1606.03657"),
    "cond.mode=ssgan": ("semi-supervised K+1 GAN", "Salimans et al. 2016, Improved Techniques for Training GANs, "
                        "arXiv:1606.03498"),
    "tech.spectral_norm": ("spectral normalization", "Miyato et al. 2018, Spectral Normalization for Generative "
                           "Adversarial Networks, arXiv:1802.05957"),
    "tech.r1_gamma": ("R1 penalty", "Mescheder, Geiger & Nowozin 2018, Which Training Methods for GANs do actually "
                      "Converge?, arXiv:1801.04406"),
    "tech.r2_gamma": ("R2 penalty", "Huang et al. 2024, arXiv:2501.05441"),
    "tech.pack": ("PacGAN", "Lin et al. 2018, PacGAN, arXiv:1712.04086"),
    "tech.diffaugment": ("DiffAugment", "Zhao et al. 2020, Differentiable Augmentation for Data-Efficient GAN "
                         "Training, arXiv:2006.10738"),
    "tech.unrolled_steps": ("unrolled GAN", "Metz et al. 2017, Unrolled Generative Adversarial Networks, "
                            "arXiv:1611.02163"),
    "tech.instance_noise": ("instance noise", "Sønderby et al. 2017, Amortised MAP Inference for Image "
                            "Super-resolution, arXiv:1610.04490"),
    "tech.replay_size": ("experience replay", "Shrivastava et al. 2017, Learning from Simulated and Unsupervised "
                         "Images through Adversarial Training, arXiv:1612.07828"),
    **{k: (what, "Salimans et al. 2016, Improved Techniques for Training GANs, arXiv:1606.03498") for k, what in (
        ("tech.feature_matching", "feature matching"), ("model.minibatch_discrimination", "minibatch discrimination"),
        ("model.virtual_batchnorm", "virtual batch normalization"), ("tech.label_smoothing", "one-sided label smoothing"),
        ("tech.historical_averaging", "historical averaging"))},
    "model.minibatch_std": ("minibatch standard deviation", "Karras et al. 2018, Progressive Growing of GANs, "
                            "arXiv:1710.10196"),
    "train.ema_decay": ("EMA of G's weights", "Yazıcı et al. 2019, The Unusual Effectiveness of Averaging in GAN "
                        "Training, arXiv:1806.04498"),
}

# citation keys that a predicate of the config switches on (the others are `section.key=value`)
_SWITCHED: dict[str, Callable[[Config], bool]] = {
    "tech.spectral_norm": lambda c: c.tech.spectral_norm, "tech.r1_gamma": lambda c: bool(c.tech.r1_gamma),
    "tech.r2_gamma": lambda c: bool(c.tech.r2_gamma), "tech.pack": lambda c: c.tech.pack > 1,
    "tech.diffaugment": lambda c: bool(c.tech.diffaugment), "tech.unrolled_steps": lambda c: c.tech.unrolled_steps > 0,
    "tech.instance_noise": lambda c: c.tech.instance_noise > 0, "tech.replay_size": lambda c: c.tech.replay_size > 0,
    "model.minibatch_std": lambda c: c.model.minibatch_std,
    "train.ema_decay": lambda c: bool(c.train.ema_decay) or c.train.ema_half_life is not None,
    "tech.feature_matching": lambda c: c.tech.feature_matching in FEATURE_MATCHING_ON,
    "model.minibatch_discrimination": lambda c: c.model.minibatch_discrimination > 0,
    "model.virtual_batchnorm": lambda c: c.model.virtual_batchnorm, "tech.label_smoothing": lambda c: c.tech.label_smoothing < 1,
    "tech.historical_averaging": lambda c: c.tech.historical_averaging > 0,
}
_CLASS_MODES = ("cgan", "acgan")  # the modes whose G takes a class (cond.g applies)
_CLASS_D_MODES = ("cgan",)  # the modes whose D sees the class (cond.d applies)


def citations(cfg: Config) -> list[str]:
    """The CITATIONS keys of the methods cfg trains with, in table order."""
    values = {f"model.name={cfg.model.name}", f"loss.name={cfg.loss.name}", f"cond.mode={cfg.cond.mode}"}
    if cfg.cond.mode in _CLASS_MODES:
        values |= {f"cond.g={cfg.cond.g}"}
    if cfg.cond.mode in _CLASS_D_MODES:
        values |= {f"cond.d={cfg.cond.d}"}
    if cfg.is_translation:
        values -= {f"loss.name={cfg.loss.name}"}
    return [k for k in CITATIONS if k in values or (k in _SWITCHED and _SWITCHED[k](cfg))]


# ---------------------------------------------------------------- front matter
HUB_DATASETS = {"fashion-mnist": "zalando-datasets/fashion_mnist", "mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10",
                "stacked-fashion-mnist": "zalando-datasets/fashion_mnist", "stacked-mnist": "ylecun/mnist"}


def second_input(cfg: Config, num_classes: int) -> bool:
    """G takes a second input beside z (a class, or InfoGAN's codes)."""
    import torch

    from ..conditioning import mode_of

    return not cfg.is_translation and mode_of(cfg.cond, num_classes).sample(1, torch.Generator()) is not None


def front_matter(meta: dict, cfg: Config, license: str) -> str:
    """The YAML block the Hub reads: library, license, tags, pipeline tag (where one fits), datasets."""
    from ..conditioning import mode_of

    k = meta["conditioning"]["num_classes"]
    tags = ["gankit", "gan", "pytorch", cfg.model.name]
    tags += [] if cfg.is_translation else [f"loss-{cfg.loss.name}"]
    tags += [cfg.cond.mode] if mode_of(cfg.cond, k).active else []
    tags += ["onnx"] if meta.get("onnx") else []
    fm: dict = {"library_name": "gankit", "license": license, "tags": tags}
    if cfg.is_translation:
        fm["pipeline_tag"] = "image-to-image"
    elif len(meta["shape"]) == 3 and not second_input(cfg, k):
        fm["pipeline_tag"] = "unconditional-image-generation"
    if cfg.data.dataset in HUB_DATASETS:
        fm["datasets"] = [HUB_DATASETS[cfg.data.dataset]]
    return "---\n" + yaml.safe_dump(fm, sort_keys=False, allow_unicode=True) + "---\n"


# ---------------------------------------------------------------- the body
def _describe(meta: dict, cfg: Config) -> str:
    shape = "×".join(map(str, meta["shape"]))
    src = meta["source"]
    nets = " and ".join(meta["networks"])
    weights = f"the exponential moving average of {nets}'s weights" if meta.get("ema") else f"{nets}'s trained weights"
    trained = (f"trained with gankit {meta.get('gankit_version', '')} on "
               f"`{cfg.data.dataset}`: {weights} at step {src['step']} of run `{src['run']}` ({src['checkpoint']})")
    if cfg.is_translation:
        ways = " and ".join(f"{d} ({n})" for d, n in (meta.get("directions") or {}).items())
        return f"A {cfg.model.name} image-to-image generator, {trained}. It translates {shape} images in [-1, 1]: {ways}."
    latent = meta["latent"]
    z = f"z ~ {LATENTS[latent['distribution']][0]} of {latent['dim']} dimensions"
    what = "2-D points" if len(meta["shape"]) == 1 else f"{shape} images in [-1, 1]"
    text = f"A `{cfg.model.name}` generator (loss `{cfg.loss.name}`), {trained}. It maps {z} to {what}."
    if second_input(cfg, meta["conditioning"]["num_classes"]):
        names = meta.get("class_names") or []
        text += (f" It also takes the class to draw: {', '.join(names)}." if names and cfg.cond.mode in _CLASS_MODES
                 else f" It also takes InfoGAN codes (categorical {cfg.cond.cat_codes}, {cfg.cond.cont_codes} continuous).")
    return text


def _cell(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v).replace("|", "/")[:60]


def metrics_section(rows: list[dict], step: int) -> str:
    """The run's recorded evaluations (newest 10), each metric with its features, sets and time."""
    if not rows:
        return ("No evaluation was recorded for this run (`gankit eval RUN` or `--eval-every` write the run's "
                "metrics.json, which the next export puts here).\n")
    lines = ["From the run's `metrics.json`; rows of other steps describe the run's other checkpoints, not these "
             "weights.\n", "| step | metric | value | features | real set | generated | when |", "|---|---|---|---|---|---|---|"]
    for r in rows[-10:][::-1]:
        f, real, fake = r.get("features") or {}, r.get("real") or {}, r.get("fake") or {}
        at = f"**{r.get('step')}** (these weights)" if r.get("step") == step else str(r.get("step", "?"))
        feats = f"{f.get('extractor', '-')} ({f.get('weights', '-')})" if f else "-"
        real_set = (f"{real.get('source')} {real.get('split', real.get('kind', ''))}, n={real.get('n')}" if real
                    else f"held-out {r.get('split', '')}, n={r.get('n', '?')}")
        gen = f"n={fake.get('n')}, seed={fake.get('seed')}" if fake else "-"
        for name, v in (r.get("metrics") or {}).items():
            lines.append(f"| {at} | {_cell(name)} | {_cell(v)} | {_cell(feats)} | {_cell(real_set)} | {_cell(gen)} | "
                         f"{_cell(r.get('time', '-'))} |")
    return "\n".join(lines) + "\n"


LATENTS = {"normal": ("N(0, I)", "rng.standard_normal(({n}, {d}), dtype=np.float32)"),  # text, numpy draw
           "uniform": ("U(-1, 1)", "rng.uniform(-1, 1, ({n}, {d})).astype(np.float32)")}


def _class_feed(meta: dict, cfg: Config, n: int) -> str:
    return f"feeds['class'] = (np.arange({n}) % {meta['conditioning']['num_classes']}).astype(np.int64)  # class indices"


def _code_feed(meta: dict, cfg: Config, n: int) -> str:
    cats = [f"np.eye({k}, dtype=np.float32)[rng.integers({k}, size={n})]" for k in cfg.cond.cat_codes]
    cont = [f"rng.uniform(-1, 1, ({n}, {cfg.cond.cont_codes})).astype(np.float32)"] if cfg.cond.cont_codes else []
    return f"feeds['code'] = np.concatenate([{', '.join(cats + cont)}], 1)  # one-hot categories, then continuous"


def _dropout_feed(meta: dict, cfg: Config, n: int) -> str:
    return f"feeds['dropout'] = np.array({meta['onnx']['dropout']}, np.float32)  # as trained; 0: deterministic"


def _first_feed(meta: dict, cfg: Config, n: int) -> str:
    if cfg.is_translation:
        c, s = meta["shape"][0], meta["shape"][1]
        return f"feeds = {{'image': x}}  # x: float32 [N, {c}, {s}, {s}] in [-1, 1], domain A"
    latent = meta["latent"]
    return f"feeds = {{'z': {LATENTS[latent['distribution']][1].format(n=n, d=latent['dim'])}}}"


FEEDS = {"z": _first_feed, "image": _first_feed, "class": _class_feed, "code": _code_feed, "dropout": _dropout_feed}


def _onnx_feeds(meta: dict, cfg: Config) -> list[str]:
    """The lines of the ONNX snippet that make its inputs (16 draws)."""
    return [FEEDS[i["name"]](meta, cfg, 16) for i in meta["onnx"]["inputs"]]


def _onnx_section(meta: dict, cfg: Config) -> str:
    o = meta["onnx"]
    first = o["files"][next(iter(o["files"]))]
    return (f"\nWith onnxruntime alone (`{first}`, opset {o['opset']}; checked at export against PyTorch: largest "
            f"difference {o['check']['max_abs_diff']:.2g}):\n\n```python\nimport numpy as np, onnxruntime as ort\n"
            f"rng = np.random.default_rng(0)\nsess = ort.InferenceSession('{first}')\n" + "\n".join(_onnx_feeds(meta, cfg))
            + f"\nimages = sess.run(['images'], feeds)[0]  # [N, {', '.join(map(str, meta['shape']))}] in [-1, 1]\n```\n")


def usage_section(meta: dict, cfg: Config) -> str:
    """gankit's Python API and command line, and onnxruntime when the folder has a graph."""
    shape, k = ", ".join(map(str, meta["shape"])), meta["conditioning"]["num_classes"]
    if cfg.is_translation:
        way = " [--direction BtoA]" if len(meta.get("directions") or {}) > 1 else ""
        text = f"```bash\ngankit translate PATH_OR_USER/REPO INPUT_DIR --out OUT_DIR{way}\n```\n"
    else:
        classes = second_input(cfg, k) and cfg.cond.mode in _CLASS_MODES
        draw = f", classes=torch.arange(16) % {k}" if classes else ""
        text = (f"```python\nimport {'torch, ' if classes else ''}gankit\n\n"
                "G, cfg, _ = gankit.load_generator(\"PATH_OR_USER/REPO\")  # this folder, or its Hugging Face Hub repo\n"
                f"x = gankit.generate(G, cfg, 16, seed=0{draw})  # [16, {shape}] in [-1, 1]\n```\n\n"
                f"```bash\ngankit sample PATH_OR_USER/REPO --num 64 --out samples.png{' --class NAME' if classes else ''}\n```\n")
    return text + (_onnx_section(meta, cfg) if meta.get("onnx") else "")


def model_card(meta: dict, cfg: Config, rows: list[dict], has_samples: bool, license: str) -> str:
    """README.md of an exported folder."""
    title = f"{cfg.model.name} generator trained on {cfg.data.dataset.rsplit('/', 1)[-1]}"
    cites = "\n".join(f"| `{k}` | {CITATIONS[k][0]} | {CITATIONS[k][1]} |"
                      for k in citations(cfg))
    parts = [front_matter(meta, cfg, license), f"# {title}\n", _describe(meta, cfg) + "\n",
             "![samples](samples.png)\n" if has_samples else "",
             "## Metrics\n", metrics_section(rows, meta["source"]["step"]),
             "## How to use\n", usage_section(meta, cfg),
             "## Training config\n", "The run's full config (also in `config.json`):\n",
             "```yaml\n" + yaml.safe_dump(meta["config"], sort_keys=False) + "```\n",
             "## Methods and citations\n", "| switch | method | reference |\n|---|---|---|\n" + cites + "\n"]
    return "\n".join(p for p in parts if p)
