"""What a running ``socialflow up`` serves, for the commands run beside it (``doctor``,
``simulate``): a small JSON file in the data directory, written once the stack is up and
removed when it stops. It holds URLs and process ids, never a secret."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["STATE_FILE", "StackState", "pid_alive", "read_state", "remove_state", "write_state"]

#: the file's name in the data directory
STATE_FILE = "stack.json"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user's counts too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class StackState:
    """A running stack, as ``socialflow up`` describes it.

    Args:
        pid: The ``socialflow up`` process.
        api_url: Where the API and the web app answer.
        prefect_api_url: Prefect's API (``…/api``).
        prefect_ui_url: Prefect's UI.
        processes: Each process the stack started, by name, with its id.
        started_at: When the stack was up (ISO 8601, UTC).
    """

    pid: int
    api_url: str
    prefect_api_url: str
    prefect_ui_url: str
    processes: dict[str, int] = field(default_factory=dict)
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def gone(self) -> list[str]:
        """The processes (``up`` itself included) no longer running, by name."""
        named = {"socialflow up": self.pid, **self.processes}
        return [f"{name} (pid {pid})" for name, pid in named.items() if not pid_alive(pid)]


def write_state(data_dir: Path, state: StackState) -> Path:
    """Write ``state`` into ``data_dir`` in one step (readers never see half a file).

    Returns:
        The file written.
    """
    path = data_dir / STATE_FILE
    partial = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(state), indent=2) + "\n")
    partial.replace(path)
    return path


def read_state(data_dir: Path) -> StackState | None:
    """The stack ``data_dir`` says is running; None without a readable state file."""
    try:
        found = json.loads((data_dir / STATE_FILE).read_text())
        return StackState(
            pid=int(found["pid"]),
            api_url=str(found["api_url"]),
            prefect_api_url=str(found["prefect_api_url"]),
            prefect_ui_url=str(found["prefect_ui_url"]),
            processes={str(k): int(v) for k, v in dict(found.get("processes", {})).items()},
            started_at=str(found.get("started_at", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_state(data_dir: Path, *, pid: int) -> None:
    """Remove the state file if the stack of process ``pid`` wrote it (never another's)."""
    state = read_state(data_dir)
    if state is not None and state.pid == pid:
        (data_dir / STATE_FILE).unlink(missing_ok=True)
