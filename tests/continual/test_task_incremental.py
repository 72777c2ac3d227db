"""Task-incremental split benchmarks: task labels on every experience, one head per task, memories
that keep each class's task label (van de Ven & Tolias 2019's task-incremental scenario)."""

from __future__ import annotations

import pytest
import torch

from ddapps.continual.distilled_buffer import DistilledBuffer
from ddapps.continual.experiment import ContinualConfig, LearnerConfig, run_comparison
from ddapps.continual.scenarios import load_split
from ddapps.continual.storage_policies import BufferOptions, make_buffer
from ddapps.continual.task_heads import MASKED_LOGIT, TaskHeadClassifier, task_classes
from ddapps.errors import ConfigError
from ddapps.nets import create_net
from ddapps.utils.seeding import make_generator

DM_TINY = {"iterations": 4, "batch_real": 8, "net": "mlp", "net_options": {"width": 16}, "dsa": False}
HEADS = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]


@pytest.fixture(scope="module")
def task_digits():
    return load_split("split-digits", incremental="task")


def test_every_experience_of_both_streams_carries_its_index_as_task_label(task_digits):
    scenario, _ = task_digits
    assert task_classes(scenario.train_stream) == HEADS and task_classes(scenario.test_stream) == HEADS
    for t, experience in enumerate(scenario.test_stream):
        assert set(experience.dataset.targets_task_labels) == {t}


def test_each_sample_is_answered_among_its_tasks_classes_and_only_its_head_learns():
    # Prepare
    net = create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16)
    model = TaskHeadClassifier(net, HEADS, 10)
    x = torch.randn(6, 1, 8, 8, generator=make_generator(1))
    tasks = torch.tensor([0, 1, 2, 3, 4, 4])
    # Execute
    logits = model(x, tasks)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 2, 5, 7, 8, 9]))
    loss.backward()
    # Assert: the argmax lies in the sample's task; other logits are masked; untasked rows get no gradient.
    for row, t in zip(logits.detach(), tasks.tolist()):
        assert int(row.argmax()) in HEADS[t]
        assert all(float(row[c]) == MASKED_LOGIT for c in range(10) if c not in HEADS[t])
    assert torch.equal(model(x), net(x))  # no task labels: the shared network's logits
    only_task_0 = TaskHeadClassifier(create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16), HEADS, 10)
    torch.nn.functional.cross_entropy(only_task_0(x, 0), torch.zeros(6, dtype=torch.int64)).backward()
    grad = only_task_0.backbone.classifier.weight.grad
    assert grad is not None and grad[:2].abs().sum() > 0 and grad[2:].abs().sum() == 0
    with pytest.raises(ConfigError, match="disjoint"):
        TaskHeadClassifier(net, [[0, 1], [1, 2]], 10)
    with pytest.raises(ConfigError, match="no head"):
        model(x, torch.tensor([0, 0, 0, 0, 0, 5]))


def test_the_distilled_memory_keeps_each_classs_task_label(task_digits):
    scenario, _ = task_digits
    buffer = DistilledBuffer(20, "dm", DM_TINY, seed=0, dataset_name="digits")
    for experience in scenario.train_stream[:3]:
        buffer.update_from_dataset(experience.dataset)
    assert buffer.class_tasks == {0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 2}
    for i in range(len(buffer.buffer)):
        _, y, t = buffer.buffer[i]
        assert t == int(y) // 2


def test_herding_reads_the_shared_features_of_a_multi_head_learner(task_digits):
    scenario, _ = task_digits
    model = TaskHeadClassifier(create_net("mlp", 1, 10, 8, generator=make_generator(0), width=16), HEADS, 10)
    buffer = make_buffer("herding", 20, model, seed=0, options=BufferOptions())

    class _Strategy:  # what ParametricBuffer reads from a strategy
        def __init__(self, experience):
            self.experience, self.model, self.device = experience, model, torch.device("cpu")
            self.eval_mb_size = 64

    for experience in scenario.train_stream[:2]:
        buffer.post_adapt(_Strategy(experience), experience)
    tasks = {int(y): t for _, y, t in (buffer.buffer[i] for i in range(len(buffer.buffer)))}
    assert tasks == {0: 0, 1: 0, 2: 1, 3: 1}


@pytest.mark.slow
def test_task_incremental_gdumb_answers_far_above_chance_where_class_incremental_cannot(task_digits):
    # Prepare: the same learner, memory and budget under both settings (split-digits, one seed).
    scenario, real = task_digits
    learner = LearnerConfig(net="mlp", net_options={"width": 32}, gdumb_epochs=30, batch_size=32)
    options = BufferOptions(overrides=DM_TINY, dataset_name="digits")
    common = dict(benchmark="split-digits", buffers=("distilled:dm", "class-balanced"), protocols=("gdumb",),
                  mem_size=50, seeds=(0,), learner=learner, buffer_options=options)  # fmt: skip
    # Execute
    task = run_comparison(ContinualConfig(**common, incremental="task"), scenario, real)
    class_scenario, _ = load_split("split-digits")
    plain = run_comparison(ContinualConfig(**common), class_scenario, real)
    # Assert: with the task label a two-way choice per image: far above its 50% chance.
    for t, c in zip(task, plain):
        assert t.acc_per_experience[-1] > 80.0
        assert t.acc_per_experience[-1] > c.acc_per_experience[-1]
