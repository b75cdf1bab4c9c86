"""gankit: train, evaluate and apply Generative Adversarial Networks.

    import gankit
    run = gankit.train({"data": "ring8", "train": {"steps": 2000}})
    run = gankit.load_run(run.path)
    x = run.sample(64)
"""
from .api import Run, load_run, make_config, resume, train
from .errors import (CheckpointError, ConfigError, DataError, GankitError, NonFiniteLossError, RunDirError)

__version__ = "0.1.0"
__all__ = ["train", "resume", "load_run", "make_config", "Run", "GankitError", "ConfigError", "DataError",
           "CheckpointError", "NonFiniteLossError", "RunDirError", "__version__"]
