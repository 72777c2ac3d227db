"""The ConvNet search space: 720 architectures, sampled reproducibly, each one the core's ConvNet."""

from __future__ import annotations

import pytest
import torch

from ddapps.errors import ConfigError
from ddapps.nas.space import SPACES, SpaceSpec, arch_key, resolve_space
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator


def test_convnet720_has_720_distinct_architectures() -> None:
    space = SPACES["convnet720"]
    archs = list(space.architectures())
    assert space.size == 720
    assert len({arch_key(a) for a in archs}) == 720


def test_sampling_is_reproducible_and_distinct() -> None:
    space = SPACES["convnet720"]
    first = space.sample(24, make_generator(3))
    assert first == space.sample(24, make_generator(3))
    assert len({arch_key(a) for a in first}) == 24
    assert first != space.sample(24, make_generator(4))


def test_sampled_architectures_build_and_run_on_mnist_shapes() -> None:
    space = resolve_space("convnet720", width_scale=1 / 8)
    for arch in space.sample(6, make_generator(0)):
        net = space.build(arch, 1, 10, 28, generator=make_generator(1))
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_architectures_are_the_cores_convnet() -> None:
    space = SPACES["convnet720"]
    arch = {"depth": 2, "width": 32, "norm": "group", "act": "leakyrelu", "pool": "max"}
    ours = space.build(arch, 3, 10, 32, generator=make_generator(7))
    core = create_net("convnet", 3, 10, 32, generator=make_generator(7), **arch)
    assert repr(ours) == repr(core)
    for a, b in zip(ours.state_dict().values(), core.state_dict().values()):
        assert torch.equal(a, b)


def test_user_defined_space_from_json(tmp_path) -> None:
    path = tmp_path / "mine.json"
    path.write_text('{"depth": [1, 2], "width": [8], "act": ["relu"]}')
    space = resolve_space(str(path))
    assert space.name == "mine" and space.size == 2 * 1 * 5 * 1 * 3


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": ()}, {"width": (0,)}, {"norm": ("weird",)}, {"pool": ("max", "max")}, {"width_scale": 0.0}],
)
def test_bad_spaces_are_config_errors(kwargs) -> None:
    with pytest.raises(ConfigError):
        SpaceSpec(**kwargs)


def test_bad_arch_and_sample_size() -> None:
    space = SPACES["convnet720"]
    with pytest.raises(ConfigError):
        space.sample(721, make_generator(0))
    with pytest.raises(ConfigError):
        space.check_arch({"depth": 5, "width": 32, "norm": "none", "act": "relu", "pool": "avg"})
    with pytest.raises(ConfigError):
        resolve_space("no-such-space")
