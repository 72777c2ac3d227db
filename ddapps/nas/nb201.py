"""The NAS-Bench-201 cell space and network in plain torch (no NNI needed).

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search"
(ICLR 2020), Sec. 2: a cell is a DAG of four nodes; node 0 is the cell input and node ``j`` is the
sum over ``i < j`` of ``op_{i->j}(node i)``; the cell output is node 3. Each of the six edges picks
one of :data:`OPS`, so the space holds ``5**6 = 15,625`` cells. An architecture is the tuple of six
op names in the benchmark's edge order (:data:`EDGES`), written in the benchmark's notation as
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (``op~i`` is the edge from node ``i``).

The network (Sec. 2.1, Fig. 1): a 3x3 conv stem with ``C`` channels + BN, three stages of ``N``
cells with ``C``, ``2C`` and ``4C`` channels separated by residual reduction blocks (stride 2),
then BN-ReLU, global average pooling and a linear classifier. The benchmark uses ``C = 16`` and
``N = 5``; smaller values are CPU proxy knobs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from ddapps.errors import ConfigError
from ddapps.nets.init import reinitialize_
from ddapps.validation import check_positive

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""The five candidate operations of an edge, in the benchmark's order."""

EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
"""``(source, target)`` of each of the six edges, in the order of an architecture tuple."""

NUM_NODES = 4
"""Nodes of a cell: the input (node 0), two intermediate nodes and the output (node 3)."""


def check_arch(ops: Sequence[str] | str) -> tuple[str, ...]:
    """``ops`` as a 6-tuple of known op names (a benchmark string is parsed); ConfigError otherwise."""
    if isinstance(ops, str):
        return parse_arch(ops)
    arch = tuple(ops)
    if len(arch) != len(EDGES):
        raise ConfigError(f"a NAS-Bench-201 architecture has {len(EDGES)} edge ops, got {len(arch)}: {list(arch)}")
    unknown = [op for op in arch if op not in OPS]
    if unknown:
        raise ConfigError(f"unknown NAS-Bench-201 ops {unknown}; choose from {', '.join(OPS)}")
    return arch


