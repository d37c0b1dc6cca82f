import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type KnowledgeBase, type KnowledgeDocument } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { timeAgo } from "../components/Status";
import { DocumentTable } from "../knowledge/DocumentTable";
import { counted, pollInterval } from "../knowledge/documents";
import { TrySearch } from "../knowledge/TrySearch";
import { UploadZone } from "../knowledge/UploadZone";
import { useWorkspace } from "../state";

const BASES = "/api/workspaces/{workspace_id}/knowledge-bases";
const BASE = "/api/workspaces/{workspace_id}/knowledge-bases/{knowledge_base_id}";
const DOCUMENTS = "/api/workspaces/{workspace_id}/knowledge-bases/{knowledge_base_id}/documents";
const DOCUMENT = "/api/workspaces/{workspace_id}/knowledge-bases/{knowledge_base_id}/documents/{document_id}";

function NewKnowledgeBase({ onClose }: { onClose: () => void }) {
  const { id: ws } = useWorkspace();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const create = useMutation({
    mutationFn: async () =>
      ok(await api.POST(BASES, { params: { path: { workspace_id: ws } }, body: { name: name.trim(), description: description.trim() } })),
    onSuccess: async (base) => {
      await queries.invalidateQueries({ queryKey: ["knowledge-bases", ws] });
      navigate(base.id);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };
  return (
    <form className="card" onSubmit={submit} aria-label="New knowledge base">
      <h2>New knowledge base</h2>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} placeholder="Shop FAQ" />
      </label>
      <label>
        Description <span className="muted">(optional)</span>
        <textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={5000} placeholder="What it holds and which flows use it" />
      </label>
      <div className="row">
        <button type="submit" className="primary" disabled={create.isPending || !name.trim()}>
          Create knowledge base
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
      <ErrorNote error={create.error} />
    </form>
  );
}

/** The workspace's knowledge bases. */
export function KnowledgeBases() {
  const { id: ws, canEdit } = useWorkspace();
  const queries = useQueryClient();
  const [creating, setCreating] = useState(false);
  const bases = useQuery({
    queryKey: ["knowledge-bases", ws],
    queryFn: async () => ok(await api.GET(BASES, { params: { path: { workspace_id: ws }, query: { limit: 100 } } })),
  });
  const remove = useMutation({
    mutationFn: async (id: string) => ok(await api.DELETE(BASE, { params: { path: { workspace_id: ws, knowledge_base_id: id } } })),
    onSuccess: () => queries.invalidateQueries({ queryKey: ["knowledge-bases", ws] }),
  });
  const confirmDelete = (base: KnowledgeBase) =>
    window.confirm(
      `Delete the knowledge base “${base.name}”? Its ${counted(base.documents, "document")} and their search index are deleted; flows using it will fail.`,
    ) && remove.mutate(base.id);
  const items = bases.data?.items ?? [];
  return (
    <section className="page">
      <div className="page-head">
        <h1>Knowledge bases</h1>
        {canEdit && !creating && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New knowledge base
          </button>
        )}
      </div>
      {creating && <NewKnowledgeBase onClose={() => setCreating(false)} />}
      <ErrorNote error={bases.error ?? remove.error} />
      {bases.isSuccess && items.length === 0 && (
        <div className="empty">
          <p>
            <strong>No knowledge bases yet.</strong> A knowledge base holds your own documents — FAQs, product sheets,
            opening hours, policies — split into passages and indexed for search.
          </p>
          <p>
            Flows answer from it with the <em>Knowledge answer</em> and <em>Knowledge retrieve</em> nodes, so replies to
            comments and DMs stick to what your documents say.
          </p>
          <p>{canEdit ? "Create one, then upload documents to it." : "Editors of this workspace can create them."}</p>
        </div>
      )}
      {items.length > 0 && (
        <table className="grid" aria-label="Knowledge bases">
          <thead>
            <tr>
              <th>Name</th>
              <th>Documents</th>
              <th>Chunks</th>
              <th>Embedder</th>
              <th>Updated</th>
              {canEdit && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {items.map((base) => (
              <tr key={base.id}>
                <td>
                  <Link to={base.id}>{base.name}</Link>
                  {base.description && <div className="muted small">{base.description}</div>}
                </td>
                <td>
                  {base.documents}
                  {base.ready_documents < base.documents && <span className="muted"> ({base.ready_documents} ready)</span>}
                </td>
                <td>{base.chunks}</td>
                <td className="muted small">
                  {base.embedder_provider} · {base.embedder_model}
                </td>
                <td>{timeAgo(base.updated_at)}</td>
                {canEdit && (
                  <td>
                    <button type="button" className="danger" disabled={remove.isPending} onClick={() => confirmDelete(base)} aria-label={`Delete ${base.name}`}>
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** One knowledge base: upload documents, watch them being ingested, try questions. */
export function KnowledgeBasePage() {
  const { id: ws, canEdit } = useWorkspace();
  const { kbId = "" } = useParams();
  const queries = useQueryClient();
  const path = { workspace_id: ws, knowledge_base_id: kbId };
  const base = useQuery({
    queryKey: ["knowledge-base", ws, kbId],
    queryFn: async () => ok(await api.GET(BASE, { params: { path } })),
  });
  const documents = useQuery({
    queryKey: ["knowledge-documents", ws, kbId],
    queryFn: async () => ok(await api.GET(DOCUMENTS, { params: { path, query: { limit: 100 } } })),
    refetchInterval: (query) => pollInterval(query.state.data?.items),
  });
  const refresh = () => {
    void queries.invalidateQueries({ queryKey: ["knowledge-documents", ws, kbId] });
    void queries.invalidateQueries({ queryKey: ["knowledge-bases", ws] });
  };
  const remove = useMutation({
    mutationFn: async (document: KnowledgeDocument) =>
      ok(await api.DELETE(DOCUMENT, { params: { path: { ...path, document_id: document.id } } })),
    onSuccess: refresh,
  });
  const items = documents.data?.items ?? [];
  const ready = items.filter((d) => d.status === "ready").length;
  const uploadUrl = `/api/workspaces/${encodeURIComponent(ws)}/knowledge-bases/${encodeURIComponent(kbId)}/documents`;
  return (
    <section className="page knowledge-base">
      <p className="crumbs">
        <Link to=".." relative="path">← Knowledge bases</Link>
      </p>
      <ErrorNote error={base.error} />
      {base.data && (
        <div className="page-head">
          <div>
            <h1>{base.data.name}</h1>
            {base.data.description && <p className="muted">{base.data.description}</p>}
          </div>
          <p className="muted small kb-facts">
            {documents.data ? `${counted(documents.data.total, "document")}, ${ready} ready` : ""}
            <br />
            Embedder {base.data.embedder_provider} · {base.data.embedder_model}
          </p>
        </div>
      )}
      {base.data && (
        <div className="kb-layout">
          <div className="kb-main">
            {canEdit && <UploadZone url={uploadUrl} onSettled={refresh} />}
            <h2>Documents</h2>
            <ErrorNote error={documents.error ?? remove.error} />
            {documents.isSuccess && items.length === 0 && (
              <p className="empty">{canEdit ? "No documents yet: drop some above." : "No documents yet. Editors of this workspace can upload them."}</p>
            )}
            {items.length > 0 && (
              <DocumentTable documents={items} canEdit={canEdit} deleting={remove.isPending ? remove.variables?.id : undefined} onDelete={(d) => remove.mutate(d)} />
            )}
            {documents.data && documents.data.total > items.length && (
              <p className="muted small">The newest {items.length} of {documents.data.total} documents are shown.</p>
            )}
          </div>
          <TrySearch workspaceId={ws} baseId={kbId} ready={ready > 0} />
        </div>
      )}
    </section>
  );
}
