"""Runs a graph as one async Prefect flow run, with one Prefect task run per node.

The engine schedules nodes itself on the event loop: each node waits for its upstream nodes,
then runs as a task run (named after its label and kind) unless no incoming edge fired, in
which case a task run completes as ``Skipped``. Independent branches run concurrently. Only
the flow run is tagged: a tagged task run asks the server for concurrency slots, which costs
tens of milliseconds per node.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from functools import lru_cache
from typing import Any, cast

from prefect import Flow, Task, flow, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.context import FlowRunContext, TagsContext, TaskRunContext
from prefect.exceptions import ObjectNotFound, Pause
from prefect.flow_engine import run_flow_async
from prefect.states import Completed, Failed, Pending
from pydantic import BaseModel, Field

from socialflow.contacts import RunContact
from socialflow.core.credentials import DatabaseCredentialResolver
from socialflow.core.db import utcnow
from socialflow.core.errors import AppError, NodeTimeoutError, TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.instagram import InstagramGateway
from socialflow.nodes import (
    AwaitReply,
    ChatModelProvider,
    KnowledgeRetriever,
    NodeContext,
    WaitRequest,
)
from socialflow.orchestration._graph import (
    CompiledGraph,
    CompiledNode,
    GraphSpec,
    compile_graph_json,
)
from socialflow.orchestration._models import ExecutionStatus, NodeRunStatus
from socialflow.orchestration._parking import load_resume, park, paused_flow_run, wait_message
from socialflow.orchestration._recorder import (
    ExecutionListener,
    ExecutionRecorder,
    Listener,
    NodeRunRecord,
    cap_json,
)
from socialflow.orchestration._runtime import EngineRuntime, get_runtime
from socialflow.orchestration._waits import ResumeState
from socialflow.publishing import PublishingGateway

__all__ = [
    "RunMeta",
    "attempt_run_name",
    "execute_graph",
    "flow_for",
    "prefect_name",
    "start_graph_run",
]

_log = get_logger(__name__)
#: what a cancelled run and its unfinished nodes are recorded with
CANCELLED_MESSAGE = "cancelled on request"
_ABORTED = "run aborted: the process running it was stopped"


class RunMeta(BaseModel):
    """Who and what a run belongs to; becomes the flow run's tags and the execution row."""

    execution_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    flow_name: str = Field(default="adhoc", min_length=1, max_length=200)
    workspace_id: uuid.UUID | None = None
    flow_id: uuid.UUID | None = None
    flow_version_id: uuid.UUID | None = None
    version: int | None = None
    trigger_event_id: uuid.UUID | None = None
    sandbox: bool = False
    #: the worker's claim number: the run's writes to the execution row are fenced by it
    attempt: int | None = None
    #: the flow's Prefect deployment: the run is created from it, so it is listed under it
    deployment_id: uuid.UUID | None = None
    #: a continuation after a wait: the wait it resumes from (``_waits.resume_state``)
    resume_wait_id: uuid.UUID | None = None
    #: the Prefect flow run that paused for that wait, resumed in place when still Paused
    resume_flow_run_id: uuid.UUID | None = None

    def tags(self, trigger_kind: str) -> list[str]:
        """Flow-run tags, so runs can be found by workspace, flow and version in Prefect."""
        found = ["socialflow", f"trigger:{trigger_kind}"]
        if self.workspace_id:
            found.append(f"workspace:{self.workspace_id}")
        if self.flow_id:
            found.append(f"flow:{self.flow_id}")
        if self.version is not None:
            found.append(f"version:{self.version}")
        if self.sandbox:
            found.append("sandbox")
        return found


def _retry_on_transient(_task: Task[..., Any], _run: TaskRun, state: State[Any]) -> bool:
    return isinstance(state.data, TransientError)


async def _node_task(
    run: GraphRun, node_id: str, inputs: dict[str, Any]
) -> dict[str, Any] | State[Any]:
    return await run.execute_node(node_id, inputs)


async def _skipped_task(reason: str) -> State[Any]:
    return Completed(name="Skipped", message=reason)


_NODE_TASK = task(
    cache_policy=NO_CACHE, persist_result=False, retry_condition_fn=_retry_on_transient
)(_node_task)
_SKIPPED_TASK = task(cache_policy=NO_CACHE, persist_result=False)(_skipped_task)


@lru_cache(maxsize=4096)
def _task_for(name: str, retries: int, delay: float) -> Task[..., Any]:
    delays = [delay * 2**attempt for attempt in range(retries)] or 0
    return _NODE_TASK.with_options(
        name=name, task_run_name=name, retries=retries, retry_delay_seconds=delays
    )


