"""A replica of DrayDog's camera page and CDN, served on 127.0.0.1 for tests and benchmarks."""

from modules.replica.jpeg import picture_bytes
from modules.replica.schedule import Schedule
from modules.replica.server import (
    Fault,
    Faults,
    ReplicaServer,
    RequestRecord,
    run_forever,
)

__all__ = [
    "Fault",
    "Faults",
    "ReplicaServer",
    "RequestRecord",
    "Schedule",
    "picture_bytes",
    "run_forever",
]