def parse_arch(s: str) -> tuple[str, ...]:
    """The op tuple of a benchmark string such as ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|``."""
    if not isinstance(s, str):
        raise ConfigError(f"a NAS-Bench-201 architecture string must be a str, got {s!r}")
    groups = s.split("+")
    if len(groups) != NUM_NODES - 1:
        raise ConfigError(f"NAS-Bench-201 string {s!r} must have {NUM_NODES - 1} '+'-separated nodes")
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise ConfigError(f"NAS-Bench-201 string {s!r}: node {node} must be written as |op~i|...|")
        edges = group[1:-1].split("|")
        if len(edges) != node:
            raise ConfigError(f"NAS-Bench-201 string {s!r}: node {node} needs {node} inputs, got {len(edges)}")
        for source, edge in enumerate(edges):
            op, sep, index = edge.partition("~")
            if sep != "~" or index != str(source):
                raise ConfigError(f"NAS-Bench-201 string {s!r}: edge {edge!r} of node {node} must be op~{source}")
            if op not in OPS:
                raise ConfigError(f"NAS-Bench-201 string {s!r}: unknown op {op!r}; choose from {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def format_arch(ops: Sequence[str]) -> str:
    """The benchmark string of ``ops`` (the exact inverse of :func:`parse_arch`)."""
    arch = check_arch(ops)
    groups = []
    start = 0
    for node in range(1, NUM_NODES):
        edges = arch[start : start + node]
        groups.append("|" + "|".join(f"{op}~{i}" for i, op in enumerate(edges)) + "|")
        start += node
    return "+".join(groups)


def all_archs() -> Iterator[tuple[str, ...]]:
    """All ``5**6 = 15,625`` architectures, in a fixed (row-major over :data:`OPS`) order."""
    return itertools.product(OPS, repeat=len(EDGES))


def is_connected(ops: Sequence[str] | str) -> bool:
    """Whether a path of non-``none`` edges leads from node 0 to node 3.

    A disconnected cell outputs constant zeros, so the network ignores its input (the benchmark
    lists such cells at chance accuracy); rank studies usually exclude them.
    """
    arch = check_arch(ops)
    reached = [True] + [False] * (NUM_NODES - 1)
    for (source, target), op in zip(EDGES, arch):
        # EDGES is ordered by target, so every source is final before its targets are visited.
        if op != "none" and reached[source]:
            reached[target] = True
    return reached[NUM_NODES - 1]


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape (``x * 0``, so NaN/inf propagate like the benchmark's)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """ReLU -> Conv(kernel, stride, padding kernel//2, no bias) -> BatchNorm (the benchmark's conv unit)."""
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out, affine=True, track_running_stats=True),
    )


def make_op(name: str, channels: int) -> nn.Module:
    """The module of op ``name`` on ``channels`` channels (stride 1, shape-preserving)."""
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return relu_conv_bn(channels, channels, 1)
    if name == "nor_conv_3x3":
        return relu_conv_bn(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ConfigError(f"unknown NAS-Bench-201 op {name!r}; choose from {', '.join(OPS)}")


class NB201Cell(nn.Module):
    """One cell: node ``j`` = sum over ``i < j`` of ``op_{i->j}(node i)``; returns node 3."""

    def __init__(self, ops: Sequence[str] | str, channels: int) -> None:
        super().__init__()
        self.arch = check_arch(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in self.arch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        first = 0  # index in EDGES of the edge 0 -> target
        for target in range(1, NUM_NODES):
            total = self.edges[first](x)
            for source in range(1, target):
                total = total + self.edges[first + source](nodes[source])
            nodes.append(total)
            first += target
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The block between stages: ReLU-Conv3x3(stride 2)-BN -> ReLU-Conv3x3-BN, plus AvgPool2x2 -> Conv1x1."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = relu_conv_bn(c_out, c_out, 3)
        self.shortcut = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Net(nn.Module):
    """The NAS-Bench-201 network of one cell (the same cell in every position).

    Follows the :class:`ddapps.nets.base.Net` contract: ``features`` maps images to
    ``[N, feature_dim]`` (``feature_dim = 4 * channels``), ``classifier`` is one ``nn.Linear``,
    ``embed(x)`` returns the features and ``forward(x)`` the logits. Any image size works (global
    average pooling); the benchmark uses 32x32 (CIFAR) and 16x16 (ImageNet16-120).
    """

    feature_dim: int

    def __init__(
        self,
        ops: Sequence[str] | str,
        in_channels: int = 3,
        num_classes: int = 10,
        channels: int = 16,
        cells_per_stage: int = 5,
    ) -> None:
        super().__init__()
        self.arch = check_arch(ops)
        check_positive("in_channels", in_channels)
        check_positive("num_classes", num_classes)
        check_positive("channels", channels)
        check_positive("cells_per_stage", cells_per_stage)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels, affine=True, track_running_stats=True),
        ]
        width = channels
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(width, 2 * width))
                width *= 2
            layers.extend(NB201Cell(self.arch, width) for _ in range(cells_per_stage))
        layers += [
            nn.BatchNorm2d(width, affine=True, track_running_stats=True),
            nn.ReLU(inplace=False),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.features = nn.Sequential(*layers)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Features right before the classifier, ``[N, feature_dim]``."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, ``[N, num_classes]``."""
        return self.classifier(self.features(x))


def build_nb201(
    ops: Sequence[str] | str,
    in_channels: int,
    num_classes: int,
    *,
    channels: int = 16,
    cells_per_stage: int = 5,
    generator: torch.Generator | None = None,
) -> NB201Net:
    """The network of ``ops``; initialized from ``generator`` when given (same generator, same weights)."""
    net = NB201Net(ops, in_channels, num_classes, channels=channels, cells_per_stage=cells_per_stage)
    if generator is not None:
        reinitialize_(net, generator)
    return net
