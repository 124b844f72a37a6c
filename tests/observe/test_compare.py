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


def test_scores_against_the_test_split_are_labelled_so_they_are_not_read_as_training_scores():
    from gankit.observe.compare import summarize

    on_test = summarize({"log": [], "history": [{"metrics": {"kid": 25.0}, "real": {"split": "test"}}]})
    on_train = summarize({"log": [], "history": [{"metrics": {"kid": 28.0}, "real": {"split": "train"}}]})
    assert on_test["last kid (test)"] == 25.0 and "last kid" not in on_test and on_train["last kid"] == 28.0
