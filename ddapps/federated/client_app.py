"""The ClientApp: distil the local partition (``train.distill``) or train the model (``train``).

Every instruction carries the run's :class:`~ddapps.federated.settings.FederatedConfig` in its
``"config"`` ConfigRecord (plus ``server-round``); the node contributes only its ``partition-id``
and, optionally, a ``data-dir`` (``--node-config`` of a SuperNode).

``train.distill`` (oneshot and iterative modes) runs any registered method through
``create_distiller`` on the classes the client holds at least ``ipc`` images of, and replies with
the :class:`~ddapps.synthetic.SyntheticSet` as records (:func:`synset_to_records`) plus a
``"metrics"`` MetricRecord (``num-examples``, ``distill-seconds``). If the instruction carries the
global model (``"global-model"`` ArrayRecord, iterative mode), a DM client matches features of the
perturbed global model (:class:`~ddapps.federated.feddm.GlobalModelDM`; a DP method such as
``dp-dm`` keeps its own private algorithm) and every method warm-starts from the client's previous
set, kept in ``context.state`` (never sent; a DP client's previous set is its own earlier release).
A method that records differential-privacy accounting in ``synset.meta["privacy"]`` has it
forwarded unchanged; the server composes it per client (:mod:`ddapps.federated.client_privacy`).

``train`` (the FedAvg and FedProx baselines) loads the ``"arrays"`` it receives, trains
``local-epochs`` on the partition (with the run's ``augment`` policy; ``fedprox`` adds the proximal
term) and replies ``"arrays"`` + ``"metrics"`` as Flower's FedAvg expects. ``subset``,
``oneshot-noise`` and ``oneshot-dp`` distil with the method of their mode
(:attr:`~ddapps.federated.settings.FederatedConfig.upload_method`).
"""

from __future__ import annotations

import time

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ddapps.federated import task
from ddapps.federated.feddm import GLOBAL_MODEL_VARIANTS
from ddapps.federated.mods import CONFIG_KEY, error_reply_mod, fault_injection_mod, partition_id
from ddapps.federated.proximal import proximal_penalty
from ddapps.federated.records import (
    SYNSET_ARRAYS,
    SYNSET_META,
    arrays_to_state,
    records_to_synset,
    state_to_arrays,
    synset_to_records,
)
from ddapps.federated.settings import FederatedConfig
from ddapps.federated.synsets import empty_set, to_global, to_local
from ddapps.methods import create_distiller
from ddapps.synthetic import SyntheticSet
from ddapps.utils.seeding import derive_seed, make_generator

GLOBAL_MODEL_KEY = "global-model"
METRICS_KEY = "metrics"
_PREVIOUS = "ddapps-previous-"

app = ClientApp(mods=[error_reply_mod, fault_injection_mod])


def read_config(message: Message) -> tuple[FederatedConfig, int]:
    """The run config and the server round an instruction carries."""
    record = message.content.config_records.get(CONFIG_KEY)
    if record is None:
        raise KeyError(f"instruction has no {CONFIG_KEY!r} ConfigRecord")
    values = dict(record)
    server_round = int(str(values.pop("server-round", 1)))
    return FederatedConfig.from_flat(values), server_round


def _data_dir(context: Context) -> str | None:
    value = context.node_config.get("data-dir")
    return str(value) if value else None


@app.train("distill")
def distill(message: Message, context: Context) -> Message:
    """Distil the local partition; reply with the synthetic set as records."""
    config, server_round = read_config(message)
    task.set_threads(config)
    pid = partition_id(context)
    bench = task.load_benchmark(config, _data_dir(context))
    split = task.client_split(config, pid, _data_dir(context))
    local, classes = task.local_benchmark(bench, split, config.ipc)
    distiller = create_distiller(config.upload_method, config.method_overrides())
    global_arrays = message.content.array_records.get(GLOBAL_MODEL_KEY)
    # A DP method keeps its own (private) algorithm, its noise drawn from the client's own secret source.
    variant = GLOBAL_MODEL_VARIANTS.get(config.upload_method)
    uses_global = global_arrays is not None and variant is not None
    if variant is not None and global_arrays is not None:
        distiller = variant(
            distiller.config, global_state=arrays_to_state(global_arrays), num_classes=bench.num_classes,
            perturb=config.perturb,
        )  # fmt: skip
    previous = _load_previous(context)
    init = to_local(previous, classes) if previous is not None else None
    info = {"partition_id": pid, "round": server_round, "n_local": len(split), "global_model": uses_global}
    start = time.perf_counter()
    if classes:
        gen = make_generator(derive_seed(config.seed, "client", pid, server_round))
        local_set = distiller.distill(local, config.ipc, init=init, generator=gen)
        synset = to_global(local_set, classes, bench.num_classes, client=info)
    else:
        synset = empty_set(
            bench.channels, bench.image_size, bench.num_classes, method=config.upload_method, classes=[], client=info
        )
    seconds = time.perf_counter() - start
    synset.meta.pop("distill_seconds", None)  # timing goes in the MetricRecord: byte counts stay reproducible
    content = synset_to_records(synset, config.upload_dtype, (bench.mean, bench.std))
    _store_previous(context, content)
    content[METRICS_KEY] = MetricRecord({"num-examples": len(split), "distill-seconds": seconds})
    return Message(content, reply_to=message)


@app.train()
def train(message: Message, context: Context) -> Message:
    """FedAvg/FedProx client: train the received model on the partition, reply the new weights.

    Local training uses the run's augmentation policy (``augment``); a ``fedprox`` client adds the
    proximal term ``mu/2 ||w - w_global||^2`` with the ``proximal-mu`` the strategy sent.
    """
    config, server_round = read_config(message)
    task.set_threads(config)
    pid = partition_id(context)
    bench = task.load_benchmark(config, _data_dir(context))
    split = task.client_split(config, pid, _data_dir(context))
    net = task.make_model(config, bench, make_generator(0))
    net.load_state_dict(arrays_to_state(message.content.array_records["arrays"]))
    gen = make_generator(derive_seed(config.seed, "local-train", pid, server_round))
    penalty = proximal_penalty(net, config.proximal_mu) if config.mode == "fedprox" else None
    strategy = task.augment_strategy(config, bench)
    task.train(net, split.images, split.labels, task.local_settings(config), gen, strategy, penalty)
    content = RecordDict(
        {"arrays": state_to_arrays(net.state_dict()), METRICS_KEY: MetricRecord({"num-examples": len(split)})}
    )
    return Message(content, reply_to=message)


def _store_previous(context: Context, content: RecordDict) -> None:
    context.state[_PREVIOUS + SYNSET_ARRAYS] = content.array_records[SYNSET_ARRAYS]
    context.state[_PREVIOUS + SYNSET_META] = content.config_records[SYNSET_META]


def _load_previous(context: Context) -> SyntheticSet | None:
    arrays = context.state.array_records.get(_PREVIOUS + SYNSET_ARRAYS)
    meta = context.state.config_records.get(_PREVIOUS + SYNSET_META)
    if not isinstance(arrays, ArrayRecord) or not isinstance(meta, ConfigRecord):
        return None
    return records_to_synset(RecordDict({SYNSET_ARRAYS: arrays, SYNSET_META: meta}))
