"""What leaves a client: how close each uploaded image lies to the uploading client's own images.

The metric of the privacy audit (:func:`ddapps.privacy.audit.nearest_distances`, after Carlini et
al., "No Free Lunch in 'Privacy for Free'", 2022): for every uploaded image, the L2 distance in
normalised pixels to its nearest image of the uploading client's partition (``nn_client``) and to
its nearest training image outside that partition (``nn_nonclient``). An upload far closer to its
own client's data than to anybody else's is a near-copy of a client image; a ``subset`` upload is
a copy (``nn_client = 0``). The simulation's server measures it because it can recompute the
partition from the seed; a deployed server could not, and nothing here is sent.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from ddapps.data import Benchmark
from ddapps.federated import task
from ddapps.federated.settings import FederatedConfig
from ddapps.privacy.audit import nearest_distances

LEAK_KEYS = ("nn_client_median", "nn_client_p5", "nn_nonclient_median", "nn_nonclient_p5", "closer_to_client_frac")


def upload_distances(
    config: FederatedConfig, bench: Benchmark, partition_id: int, images: Tensor
) -> dict[str, list[float]]:
    """``nn_client`` and ``nn_nonclient`` of each uploaded image (lists, rounded to 1e-4)."""
    parts = task.partitions(config)
    own = parts[partition_id]
    outside = torch.ones(len(bench.train), dtype=torch.bool)
    outside[own] = False
    if images.shape[0] == 0 or not outside.any():
        return {"nn_client": [], "nn_nonclient": []}
    train = bench.train.images
    nn_client, nn_nonclient, _ = nearest_distances(images, train[own], train[outside])
    return {"nn_client": _rounded(nn_client), "nn_nonclient": _rounded(nn_nonclient)}


def summarize(uploads: Sequence[Mapping[str, Any]]) -> dict[str, float | int | None]:
    """Median and 5th percentile of both distances over every image of ``uploads``, the share of
    images closer to their own client than to any other image, and ``leak_images`` (the count)."""
    client = torch.tensor([d for u in uploads for d in u["nn_client"]], dtype=torch.float64)
    other = torch.tensor([d for u in uploads for d in u["nn_nonclient"]], dtype=torch.float64)
    out: dict[str, float | int | None] = {"leak_images": int(client.numel())}
    if client.numel() == 0:
        return out | dict.fromkeys(LEAK_KEYS)
    q = torch.tensor([0.5, 0.05], dtype=torch.float64)
    (c_med, c_p5), (o_med, o_p5) = client.quantile(q).tolist(), other.quantile(q).tolist()
    return out | {
        "nn_client_median": c_med,
        "nn_client_p5": c_p5,
        "nn_nonclient_median": o_med,
        "nn_nonclient_p5": o_p5,
        "closer_to_client_frac": float((client < other).double().mean()),
    }


def _rounded(values: Tensor) -> list[float]:
    return [round(float(v), 4) for v in values]
