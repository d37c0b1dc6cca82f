"""The runs in progress in one worker, each with the lease it holds, shared by its parts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from socialflow.core.lease import Held

__all__ = ["Claim", "InFlight", "uncancel"]


@dataclass(frozen=True)
class Claim:
    """An execution this worker has claimed."""

    execution_id: uuid.UUID
    attempt: int
    abandoned_flow_run_id: uuid.UUID | None

    @property
    def held(self) -> Held:
        """The lease this claim holds."""
        return Held(self.execution_id, self.attempt)


class InFlight:
    """Runs in progress by execution id: claimed executions and the deployments' scheduled
    runs (whose execution id is their flow run's id), each leased and renewed.

    Args:
        capacity: Runs in progress at once.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._held: dict[uuid.UUID, Held] = {}
        #: runs cancelled on request: each is cancelled once, a second cancel would
        #: interrupt its clean-up
        self.cancel_sent: set[uuid.UUID] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, execution_id: object) -> bool:
        return execution_id in self._tasks

    def __iter__(self) -> Iterator[uuid.UUID]:
        return iter(list(self._tasks))

    @property
    def free(self) -> int:
        """Slots free now."""
        return self.capacity - len(self._tasks)

    def add(self, held: Held, task: asyncio.Task[None]) -> None:
        """A run started in a slot under this lease."""
        self._tasks[held.id] = task
        self._held[held.id] = held

    def discard(self, execution_id: uuid.UUID) -> None:
        """The run ended: its slot is free."""
        self._tasks.pop(execution_id, None)
        self._held.pop(execution_id, None)
        self.cancel_sent.discard(execution_id)

    def task(self, execution_id: uuid.UUID) -> asyncio.Task[None] | None:
        """The run's task, while it is in progress."""
        return self._tasks.get(execution_id)

    def leases(self) -> list[Held]:
        """The leases of the runs in progress."""
        return list(self._held.values())

    async def wait(self) -> None:
        """Until every run in progress has ended."""
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)


def uncancel() -> None:
    """The cancellation was ours and is handled: clear it, or the clean-up's own awaits (anyio
    inside Prefect's client) would see a cancelled task and stop too."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()