@lru_cache(maxsize=4096)
def _skip_task_for(name: str) -> Task[..., Any]:
    return _SKIPPED_TASK.with_options(name=name, task_run_name=name)


def _task_name(node: CompiledNode) -> str:
    return f"{node.display_name} [{node.spec.kind}]"


class GraphRun:
    """The state of one graph run inside its flow run."""

    def __init__(
        self,
        runtime: EngineRuntime,
        graph: CompiledGraph,
        trigger: dict[str, Any],
        meta: RunMeta,
        recorder: ExecutionRecorder,
        flow_run_id: uuid.UUID | None,
        resume: ResumeState | None = None,
    ) -> None:
        self.runtime = runtime
        self.resume = resume
        #: nodes that asked and wait for a reply (``AwaitReply``), with what they wait for
        self.waiting: dict[str, WaitRequest] = {}
        self.graph = graph
        self.trigger = trigger
        self.meta = meta
        self.recorder = recorder
        self.flow_run_id = flow_run_id
        self.outputs: dict[str, dict[str, Any]] = {}
        # fields the trigger's event kinds declare: templates read those an event lacks as None
        self.trigger_fields = graph.trigger.cls.trigger_fields
        self.records = {
            node_id: NodeRunRecord(
                node_id=node_id,
                kind=graph.nodes[node_id].spec.kind,
                version=graph.nodes[node_id].spec.version,
                label=graph.nodes[node_id].display_name,
                status=NodeRunStatus.PENDING,
                seq=seq,
            )
            for seq, node_id in enumerate(graph.order)
        }
        self._jobs: dict[str, asyncio.Task[None]] = {}
        # nodes see their own workspace's credentials only, decrypted on request
        self.credentials = (
            DatabaseCredentialResolver(runtime.db, runtime.key_wrapper(), meta.workspace_id)
            if meta.workspace_id is not None
            else None
        )
        self.llm: ChatModelProvider | None = None
        self.retriever: KnowledgeRetriever | None = None
        #: the person whose Instagram event started the run (``load_contact``)
        self.contact: RunContact | None = None
        if self.credentials is not None:
            # imported here: processes that never run an AI node skip LangChain's import
            from socialflow.knowledge import CredentialChatModels, WorkspaceRetriever

            self.llm = CredentialChatModels(self.credentials, runtime.settings)
            self.retriever = WorkspaceRetriever(
                runtime.db, runtime.settings, meta.workspace_id, stores=runtime.knowledge_stores()
            )

    async def load_contact(self) -> None:
        """Find the run's contact when an Instagram event of a person started it; a failure
        to read it leaves the run without one, never fails it."""
        kinds = self.graph.trigger.cls.event_kinds
        if self.meta.workspace_id is None or not any(k.startswith("instagram.") for k in kinds):
            return
        try:
            self.contact = await RunContact.load(
                self.runtime.db, self.meta.workspace_id, self.trigger, sandbox=self.meta.sandbox
            )
        except Exception:
            _log.exception("the run's contact could not be read", run=str(self.meta.execution_id))

    async def execute(self) -> None:
        """Run every node, each as soon as its upstream nodes are done."""
        for node_id in self.graph.order:
            self._jobs[node_id] = asyncio.create_task(self._when_ready(node_id))
        await asyncio.gather(*self._jobs.values())

    def cancel_unfinished(self, reason: str) -> None:
        """Record every node not finished yet as cancelled (the run was cancelled)."""
        unfinished = (NodeRunStatus.PENDING, NodeRunStatus.RUNNING, NodeRunStatus.RETRYING)
        for node_id in self.graph.order:
            record = self.records[node_id]
            if record.status in unfinished:
                record.status = NodeRunStatus.CANCELLED
                record.error = reason
                record.finished_at = utcnow()
                self.recorder.node(record)

    def failed(self) -> list[NodeRunRecord]:
        """Node runs that failed, in graph order."""
        return [
            self.records[n]
            for n in self.graph.order
            if self.records[n].status == NodeRunStatus.FAILED
        ]

    async def _when_ready(self, node_id: str) -> None:
        if self.resume is not None and node_id in self.resume.outputs:
            self._restore(node_id, self.resume.outputs[node_id])
            return
        incoming = self.graph.incoming.get(node_id, [])
        upstream = {edge.source for edge in incoming}
        if upstream:
            await asyncio.gather(*(self._jobs[source] for source in upstream))
        record = self.records[node_id]
        broken = sorted(
            s
            for s in upstream
            if self.records[s].status in (NodeRunStatus.FAILED, NodeRunStatus.CANCELLED)
        )
        if broken:
            record.status = NodeRunStatus.CANCELLED
            record.error = f"not run: upstream node {broken[0]!r} did not complete"
            record.finished_at = utcnow()
            self.recorder.node(record)
            return
        if any(
            self.records[s].status in (NodeRunStatus.WAITING, NodeRunStatus.PENDING)
            for s in upstream
        ):
            return  # behind a node waiting for a reply: runs when the run resumes
        inputs: dict[str, Any] = {}
        fired = False
        node = self.graph.nodes[node_id]
        for edge in incoming:
            produced = self.outputs.get(edge.source, {})
            if edge.source_port not in produced:
                continue
            fired = True
            if node.inputs[edge.target_port].many:
                inputs.setdefault(edge.target_port, []).append(produced[edge.source_port])
            else:
                inputs[edge.target_port] = produced[edge.source_port]
        if incoming and not fired:
            await self._skip(node)
            return
        settings = node.spec.settings
        node_task = _task_for(_task_name(node), settings.retries, settings.retry_delay_seconds)
        state = await node_task(self, node_id, inputs, return_state=True)
        if state.is_failed() or state.is_crashed() or state.is_cancelled():
            if record.status not in (NodeRunStatus.FAILED, NodeRunStatus.CANCELLED):
                record.status = NodeRunStatus.FAILED
                record.error = record.error or state.message or "task run did not complete"
                record.finished_at = utcnow()
                self.recorder.node(record)

    def _restore(self, node_id: str, output: dict[str, Any]) -> None:
        """A node completed before the wait this run resumes from: its output stands, its
        record too; it is not run again (nor its sends)."""
        record = self.records[node_id]
        self.outputs[node_id] = output
        record.status = NodeRunStatus.COMPLETED
        record.output = output
        record.fired_ports = list(output)

    async def _skip(self, node: CompiledNode) -> None:
        record = self.records[node.spec.id]
        record.status = NodeRunStatus.SKIPPED
        reason = "skipped: no incoming edge fired"
        record.started_at = record.finished_at = utcnow()
        state = await _skip_task_for(_task_name(node))(reason, return_state=True)
        record.prefect_task_run_id = state.state_details.task_run_id
        self.recorder.node(record)

    async def execute_node(
        self, node_id: str, inputs: dict[str, Any]
    ) -> dict[str, Any] | State[Any]:
        """Run one node inside its task run: record, time-limit, call ``run()``, check outputs."""
        node = self.graph.nodes[node_id]
        record = self.records[node_id]
        task_run = TaskRunContext.get().task_run  # type: ignore[union-attr]
        record.attempts = max(task_run.run_count, record.attempts + 1)
        record.prefect_task_run_id = task_run.id
        record.status = NodeRunStatus.RUNNING
        record.started_at = record.started_at or utcnow()
        record.error = record.error_code = None
        limit = self.runtime.settings.engine.max_recorded_bytes
        record.input, record.input_truncated = cap_json(inputs, limit)
        self.recorder.node(record)
        timeout = node.spec.settings.timeout_seconds or (
            self.runtime.settings.engine.default_node_timeout_seconds
        )
        ctx = self._context(node, inputs, record.attempts)
        try:
            async with asyncio.timeout(timeout) as deadline:
                result = await node.cls(node.config).run(ctx, **inputs)
            _check_outputs(node, result)
        except AwaitReply as asked:
            return self._wait(node_id, record, asked.request)
        except TimeoutError as exc:
            if not deadline.expired():
                self._failed(node, record, exc)
                raise
            error = NodeTimeoutError(
                f"node {node.display_name!r} ({node_id}, {node.spec.kind}) timed out "
                f"after {timeout:g} s"
            )
            self._failed(node, record, error)
            raise error from exc
        except Exception as exc:
            self._failed(node, record, exc)
            if record.status == NodeRunStatus.RETRYING and isinstance(exc, TransientError):
                await self._wait_as_asked(node, record, exc)
            raise
        self.outputs[node_id] = result
        record.status = NodeRunStatus.COMPLETED
        record.output, record.output_truncated = cap_json(result, limit)
        record.fired_ports = list(result)
        record.finished_at = utcnow()
        self.recorder.node(record)
        return result

    def _wait(self, node_id: str, record: NodeRunRecord, request: WaitRequest) -> State[Any]:
        """The node asked and waits: record it so, and end its task run as ``Waiting``."""
        self.waiting[node_id] = request
        record.status = NodeRunStatus.WAITING
        record.output = {"waiting_for": request.model_dump(mode="json", exclude={"state"})}
        self.recorder.node(record)
        return Completed(name="Waiting", message=wait_message(request))

    async def _wait_as_asked(
        self, node: CompiledNode, record: NodeRunRecord, exc: TransientError
    ) -> None:
        """Hold the retry until the upstream's ``retry_after`` (e.g. Meta's usage headers)
        when that is later than the node's own backoff, which Prefect applies after this."""
        if not exc.retry_after:
            return
        settings = node.spec.settings
        backoff = settings.retry_delay_seconds * 2 ** (record.attempts - 1)
        asked = min(exc.retry_after, self.runtime.settings.engine.max_retry_after_seconds)
        if asked > backoff:
            await asyncio.sleep(asked - backoff)

    def _failed(self, node: CompiledNode, record: NodeRunRecord, exc: Exception) -> None:
        retries = node.spec.settings.retries
        retrying = isinstance(exc, TransientError) and record.attempts <= retries
        record.status = NodeRunStatus.RETRYING if retrying else NodeRunStatus.FAILED
        record.error = str(exc) if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
        record.error_code = exc.code if isinstance(exc, AppError) else "internal_error"
        if not retrying:
            record.finished_at = utcnow()
        self.recorder.node(record)

    def _context(self, node: CompiledNode, inputs: dict[str, Any], attempt: int) -> NodeContext:
        logger = _log.bind(
            workspace_id=str(self.meta.workspace_id) if self.meta.workspace_id else None,
            flow_id=str(self.meta.flow_id) if self.meta.flow_id else None,
            flow_run_id=str(self.flow_run_id),
            execution_id=str(self.meta.execution_id),
            node_id=node.spec.id,
        )
        return NodeContext(
            execution_id=self.meta.execution_id,
            node_id=node.spec.id,
            node_kind=node.spec.kind,
            label=node.display_name,
            trigger=self.trigger,
            outputs=self.outputs,
            settings=self.runtime.settings,
            http=self.runtime.http_client(),
            logger=logger,
            workspace_id=self.meta.workspace_id,
            flow_id=self.meta.flow_id,
            sandbox=self.meta.sandbox,
            attempt=attempt,
            inputs=inputs,
            instagram=self._instagram(),
            llm=self.llm,
            retriever=self.retriever,
            publishing=self._publishing(),
            trigger_fields=self.trigger_fields,
            contact=self.contact.view if self.contact is not None else None,
            contacts=self.contact,
            reply=(
                self.resume.reply
                if self.resume is not None and node.spec.id == self.resume.node_id
                else None
            ),
            **({"credentials": self.credentials} if self.credentials is not None else {}),
        )

    def _publishing(self) -> PublishingGateway | None:
        """Publishing and insights of this run (the calendar's engine)."""
        if self.meta.workspace_id is None:
            return None
        return PublishingGateway(
            self.runtime.db,
            self.runtime.key_wrapper(),
            self.runtime.settings,
            self.runtime.http_client(),
            workspace_id=self.meta.workspace_id,
            execution_id=self.meta.execution_id,
            sandbox=self.meta.sandbox,
        )

    def _instagram(self) -> InstagramGateway | None:
        """The Instagram service of this run (ledger, policy, pacing, sandbox)."""
        if self.meta.workspace_id is None:
            return None
        return InstagramGateway(
            self.runtime.db,
            self.runtime.key_wrapper(),
            self.runtime.settings.instagram,
            self.runtime.http_client(),
            workspace_id=self.meta.workspace_id,
            flow_id=self.meta.flow_id,
            flow_version_id=self.meta.flow_version_id,
            execution_id=self.meta.execution_id,
            sandbox=self.meta.sandbox,
        )


