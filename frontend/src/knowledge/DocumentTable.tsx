import type { KnowledgeDocument } from "../api/client";
import { StatusBadge, timeAgo } from "../components/Status";
import { chunksText, documentType, formatBytes } from "./documents";

interface Props {
  documents: KnowledgeDocument[];
  canEdit: boolean;
  deleting?: string;
  onDelete: (document: KnowledgeDocument) => void;
}

/** The documents of a knowledge base with where their ingestion stands. */
export function DocumentTable({ documents, canEdit, deleting, onDelete }: Props) {
  return (
    <table className="grid documents" aria-label="Documents">
      <thead>
        <tr>
          <th>Name</th>
          <th>Type</th>
          <th>Size</th>
          <th>Status</th>
          <th>Uploaded</th>
          {canEdit && <th>Actions</th>}
        </tr>
      </thead>
      <tbody>
        {documents.map((d) => (
          <tr key={d.id} data-status={d.status}>
            <td className="doc-name">
              {d.filename}
              {d.replaces_id && d.status !== "ready" && (
                <div className="muted small">replaces the earlier upload of this name once ready</div>
              )}
            </td>
            <td>{documentType(d)}</td>
            <td>{formatBytes(d.size)}</td>
            <td className="doc-status">
              <StatusBadge status={d.status} /> <span className="muted">{chunksText(d)}</span>
              {d.status === "failed" && d.error && <div className="doc-error">{d.error}</div>}
            </td>
            <td title={new Date(d.created_at).toLocaleString()}>{timeAgo(d.created_at)}</td>
            {canEdit && (
              <td>
                <button
                  type="button"
                  className="danger"
                  disabled={deleting === d.id}
                  aria-label={`Delete ${d.filename}`}
                  onClick={() => window.confirm(`Delete ${d.filename}? Its file and search chunks are removed.`) && onDelete(d)}
                >
                  Delete
                </button>
              </td>
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
