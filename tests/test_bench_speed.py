"""``ddapps bench speed``: per-iteration timing, FLOP counting, matmul reference, peak memory."""

from __future__ import annotations

import json

import pytest
import torch

from ddapps.bench.speed import (
    IterationProbe,
    SpeedSettings,
    bench_speed,
    matmul_gflops,
    measure_method,
    parse_method_overrides,
)
from ddapps.cli import main
from ddapps.errors import ConfigError
from ddapps.methods.base import IterationEvent
from ddapps.utils.memory import PeakMemory

DM_TINY = {"batch_real": 8, "net_options": {"width": 16}}
ROW_KEYS = {"method", "ipc", "dataset", "seconds_per_iter", "gflops_achieved", "gflops_matmul", "peak_mem_mb"}


def test_measure_method_counts_flops_and_times_iterations(tiny, caplog):
    caplog.set_level("INFO", logger="ddapps")
    row = measure_method(tiny, "dm", 2, SpeedSettings(iterations=2, warmup=1, repeats=2), overrides=DM_TINY,
                         progress=True)
    assert row["seconds_per_iter"] > 0 and row["gflop_per_iter"] > 0
    assert row["gflops_achieved"] == pytest.approx(row["gflop_per_iter"] / row["seconds_per_iter"])
    assert row["overrides"]["iterations"] == 4  # warmup + counted + timed
    lines = [r.getMessage() for r in caplog.records if r.name == "ddapps.bench.speed"]
    assert [line.split(":")[1].strip() for line in lines] == ["dm ipc 2 run 1/2", "dm ipc 2 run 2/2"]


def test_probe_counts_only_the_iteration_after_warmup():
    probe = IterationProbe(warmup=1, device=torch.device("cpu"))
    a = torch.ones(64, 64)
    for it in range(1, 5):
        for _ in range(it):  # iteration `it` does `it` matmuls
            a @ a
        probe(IterationEvent(iteration=it, total=4, loss=0.0, seconds=0.0))
    assert probe.flops == 2 * 2 * 64**3  # iteration 2 only
    assert len(probe.seconds()) == 2


def test_probe_without_flop_counting_still_times():
    probe = IterationProbe(warmup=1, device=torch.device("cpu"), count_flops=False)
    a = torch.ones(64, 64)
    for it in range(1, 5):
        a @ a
        probe(IterationEvent(iteration=it, total=4, loss=0.0, seconds=0.0))
    assert probe.flops == 0 and probe._counter is None
    assert len(probe.seconds()) == 2


def test_bench_speed_writes_schema(tiny, tmp_path):
    rows = bench_speed(tiny, ["dm", "dc"], [1], SpeedSettings(iterations=1, warmup=1, repeats=1, matmul_size=64),
                       tmp_path, overrides={"dm": DM_TINY, "dc": DM_TINY | {"outer_loop": 1, "inner_loop": 1}})
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["method"] for r in doc["rows"]] == ["dm", "dc"] == [r["method"] for r in rows]
    assert all(ROW_KEYS <= set(r) and r["gflops_achieved"] > 0 for r in doc["rows"])
    assert doc["config"]["precision"] == "fp32"
    assert "seconds_per_iter" in (tmp_path / "report.md").read_text()


def test_matmul_gflops_positive():
    assert matmul_gflops("cpu", size=64, repeats=2) > 0


def test_parse_method_overrides():
    parsed = parse_method_overrides({"dm.batch_real": 4, "syn_steps": 2, "net_options": {"width": 8}}, ["dm", "mtt"])
    assert parsed["dm"] == {"batch_real": 4, "net_options": {"width": 8}}
    assert parsed["mtt"] == {"syn_steps": 2, "net_options": {"width": 8}}
    with pytest.raises(ConfigError):
        parse_method_overrides({"kip.x": 1}, ["dm"])
    with pytest.raises(ConfigError):
        parse_method_overrides({"nonsense": 1}, ["dm"])


def test_settings_validation():
    with pytest.raises(ConfigError):
        SpeedSettings(iterations=0)
    with pytest.raises(ConfigError):
        SpeedSettings(warmup=0)


def test_peak_memory_is_reusable():
    peaks = []
    for _ in range(3):
        with PeakMemory("cpu") as memory:
            x = torch.ones(20_000_000)  # 80 MB
            del x
        peaks.append(memory.peak_mb)
    assert all(p > 60 for p in peaks), peaks


def test_cli_bench_speed(tmp_path):
    code = main(["bench", "speed", "--dataset", "digits", "--methods", "dm", "--ipc", "1", "--iterations", "1",
                 "--warmup", "1", "--repeats", "1", "--matmul-size", "64", "--set", "batch_real=4",
                 "--set", 'net_options={"width": 8}', "--precision", "bf16", "--quiet", "--out", str(tmp_path)])
    assert code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["rows"][0]["gflops_achieved"] > 0
    assert doc["rows"][0]["precision"] == "bf16" and doc["config"]["matmul_dtype"] == "bfloat16"


def test_cli_bench_speed_bad_override(tmp_path, capsys):
    assert main(["bench", "speed", "--methods", "dm", "--set", "mtt.syn_steps=2", "--out", str(tmp_path)]) == 2
    assert "not one of the benchmarked methods" in capsys.readouterr().err