def _check_outputs(node: CompiledNode, result: Any) -> None:
    if not isinstance(result, dict):
        msg = (
            f"node {node.spec.id!r} ({node.spec.kind}) returned {type(result).__name__}, "
            "expected a mapping of output port to value"
        )
        raise UserError(msg, code="node_contract")
    unknown = set(result) - set(node.outputs)
    if unknown:
        msg = (
            f"node {node.spec.id!r} ({node.spec.kind}) returned unknown output ports "
            f"{sorted(unknown)}; declared: {sorted(node.outputs)}"
        )
        raise UserError(msg, code="node_contract")


# No flow_run_name: with one set, Prefect builds an extra run context whose result-store
# lookup costs ~30 ms per run here. The flow is named after the user's flow instead.
@flow(name="socialflow-graph", persist_result=False, validate_parameters=False)
async def execute_graph(graph: str, trigger: dict[str, Any], meta: RunMeta | dict[str, Any]) -> Any:
    """Run a graph for one trigger payload and record every node.

    Args:
        graph: The flow version's graph as JSON (``GraphSpec``). JSON rather than an object so
            that Prefect stores and passes it without walking every node on each run.
        trigger: The payload that started the run (an event, a webhook body, a tick).
        meta: Ownership and ids of the run.

    Returns:
        A summary of node statuses, or a ``Failed`` state naming the first failed node.
    """
    runtime = get_runtime()
    meta = meta if isinstance(meta, RunMeta) else RunMeta.model_validate(meta)
    flow_ctx = FlowRunContext.get()
    flow_run_id = flow_ctx.flow_run.id if flow_ctx and flow_ctx.flow_run else None
    limit = runtime.settings.engine.max_recorded_bytes
    on_node, on_execution = _live_listeners(runtime, meta)
    recorder = ExecutionRecorder(
        runtime.db,
        meta.execution_id,
        listeners=on_node,
        execution_listeners=on_execution,
        attempt=meta.attempt,
    )
    recorder.start(
        flow_name=meta.flow_name,
        workspace_id=meta.workspace_id,
        flow_id=meta.flow_id,
        flow_version_id=meta.flow_version_id,
        trigger_event_id=meta.trigger_event_id,
        trigger_payload=cap_json(trigger, limit)[0],
        sandbox=meta.sandbox,
        prefect_flow_run_id=flow_run_id,
    )
    run: GraphRun | None = None
    try:
        compiled = compile_graph_json(graph, runtime.registry)
        recorder.update_execution(trigger_kind=compiled.trigger.spec.kind)
        resume = await load_resume(runtime, meta)
        run = GraphRun(runtime, compiled, trigger, meta, recorder, flow_run_id, resume)
        await run.load_contact()
        with TagsContext(current_tags=set()):  # tag the flow run only, never its task runs
            await run.execute()
    except asyncio.CancelledError:
        if meta.execution_id in runtime.lease_lost:
            recorder.abandon()  # another worker runs it now and records it
            raise
        if meta.execution_id not in runtime.cancel_requested:
            await asyncio.shield(recorder.finish(ExecutionStatus.FAILED, error=_ABORTED))
            raise
        if run is not None:
            run.cancel_unfinished(CANCELLED_MESSAGE)
        await asyncio.shield(recorder.finish(ExecutionStatus.CANCELLED, error=CANCELLED_MESSAGE))
        raise
    except BaseException as exc:
        message = exc.message if isinstance(exc, AppError) else f"run aborted: {exc!r}"
        await asyncio.shield(recorder.finish(ExecutionStatus.FAILED, error=message))
        raise
    failed = run.failed()
    if failed:
        first = failed[0]
        message = f"node {first.label!r} ({first.node_id}, {first.kind}) failed: {first.error}"
        await recorder.finish(ExecutionStatus.FAILED, error=message, error_node_id=first.node_id)
        return Failed(message=message)
    if run.waiting:
        return await park(meta, recorder, run.waiting, run.outputs, flow_run_id)
    await recorder.finish(ExecutionStatus.COMPLETED)
    return {node_id: record.status for node_id, record in run.records.items()}


