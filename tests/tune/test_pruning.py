"""The median pruner reads a trial's --eval-every values while it trains and stops a bad trial early, cleanly."""
from __future__ import annotations

import json

from gankit.run import list_step_checkpoints

from ..conftest import read_log
from .conftest import read_study, tune_tiny

STEPS_PER_EPOCH = 5  # TINY: 640 points, batch 128


def test_a_trial_below_the_median_is_stopped_at_its_second_evaluation(tmp_path, space):
    import optuna

    out = tmp_path / "tune"
    tune_tiny(space, out, 1)
    study = read_study(out)
    real = study.trials[0]
    for _ in range(4):  # four finished trials that scored 100 at every evaluation: any toy run is below them
        study.add_trial(optuna.trial.create_trial(params=real.params, distributions=real.distributions, value=100.0,
                                                  intermediate_values={k: 100.0 for k in range(1, 20)}))
    tune_tiny(space, out, 6)
    bad = read_study(out).trials[5]
    assert bad.state.name == "PRUNED" and bad.user_attrs["stopped_by"] == "pruned"
    assert sorted(bad.intermediate_values) == [1, 2]  # never on the first evaluation; stopped at the second
    run = out / "trial-0005"
    steps = 2 * STEPS_PER_EPOCH
    assert bad.user_attrs["steps"] == steps < 20  # before its budget (max_steps 20)
    assert read_log(run)[-1]["step"] == steps  # a clean stop: the log, the last checkpoint and the grid agree
    assert list_step_checkpoints(run)[0].name == f"step-{steps:06d}.pt" and (run / "samples" / "final.png").is_file()
    evals = json.loads((run / "metrics.json").read_text())["history"]
    assert [e["step"] for e in evals] == [STEPS_PER_EPOCH, steps]
    assert bad.intermediate_values[2] == evals[1]["metrics"]["modes"] - min(evals[1]["metrics"]["reverse_kl"], 10) / 100
