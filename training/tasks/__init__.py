"""Registry of tasks: `seqzoo train NAME` looks NAME up here.

Entries are "module:Class" strings, imported on first use, so that importing the registry stays
cheap and one family's dependencies never load for another.
"""

from __future__ import annotations

import importlib

TASKS: dict[str, str] = {
    "sentiment": "seqzoo.training.tasks.sentiment:SentimentTask",
    "ar": "seqzoo.training.tasks.autoregressive:AutoregressiveTask",
    "delay_tap": "seqzoo.training.tasks.delay_tap:DelayTapTask",
    "lds": "seqzoo.training.tasks.lds:LinearDynamicalSystemTask",
    "hmm": "seqzoo.training.tasks.hmm:HMMTask",
    "translation": "seqzoo.training.tasks.translation:TranslationTask",
    "elman": "seqzoo.training.tasks.elman:ElmanTask",
    "captioning": "seqzoo.training.tasks.captioning:CaptioningTask",
}


def task_names() -> list[str]:
    return sorted(TASKS)


def get_task_class(name: str):
    """Returns the Task subclass registered under `name`; unknown names list the valid ones."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; accepted: {', '.join(task_names())}.")
    module_name, class_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_task(config, run_dir=None):
    """The (unprepared) task instance a `RunConfig` describes, keeping its assets under
    `run_dir`."""
    return get_task_class(config.task)(
        config.model, data=config.data, run_dir=run_dir, seed=config.train.seed
    )