def _live_listeners(
    runtime: EngineRuntime, meta: RunMeta
) -> tuple[tuple[Listener, ...], tuple[ExecutionListener, ...]]:
    """Recorder listeners publishing the run's updates to the runtime's hub; none without a
    workspace, since only workspace members can subscribe."""
    if meta.workspace_id is None:
        return (), ()
    publisher = runtime.events.publisher(
        workspace_id=meta.workspace_id,
        flow_id=meta.flow_id,
        flow_version_id=meta.flow_version_id,
        flow_name=meta.flow_name,
        sandbox=meta.sandbox,
    )
    return (publisher.node,), (publisher.execution,)


# Prefect refuses these in flow and deployment names (prefect.types.names.BANNED_CHARACTERS);
# each becomes the Unicode character that looks like it, so Prefect's UI reads as typed
_LOOKALIKES = str.maketrans(
    {"/": "\u2215", "%": "\uff05", "&": "\uff06", "<": "\u2039", ">": "\u203a"}
)


def prefect_name(name: str) -> str:
    """``name`` in a form Prefect accepts for flows and deployments: its banned characters
    (``/ % & < >``) replaced by look-alikes (U+2215 division slash, U+FF05 fullwidth percent,
    U+FF06 fullwidth ampersand, U+2039 and U+203A angle quotes), at most 200 characters. The
    app keeps and shows the name as typed."""
    return name.translate(_LOOKALIKES)[:200] or "flow"


