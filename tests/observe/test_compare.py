"""`gankit compare`: the differences between runs, and a page."""


import gankit

from ..conftest import tiny_config


def test_compare_lists_differences_and_writes_a_page(tmp_path, capsys):
    from gankit.cli import main

    runs = []
    for name, lr in (("a", 1e-4), ("b", 1e-3)):
        cfg = tiny_config("toy", tmp_path / name, dataset="ring", optim={"lr_g": lr}, steps=6)
        runs.append(gankit.train(cfg, quiet=True)["run"])
    assert main(["compare", *runs, "--out", str(tmp_path / "cmp.html")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "optim.lr_g" in out[0] and "steps" in out[0] and "train.out" not in out[0]
    assert out[2].split()[:2] == ["a", "0.0001"] and out[3].split()[:2] == ["b", "0.001"]
    page = (tmp_path / "cmp.html").read_text()
    assert "data:image/png;base64," in page and "optim.lr_g" in page
    assert main(["compare", runs[0]]) == 2
