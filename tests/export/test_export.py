"""gankit export: the folder samples (and translates) as its run does, holds G alone, loads without running
code; ONNX matches PyTorch; the Hugging Face Hub path goes through huggingface_hub (stubbed or unreachable:
no test touches the network)."""
from __future__ import annotations

import json
import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import gankit
from gankit.cli import main
from gankit.errors import GankitError
from gankit.export import folder as export_folder
from gankit.export import graph

from ..conftest import TINY_I2I, newest_checkpoint, train_tiny

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def dcgan_ema(tmp_path, idx_dir) -> Path:
    """A tiny DCGAN run that keeps an EMA of G (the export must take the EMA)."""
    return train_tiny("dcgan", tmp_path / "dcgan", data_dir=idx_dir, train={"ema_decay": 0.9})


@pytest.fixture
def exported(dcgan_ema, tmp_path) -> Path:
    assert main(["export", str(dcgan_ema), "--out", str(tmp_path / "exported")]) == 0
    return tmp_path / "exported"


def _npz(source, out: Path, *extra: str) -> np.ndarray:
    assert main(["sample", str(source), "--num", "12", "--seed", "5", "--out", str(out), *extra]) == 0
    return np.load(out)["images"]


def one_line_error(capsys, argv: list) -> str:
    """Run the CLI, expect exit 2 with one line on stderr (no traceback); return that line."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------- the folder
def test_the_folder_samples_what_the_run_samples_and_holds_only_the_ema_generator(dcgan_ema, exported, tmp_path):
    assert sorted(p.name for p in exported.iterdir()) == ["README.md", "config.json", "model.safetensors", "samples.png"]
    assert np.array_equal(_npz(dcgan_ema, tmp_path / "run.npz"), _npz(exported, tmp_path / "exported.npz"))
    tensors, ckpt = load_file(exported / "model.safetensors"), newest_checkpoint(dcgan_ema)
    assert set(tensors) == {f"G.{k}" for k in ckpt["G_ema"]}  # no D, no optimizer state, nothing else
    assert all(torch.equal(tensors[f"G.{k}"], v) for k, v in ckpt["G_ema"].items())  # the EMA weights, not G's
    assert not all(torch.equal(ckpt["G"][k], v) for k, v in ckpt["G_ema"].items())
    meta = json.loads((exported / "config.json").read_text())
    assert meta["ema"] and meta["shape"] == [1, 28, 28] and meta["latent"] == {"dim": 8, "distribution": "normal"}
    assert meta["source"]["step"] == ckpt["step"] and meta["config"]["model"]["name"] == "dcgan"
    G, cfg, _ = gankit.load_generator(exported)
    assert cfg.to_dict() == ckpt["config"] and not G.training


def test_a_labelled_export_keeps_its_class_names(tmp_path, idx_dir):
    run = train_tiny("cgan", tmp_path / "cgan", data_dir=idx_dir)
    out = tmp_path / "exported"
    gankit.export_run(run, out)
    assert json.loads((out / "config.json").read_text())["class_names"][7] == "Sneaker"
    # the folder knows the names even where the dataset does not exist
    assert np.array_equal(_npz(run, tmp_path / "a.npz", "--class", "sneaker"),
                          _npz(out, tmp_path / "b.npz", "--class", "sneaker"))


def test_the_model_card(tmp_path):
    """Front matter the Hub reads, the metrics of the run with their step, the config, the citations."""
    run = train_tiny("toy", tmp_path / "ring", dataset="ring")
    assert main(["eval", str(run), "--num", "300", "--json"]) == 0
    out = tmp_path / "exported"
    gankit.export_run(run, out, license="mit")
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "gankit" and front["license"] == "mit" and "gan-mlp" in front["tags"]
    step = newest_checkpoint(run)["step"]
    metrics = json.loads((run / "metrics.json").read_text())["latest"]["metrics"]
    for name, value in metrics.items():
        assert f"| **{step}** (these weights) | {name} | {value:.4g} |" in card
    assert "Goodfellow et al. 2014" in card and "dataset: ring" in card
    assert json.loads((out / "config.json").read_text())["shape"] == [2]


def test_export_refuses_what_it_cannot_do(dcgan_ema, exported, tmp_path, capsys):
    assert "not empty" in one_line_error(capsys, ["export", str(dcgan_ema), "--out", str(exported)])
    assert "--out DIR" in one_line_error(capsys, ["export", str(dcgan_ema)])
    assert "gankit export needs the run folder" in one_line_error(capsys, ["export", str(exported), "--out",
                                                                          str(tmp_path / "again")])
    assert "drop --checkpoint" in one_line_error(capsys, ["sample", str(exported), "--checkpoint", "step-000002",
                                                          "--out", str(tmp_path / "x.png")])
    assert "use gankit sample" in one_line_error(capsys, ["translate", str(exported), str(tmp_path), "--out",
                                                         str(tmp_path / "t")])
    # refining needs D, which an export does not hold
    assert "--refine needs the run folder" in one_line_error(capsys, ["sample", str(exported), "--refine", "drs",
                                                                      "--out", str(tmp_path / "r.png")])
    with pytest.raises(GankitError, match="no discriminator.*--refine needs the run folder"):
        export_folder.refuse_exported(exported, "--refine")
    export_folder.refuse_exported(dcgan_ema, "--refine")  # a run passes
    # scoring needs the run too; the message says how to score the export's samples instead
    line = one_line_error(capsys, ["eval", str(exported), "--metrics", "kid"])
    assert "is an exported generator" in line and f"gankit sample {exported} --out S.npz" in line


def test_translation_exports_translate_like_their_runs(tmp_path, unpaired):
    run = tmp_path / "cg"
    assert main(["train", "--preset", "cyclegan", "--dataset", str(unpaired), *TINY_I2I, "--max-steps", "2",
                 "--out", str(run)]) == 0
    out = tmp_path / "exported"
    gankit.export_run(run, out)
    assert set(load_file(out / "model.safetensors")) == {f"{g}.{k}" for g in ("G_AB", "G_BA")
                                                          for k in newest_checkpoint(run)["G_AB"]}
    for src in (run, out):
        assert main(["translate", str(src), str(unpaired / "testB"), "--out", str(tmp_path / f"{src.name}-t"),
                     "--direction", "BtoA"]) == 0
    from PIL import Image

    for p in sorted((tmp_path / "cg-t").iterdir()):
        assert np.array_equal(np.array(Image.open(p)), np.array(Image.open(tmp_path / "exported-t" / p.name)))


# ---------------------------------------------------------------- ONNX
def _onnx_vs_torch(out: Path, feeds: dict, torch_out: torch.Tensor, name: str = "model.onnx") -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
    got = sess.run(["images"], {k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in feeds.items()})[0]
    assert got.shape == tuple(torch_out.shape)
    return float(np.abs(got - torch_out.numpy()).max())


@pytest.mark.parametrize("preset", ["resnet-rrb", "cgan"])
def test_onnx_matches_pytorch_for_gans_from_z(preset, tmp_path, idx_dir):
    """Unconditional (a residual G with dropout kept at sampling: the graph's `dropout` input) and labelled."""
    run = train_tiny(preset, tmp_path / preset, data_dir=idx_dir)
    out = tmp_path / "exported"
    info = gankit.export_run(run, out, format="onnx")["onnx"]
    assert info["check"]["max_abs_diff"] <= 1e-4
    G, cfg, _ = gankit.load_generator(out)
    z = torch.randn(5, cfg.model.latent_dim, generator=torch.Generator().manual_seed(1))  # another batch size
    feeds, y = {"z": z}, None
    if preset == "cgan":
        y = torch.tensor([0, 3, 9, 9, 1])
        feeds["class"] = y
    else:
        feeds["dropout"] = np.array(0.0, np.float32)
    with graph.dropout_off(G), torch.no_grad():
        want = G(z) if y is None else G(z, y)
    exact = _onnx_vs_torch(out, feeds, want)
    assert exact <= 1e-4
    if preset == "resnet-rrb":  # a rate above 0 draws dropout noise, as the PyTorch G does at sampling
        assert info["dropout"] == cfg.model.dropout > 0
        noisy = _onnx_vs_torch(out, {**feeds, "dropout": np.array(0.9, np.float32)}, want)
        assert noisy > max(100 * exact, 1e-6)


def test_onnx_matches_pytorch_for_pix2pix(tmp_path, paired):
    run = tmp_path / "p2p"
    assert main(["train", "--preset", "pix2pix", "--dataset", str(paired), *TINY_I2I, "--max-steps", "2",
                 "--out", str(run)]) == 0
    out = tmp_path / "exported"
    assert main(["export", str(run), "--out", str(out), "--format", "onnx"]) == 0
    nets, cfg, _ = export_folder.load_exported_translators(out)
    x = torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with graph.dropout_off(nets["G"]), torch.no_grad():
        want = nets["G"](x)
    assert _onnx_vs_torch(out, {"image": x, "dropout": np.array(0.0, np.float32)}, want) <= 1e-4
    assert "onnxruntime" in (out / "README.md").read_text()


def test_a_graph_that_fails_the_check_is_not_kept(dcgan_ema, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(graph, "TOLERANCE", -1.0)  # no graph can pass
    err = one_line_error(capsys, ["export", str(dcgan_ema), "--out", str(tmp_path / "x"), "--format", "onnx"])
    assert "differs from PyTorch" in err
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".gankit-export-*"))