@lru_cache(maxsize=1024)
def flow_for(flow_name: str) -> Flow[..., Coroutine[Any, Any, Any]]:
    """The Prefect flow that runs graphs under a user flow's name, so the UI groups its runs."""
    return execute_graph.with_options(name=prefect_name(flow_name))


async def start_graph_run(
    graph: GraphSpec | str, trigger: dict[str, Any], meta: RunMeta | None = None
) -> State[Any]:
    """Validate ``graph`` and run it in this process as a Prefect flow run.

    Returns:
        The flow run's final state; the execution is recorded under ``meta.execution_id``.

    Raises:
        ValidationError: The graph cannot run; every problem is listed.
    """
    meta = meta or RunMeta()
    text = graph if isinstance(graph, str) else graph.model_dump_json(exclude_defaults=True)
    compiled = compile_graph_json(text, get_runtime().registry)
    run_tags = meta.tags(compiled.trigger.spec.kind)
    prefect_flow = flow_for(meta.flow_name)
    if meta.resume_flow_run_id is not None:
        # a continuation after a wait: the flow run that paused for it goes on, when it can
        paused = await paused_flow_run(meta.resume_flow_run_id)
        if paused is not None:
            try:
                resumed = await run_flow_async(
                    prefect_flow,
                    flow_run=paused,
                    parameters={"graph": text, "trigger": trigger, "meta": meta},
                    return_type="state",
                )
            except Pause as pause:
                return cast(State[Any], pause.state)
            return cast(State[Any], resumed)
    if meta.attempt is not None or meta.deployment_id is not None:
        # a worker's run: its flow run is created first, under a name that says which
        # execution and attempt it is, so a worker taking the execution over can find it
        flow_run = await _create_flow_run(meta, prefect_flow, text, trigger, run_tags)
        try:
            final = await run_flow_async(
                prefect_flow,
                flow_run=flow_run,
                parameters={"graph": text, "trigger": trigger, "meta": meta},
                return_type="state",
            )
        except Pause as pause:  # the run waits for a reply: its flow run is Paused
            return cast(State[Any], pause.state)
        return cast(State[Any], final)
    with tags(*run_tags):
        try:
            state: State[Any] = await prefect_flow(
                graph=text, trigger=trigger, meta=meta, return_state=True
            )
        except Pause as pause:
            return cast(State[Any], pause.state)
    return state


