"""The worker: runs queued executions in-process as Prefect flow runs, with leases.

``Worker`` (``_facade.py``) is a small facade over parts with one job each: ``_claims.py``
(claiming executions and keeping their leases, through ``socialflow.core.lease``),
``_slots.py`` (running a claim to its end; ``_isolation.py`` for a child process),
``_scheduled.py`` (the deployments' due scheduled runs; ``_static_runs.py`` for prefect.yaml's
static deployments), ``_cancels.py`` (cancel requests from the API and from Prefect's UI),
``_abandoned.py`` (Prefect flow runs that stopped attempts left) and ``_prefect.py`` (Prefect's
client under bounded waits). ``_inflight.py`` holds the runs in progress the parts share.
"""

from socialflow.orchestration._worker._facade import Worker
from socialflow.orchestration._worker._inflight import Claim, uncancel
from socialflow.orchestration._worker._prefect import prefect_client_limits, prefect_clients

__all__ = ["Claim", "Worker", "prefect_client_limits", "prefect_clients", "uncancel"]
