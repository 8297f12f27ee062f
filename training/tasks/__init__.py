"""Registry of tasks: `seqzoo train NAME` looks NAME up here.

Entries are "module:Class" strings, imported on first use, so that importing the registry stays
cheap and one family's dependencies never load for another. `SUMMARIES` gives each task the line
`seqzoo train --help` lists it with (what it learns and its built-in datasets); `TRAIN_DEFAULTS`
the training settings a task sets over `TrainConfig`'s (its budget), which the help shows too.
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
    "frame_labeling": "seqzoo.training.tasks.frame_labeling:FrameLabelingTask",
}

SUMMARIES: dict[str, str] = {
    "sentiment": "text -> label (many to one); builtin: generated movie reviews",
    "ar": "AR(p) forecasting by least squares or gradient; builtin:var2, builtin:ar3",
    "delay_tap": "delay-tap network forecasting a nonlinear series; builtin:logistic",
    "lds": "linear dynamical system (Kalman), by EM or gradient; builtin:oscillator",
    "hmm": "hidden Markov model, by Baum-Welch or gradient; builtin:casino, builtin:regimes",
    "translation": "text -> text with attention and beam search; builtin:dates, builtin:long",
    "elman": "Elman network on long time lags, full or truncated BPTT; builtin:adding, "
             "builtin:copy, builtin:echo",
    "captioning": "image -> caption (one to many) with visual attention; builtin: shape pictures",
    "frame_labeling": "video -> a label per frame (synced many to many) with segment metrics; "
                      "builtin: moving-square videos",
}

# Each task class takes these as its `train_defaults`.
TRAIN_DEFAULTS: dict[str, dict] = {
    "captioning": {"steps": 3000, "learning_rate": 3e-3},
    "frame_labeling": {"steps": 1500, "batch_size": 32, "learning_rate": 0.005},
}


def task_names() -> list[str]:
    return sorted(TASKS)


def check_task_name(name: str) -> str:
    """Returns `name` if a task is registered under it; unknown names list the valid ones."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; accepted: {', '.join(task_names())}.")
    return name


def get_task_class(name: str):
    """Returns the Task subclass registered under `name`; unknown names list the valid ones."""
    module_name, class_name = TASKS[check_task_name(name)].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_task(config, run_dir=None):
    """The (unprepared) task instance a `RunConfig` describes, keeping its assets under
    `run_dir`."""
    return get_task_class(config.task)(
        config.model, data=config.data, run_dir=run_dir, seed=config.train.seed
    )
