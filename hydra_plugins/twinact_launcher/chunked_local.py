"""A local sweep launcher that runs at most `max_parallel` points at once.

hydra-submitit's local launcher starts every point of a sweep at the same moment (submitit's `LocalExecutor` has no
array parallelism), so on one GPU or a small CPU the points contend for it. This one hands the points to that
launcher in chunks of `max_parallel` and waits for each chunk. Hydra only loads launchers from the `hydra_plugins`
namespace, hence this package beside `twinact/`; its config is `hydra/launcher=twinact_local`, the base of
`conf/hydra/launcher/local.yaml`.
"""

# No `from __future__ import annotations`: Hydra loads plugin modules outside sys.modules, where dataclasses cannot
# resolve string annotations.
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher


@dataclass
class ChunkedLocalQueueConf(LocalQueueConf):
    _target_: str = "hydra_plugins.twinact_launcher.chunked_local.ChunkedLocalLauncher"
    max_parallel: int = 1


ConfigStore.instance().store(group="hydra/launcher", name="twinact_local", node=ChunkedLocalQueueConf,
                             provider="twinact")


class ChunkedLocalLauncher(LocalLauncher):
    """hydra-submitit's `LocalLauncher`, `max_parallel` points at a time."""

    def __init__(self, max_parallel: int = 1, **params) -> None:
        super().__init__(**params)
        if int(max_parallel) < 1:
            raise ValueError(f"hydra.launcher.max_parallel={max_parallel} must be >= 1")
        self.max_parallel = int(max_parallel)

    def launch(self, job_overrides, initial_job_idx: int):
        results = []
        for start in range(0, len(job_overrides), self.max_parallel):
            results += super().launch(job_overrides[start : start + self.max_parallel], initial_job_idx + start)
        return results
