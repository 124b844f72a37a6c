import json

import torch

from gankit.cli import main


def test_bench_speed_json(idx_dir, capsys, monkeypatch):
    monkeypatch.setenv("GANKIT_DATA", str(idx_dir))
    assert main(["bench", "speed", "--preset", "gan-mlp", "--seconds", "0.5", "--batch-size", "16", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["variant"] for r in rows] == ["default", "loop-optim", "channels-last", "channels-first"]
    assert all(r["preset"] == "gan-mlp" and r["img_per_s"] > 0 and 0 < r["share_of_peak"] < 1.5 for r in rows)
    assert main(["bench", "speed", "--preset", "gan-mlp", "--seconds", "0.3", "--options", "default,batch-128"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2].split()[:2] == ["gan-mlp", "default"] and table[3].split()[:2] == ["gan-mlp", "batch-128"]
    if not torch.cuda.is_available():
        assert main(["bench", "speed", "--preset", "gan-mlp", "--seconds", "0.3", "--options", "bf16"]) == 2
        assert "needs a CUDA GPU" in capsys.readouterr().err


def test_bench_speed_refuses_unknown_options(capsys):
    assert main(["bench", "speed", "--options", "warp-drive"]) == 2
    assert "unknown speed option 'warp-drive'" in capsys.readouterr().err


def test_bench_speed_times_the_preset_with_the_overrides_given():
    from gankit.bench.speed import speed

    plain = speed("toy", seconds=0.05, device="cpu")
    wider = speed("toy", seconds=0.05, device="cpu", overrides=[{"model": {"g_hidden": [512, 512, 512]}}])
    assert wider["gflop_per_step"] > plain["gflop_per_step"]  # the override reached the timed step
