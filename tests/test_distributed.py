"""Class-sharded DM (``ddapps.distributed``) equals single-process DM."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ddapps.data import load_dataset
from ddapps.distributed import ShardedDM
from ddapps.errors import ConfigError
from ddapps.methods import create_distiller
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import make_generator

TINY = {"iterations": 3, "batch_real": 16, "net_options": {"width": 16}}


def _dm(real, ipc: int):
    return create_distiller("dm", TINY).distill(real, ipc, generator=make_generator(0))


def test_single_rank_matches_dm(tiny):
    sharded = ShardedDM(TINY).distill(tiny, 2, generator=make_generator(0))
    torch.testing.assert_close(sharded.images, _dm(tiny, 2).images, rtol=0, atol=1e-6)


def test_bad_rank_and_batchnorm_are_refused(tiny):
    with pytest.raises(ConfigError, match="rank"):
        ShardedDM(TINY, rank=2, world_size=2)
    with pytest.raises(ConfigError, match="batch norm"):
        ShardedDM(TINY | {"net_options": {"width": 8, "norm": "batch"}}).distill(tiny, 1)


@pytest.mark.slow
def test_torchrun_two_ranks_equal_single_process(tmp_path):
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ddapps.distributed", "--dataset", "digits", "--ipc", "2", "--iterations", "3",
           "--set", "batch_real=16", "--set", 'net_options={"width": 16}', "--threads", "1", "--quiet",
           "--out", str(out)]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    distributed = SyntheticSet.load(out / "synset.safetensors")
    assert distributed.meta["world_size"] == 2
    torch.testing.assert_close(distributed.images, _dm(load_dataset("digits"), 2).images, rtol=0, atol=1e-6)