# ---------------------------------------------------------------- hostile folders
class Payload:
    """Unpickling it would create the file `touched`."""

    def __init__(self, touched: Path):
        self.touched = touched

    def __reduce__(self):
        return (Path.touch, (self.touched,))


def _meta(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def _edit(folder: Path, change) -> None:
    meta = _meta(folder)
    change(meta)
    (folder / "config.json").write_text(json.dumps(meta))


CONFIG_ATTACKS = {
    "unknown key": (lambda m: m.update(hook="os.system"), "unknown key 'hook'"),
    "unknown config key": (lambda m: m["config"]["model"].update(evil=1), "unknown config key 'model.evil'"),
    "huge width": (lambda m: m["config"]["model"].update(g_width=10**9), "g_width"),
    "a million layers": (lambda m: m["config"]["model"].update(g_hidden=[8] * 10**6), "entries"),
    "huge image": (lambda m: (m["config"]["model"].update(g_width=4096), m.update(shape=[3, 4096, 4096])),
                   "not this config's generator"),  # trillions of weights: compared on fake tensors, never built
    "other classes": (lambda m: m["conditioning"].update(num_classes=10**9), "conditioning"),
}


def test_a_hostile_config_json_is_one_line(exported, capsys, tmp_path):
    for attack, (change, message) in CONFIG_ATTACKS.items():
        folder = shutil.copytree(exported, tmp_path / attack)
        _edit(folder, change)
        with pytest.raises(GankitError, match=message):
            gankit.load_generator(folder)
        one_line_error(capsys, ["sample", str(folder), "--out", str(tmp_path / "x.png")])


def test_config_json_is_read_as_json_only(exported, tmp_path, capsys):
    touched = tmp_path / "touched"
    for text in (f"!!python/object/apply:os.system ['touch {touched}']",  # a YAML tag
                 pickle.dumps(Payload(touched)).decode("latin-1"),  # a pickle
                 "[" * 100_000 + "]" * 100_000,  # nesting deeper than the parser's recursion
                 " " * (5 << 20) + "{}"):  # over the size limit
        (exported / "config.json").write_text(text, encoding="latin-1")
        with pytest.raises(GankitError):
            gankit.load_generator(exported)
    assert not touched.exists()
    assert "limit" in one_line_error(capsys, ["sample", str(exported), "--out", str(tmp_path / "x.png")])


def test_hostile_weights_are_refused_without_running_code(exported, tmp_path, capsys):
    touched, weights = tmp_path / "touched", exported / "model.safetensors"
    good = {k: v.clone() for k, v in load_file(weights).items()}  # not views of the file we overwrite
    torch.save({"G": Payload(touched)}, weights)  # a pickle renamed model.safetensors
    with pytest.raises(GankitError, match="not a safetensors file"):
        gankit.load_generator(exported)
    assert not touched.exists()
    first = next(iter(good))
    for tensors, message in (({**good, first: good[first].reshape(-1)}, f"tensor '{first}' .* has shape"),
                             ({k: v for k, v in good.items() if k != first}, f"lacks '{first}'"),
                             ({**good, "D.net.0.weight": torch.zeros(2)}, "holds 'D.net.0.weight'"),
                             ({**good, first: good[first].double()}, "torch.float64")):
        save_file(tensors, weights)
        with pytest.raises(GankitError, match=message):
            gankit.load_generator(exported)
    one_line_error(capsys, ["sample", str(exported), "--out", str(tmp_path / "x.png")])


# ---------------------------------------------------------------- the Hugging Face Hub
@pytest.fixture
def hub(monkeypatch, tmp_path):
    """huggingface_hub with its cache in tmp_path, in a folder where no USER/ subfolder exists."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants  # a submodule the package loads lazily
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.chdir(tmp_path)
    return huggingface_hub


def test_load_generator_resolves_a_hub_repo_through_snapshot_download(exported, hub, monkeypatch, tmp_path):
    calls = []

    def snapshot_download(repo_id, repo_type=None, allow_patterns=None, **kw):
        calls.append((repo_id, repo_type, allow_patterns))
        snap = tmp_path / "hf-cache" / "snapshot"
        snap.mkdir(parents=True)
        for name in allow_patterns:
            shutil.copy(exported / name, snap / name)
        return str(snap)

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    G, cfg, _ = gankit.load_generator("someone/a-gan")
    G0, _, _ = gankit.load_generator(exported)
    assert calls == [("someone/a-gan", "model", ["config.json", "model.safetensors"])]
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G0.state_dict().values()))
    a = gankit.generate(G, cfg, 6, seed=2)
    assert torch.equal(a, gankit.generate(G0, cfg, 6, seed=2))


def test_an_unreachable_hub_is_one_line_naming_the_repo(hub, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    err = one_line_error(capsys, ["sample", "someone/a-gan", "--out", str(tmp_path / "x.png")])
    assert "'someone/a-gan'" in err and "could not be reached" in err
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(GankitError, match="someone/a-gan.*HF_HUB_OFFLINE=1"):
        gankit.load_generator("someone/a-gan")


def test_push_to_hub_uploads_the_folder(dcgan_ema, hub, monkeypatch, capsys):
    pushed = {}

    def upload_folder(repo_id, folder_path, **kw):
        pushed.update(repo=repo_id, files=sorted(p.name for p in Path(folder_path).iterdir()), folder=folder_path)

    monkeypatch.setattr(hub, "create_repo", lambda repo_id, **kw: f"https://huggingface.co/{repo_id}")
    monkeypatch.setattr(hub, "upload_folder", upload_folder)
    assert main(["export", str(dcgan_ema), "--push-to-hub", "someone/a-gan"]) == 0
    assert pushed["repo"] == "someone/a-gan" and "model.safetensors" in pushed["files"]
    assert not Path(pushed["folder"]).exists()  # the temporary folder is gone
    assert "pushed to https://huggingface.co/someone/a-gan" in capsys.readouterr().out
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", True)
    assert "HF_HUB_OFFLINE" in one_line_error(capsys, ["export", str(dcgan_ema), "--push-to-hub", "someone/a-gan"])


def test_expected_tensors_cost_no_memory():
    """The shape check builds networks on fake tensors: a config of trillions of weights costs nothing."""
    cfg = gankit.build_config("dcgan", overrides=[{"model": {"g_width": 4096}}])
    want = export_folder.expected_tensors(cfg, (3, 4096, 4096), 0)
    assert sum(math.prod(s) for s, _ in want.values()) > 10**12