def attempt_run_name(execution_id: uuid.UUID, attempt: int) -> str:
    """The Prefect flow run name of one attempt at an execution."""
    return f"execution-{execution_id}-attempt-{attempt}"


async def _create_flow_run(
    meta: RunMeta,
    prefect_flow: Flow[..., Any],
    graph: str,
    trigger: dict[str, Any],
    run_tags: list[str],
) -> FlowRun:
    """Create the run's Prefect flow run, Pending (so no Prefect worker polling a pool takes
    it: this process runs it): from the flow's deployment when it has one, so the run is
    listed under it, else as a run of the flow."""
    name = attempt_run_name(meta.execution_id, meta.attempt or 1)
    parameters = {"graph": graph, "trigger": trigger, "meta": meta.model_dump(mode="json")}
    async with get_client() as client:
        if meta.deployment_id is not None:
            try:
                return await client.create_flow_run_from_deployment(
                    meta.deployment_id,
                    parameters=parameters,
                    state=Pending(),
                    name=name,
                    tags=run_tags,
                    # one key per start: the client's own retry of a request that timed out
                    # answers the flow run the first request made, while a slot's next try
                    # at the same attempt (its last flow run Crashed) gets a fresh one
                    idempotency_key=f"{name}-{uuid.uuid4()}",
                )
            except ObjectNotFound:
                _log.warning(
                    "the flow's deployment is gone; running without it",
                    deployment_id=str(meta.deployment_id),
                )
        return await client.create_flow_run(
            prefect_flow, name=name, parameters=parameters, tags=run_tags, state=Pending()
        )
