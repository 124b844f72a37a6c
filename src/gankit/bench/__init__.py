"""Reproducible benchmarks (`gankit bench ...`).

`sweep.run_sweep` trains and scores named configurations over seeds and tabulates mean ± spread per configuration;
`toy2d`, `fashion` and `ssgan` hold only their configurations, score functions and table columns;
`speed` times the training steps of presets. (The name `speed` here is the function; the module is
`gankit.bench.speed` for `from gankit.bench.speed import ...`.)
"""
from .fashion import FASHION_CONFIGS, bench_fashion, format_fashion_table, score_fashion
from .speed import VARIANTS, default_variants, format_speed_table, matmul_peak, speed
from .ssgan import METHODS, bench_ssgan, format_ssgan_table, score_ssgan
from .sweep import (
    Column,
    Run,
    Table,
    aggregate,
    format_rows,
    format_table,
    list_configs,
    mean_sd,
    mean_se,
    plan,
    run_one,
    run_sweep,
)
from .toy2d import TOY_CONFIGS, bench_toy2d, format_toy_table, score_toy

__all__ = [
    "FASHION_CONFIGS",
    "METHODS",
    "TOY_CONFIGS",
    "VARIANTS",
    "Column",
    "Run",
    "Table",
    "aggregate",
    "bench_fashion",
    "bench_ssgan",
    "bench_toy2d",
    "default_variants",
    "format_fashion_table",
    "format_rows",
    "format_speed_table",
    "format_ssgan_table",
    "format_table",
    "format_toy_table",
    "list_configs",
    "matmul_peak",
    "mean_sd",
    "mean_se",
    "plan",
    "run_one",
    "run_sweep",
    "score_fashion",
    "score_ssgan",
    "score_toy",
    "speed",
]
