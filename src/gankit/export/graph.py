"""ONNX export of an exported generator, checked with onnxruntime before it is kept.

The graph takes what the generator takes, with a dynamic batch axis: z [N, latent] for a GAN, plus the
class [N] (int64) of a class-conditional run or the codes [N, codes] of an InfoGAN; the image [N,C,H,W] in
[-1, 1] for Pix2Pix and CycleGAN (model.onnx translates A to B; CycleGAN adds model-BtoA.onnx). Its output
`images` is [N, ...] in [-1, 1] ([N, 2] points for ring and grid).

Generators whose dropout stays on at sampling (Pix2Pix's U-Net, `model.dropout_at_sampling`) are random:
their graph takes one more input, `dropout`, a float scalar: the rate they were trained with draws fresh
noise at each run as gankit does; 0 makes the graph deterministic. The check compares onnxruntime with
PyTorch on the same random inputs at batch sizes 1 and 3 (the export traced batch 2), with that dropout
off, and refuses (deletes) a graph whose largest absolute difference exceeds TOLERANCE.

Exporter: torch.onnx.export(dynamo=True), the torch.export-based exporter (onnxscript). The TorchScript
exporter (dynamo=False) cannot export R3GAN's resampling convolutions (kernel of unknown shape).
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from ..config import Config
from ..errors import GankitError
from .folder import ONNX, Exported

TOLERANCE = 1e-4  # largest |onnxruntime - PyTorch| accepted
EXPORT_BATCH, CHECK_BATCHES, MAX_BATCH = 2, (1, 3), 1 << 20
SAMPLE = "sample"  # the one "direction" of a GAN from z
DTYPES = {"class": "int64"}  # inputs that are not float32


class RateDropout(nn.Module):
    """Dropout kept on at sampling whose rate is a graph input (box[0], set by OnnxGenerator at each run; a
    plain list, not a module attribute, which torch.export would take for state): whole feature maps
    (spatial, as Dropout2d) or single values. Rate 0 keeps every value, unscaled."""

    def __init__(self, spatial: bool, box: list):
        super().__init__()
        self.spatial, self.box = spatial, box

    def forward(self, x: Tensor) -> Tensor:
        rate = self.box[0]
        noise_of = x[(slice(None), slice(None)) + (slice(0, 1),) * (x.dim() - 2)] if self.spatial else x  # [N,C,1,1]
        keep = (torch.rand_like(noise_of) >= rate).to(x.dtype)
        return x * keep / (1 - rate)


class OnnxGenerator(nn.Module):
    """What the graph computes: call(net, inputs); the last input is the dropout rate when net has
    RateDropout layers (box: the list they read it from; None without)."""

    def __init__(self, net: nn.Module, call: Callable, box: Optional[list]):
        super().__init__()
        self.net, self.call, self.box = net, call, box

    def forward(self, *inputs: Tensor) -> Tensor:
        if self.box is not None:
            *inputs, rate = inputs
            self.box[:] = [rate]
        return self.call(self.net, list(inputs))


@dataclass
class Inputs:
    """The batch inputs of one generator: their names, shapes (for the card), how to draw n of them, and
    how the PyTorch generator takes them."""
    names: list
    shapes: list
    make: Callable[[int, torch.Generator], list]
    call: Callable[[nn.Module, list], Tensor]


def inputs_of(ex: Exported) -> Inputs:
    """The inputs of the exported generator(s) (the same for both CycleGAN directions)."""
    cfg, shape = ex.cfg, list(ex.shape)
    if cfg.is_translation:
        return Inputs(["image"], [["batch", *shape]], lambda n, g: [torch.rand(n, *shape, generator=g) * 2 - 1],
                      lambda net, x: net(x[0]))
    from ..conditioning import mode_of
    from ..models import sample_z

    cond, m = mode_of(cfg.cond, ex.num_classes), cfg.model
    y = cond.sample(1, torch.Generator())
    names, shapes = ["z"], [["batch", m.latent_dim]]
    if y is not None:  # class indices [N] (int64) or InfoGAN codes [N, codes]
        names.append("class" if y.dim() == 1 else "code")
        shapes.append(["batch", *y.shape[1:]])

    def make(n: int, g: torch.Generator) -> list:
        y = cond.sample(n, g)
        return [sample_z(n, m.latent_dim, m.latent_dist, generator=g)] + ([] if y is None else [y])

    return Inputs(names, shapes, make, lambda net, x: cond.generate(net, x[0], x[1] if len(x) > 1 else None))


# ---------------------------------------------------------------- dropout kept on at sampling
def _sampling_dropouts(net: nn.Module) -> list[tuple[str, nn.Module, bool]]:
    """(name, module, spatial) of each dropout of net that stays on at sampling."""
    from ..models.layers import SpatialDropout
    from ..models.translation import AlwaysDropout

    spatial = {SpatialDropout: True, AlwaysDropout: False}
    return [(name, m, spatial[type(m)]) for name, m in net.named_modules()
            if type(m) in spatial and m.p > 0 and m.at_sampling]


def _graph_module(net: nn.Module, call: Callable) -> tuple[OnnxGenerator, Optional[float]]:
    """A copy of net whose sampling dropouts take their rate from the graph input, and that rate."""
    net = copy.deepcopy(net).eval()
    found = _sampling_dropouts(net)
    rates = {m.p for _, m, _ in found}
    if len(rates) > 1:
        raise GankitError(f"the generator's dropout layers have different rates {sorted(rates)}; ONNX export takes "
                          "one rate; export with --format safetensors")
    box: Optional[list] = [] if found else None
    for name, _, spatial in found:
        parent, _, child = name.rpartition(".")
        setattr(net.get_submodule(parent), child, RateDropout(spatial, box))
    return OnnxGenerator(net, call, box), (rates.pop() if rates else None)


@contextlib.contextmanager
def dropout_off(net: nn.Module):
    """net with its sampling dropouts off (as the graph runs at rate 0), restored after."""
    found = _sampling_dropouts(net)
    for _, m, _ in found:
        m.at_sampling = False
    try:
        yield net
    finally:
        for _, m, _ in found:
            m.at_sampling = True


# ---------------------------------------------------------------- export and check
def _export(graph: OnnxGenerator, args: list, names: list, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    rate = [] if graph.box is None else ["dropout"]  # a scalar input, no batch axis
    dims = (tuple([{0: batch} for _ in names] + [None for _ in rate]),)  # forward(*inputs): one varargs entry
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, tuple(args), input_names=names + rate,
                                        output_names=["images"], dynamic_shapes=dims, dynamo=True, external_data=False,
                                        verbose=False)
            program.save(str(path))
    except Exception as e:  # the exporter raises many kinds (torch.export, onnxscript): one line each
        path.unlink(missing_ok=True)
        raise GankitError(f"ONNX export of the generator failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}); "
                          "export with --format safetensors") from None


def _check(path: Path, net: nn.Module, spec: Inputs, rate: Optional[float]) -> float:
    """The largest |onnxruntime - PyTorch| over CHECK_BATCHES (dropout off); deletes the graph and raises when
    it exceeds TOLERANCE or the graph fails to run."""
    import onnxruntime as ort

    worst = 0.0
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for n in CHECK_BATCHES:
            inputs = spec.make(n, torch.Generator().manual_seed(n))
            feeds = {name: t.numpy() for name, t in zip(spec.names, inputs)}
            extra = {} if rate is None else {"dropout": np.array(0.0, np.float32)}
            got = sess.run(None, {**feeds, **extra})[0]
            with dropout_off(net), torch.no_grad():
                want = spec.call(net, inputs).numpy()
            worst = max(worst, float(np.abs(got - want).max()) if got.shape == want.shape else float("inf"))
        if rate is not None:  # the random graph runs and gives numbers
            noisy = sess.run(None, {**feeds, "dropout": np.array(rate, np.float32)})[0]
            worst = worst if np.isfinite(noisy).all() else float("inf")
    except Exception as e:  # onnxruntime's errors (Fail, InvalidGraph, ...) are not one hierarchy
        path.unlink(missing_ok=True)
        raise GankitError(f"onnxruntime could not run the exported graph ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:160]}); export with --format safetensors") from None
    if not worst <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise GankitError(f"the ONNX graph differs from PyTorch by up to {worst:.3g} (more than {TOLERANCE:g}) on the "
                          f"same inputs; not kept: export with --format safetensors")
    return worst


def _directions(cfg: Config) -> dict[str, str]:
    """direction -> generator name: {sample: G} for a GAN; AtoB (and BtoA) for image-to-image."""
    if not cfg.is_translation:
        return {SAMPLE: "G"}
    from ..models.translation import TRANSLATORS

    return dict(TRANSLATORS.get(cfg.model.name).directions)


def export_onnx(nets: dict[str, nn.Module], ex: Exported, folder: Path) -> dict:
    """Write model.onnx (and model-BtoA.onnx for CycleGAN) into folder, each checked; returns what
    config.json records about them."""
    import onnx
    import onnxruntime as ort

    spec, files, worst, rate = inputs_of(ex), {}, 0.0, None
    for i, (direction, name) in enumerate(_directions(ex.cfg).items()):
        files[direction] = ONNX if i == 0 else f"model-{direction}.onnx"
        graph, rate = _graph_module(nets[name], spec.call)
        args = spec.make(EXPORT_BATCH, torch.Generator().manual_seed(0)) + ([] if rate is None else [torch.tensor(rate)])
        _export(graph, args, spec.names, folder / files[direction])
        worst = max(worst, _check(folder / files[direction], nets[name], spec, rate))
    opset = next(o.version for o in onnx.load(str(folder / ONNX), load_external_data=False).opset_import if not o.domain)
    inputs = [{"name": n, "shape": s, "dtype": DTYPES.get(n, "float32")} for n, s in zip(spec.names, spec.shapes)]
    if rate is not None:
        inputs.append({"name": "dropout", "shape": [], "dtype": "float32", "default": rate})
    return {"files": files, "inputs": inputs, "output": {"name": "images", "shape": ["batch", *ex.shape]},
            "dropout": rate, "opset": opset, "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
            "check": {"onnxruntime": ort.__version__, "max_abs_diff": worst, "tolerance": TOLERANCE,
                      "batches": list(CHECK_BATCHES)}}
