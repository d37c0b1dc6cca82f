import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Schemas } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { timeAgo } from "../components/Status";
import { useWorkspace } from "../state";

type Kind = Schemas["CredentialCreate"]["kind"];
interface Field {
  name: string;
  label: string;
  secret: boolean;
  optional?: boolean;
}

/** The secret fields of each credential kind (the API's CredentialCreate.secret variants). */
export const KINDS: Record<Kind, Field[]> = {
  instagram: [{ name: "access_token", label: "Access token", secret: true }],
  openai: [
    { name: "api_key", label: "API key", secret: true },
    { name: "base_url", label: "Base URL", secret: false, optional: true },
  ],
  anthropic: [{ name: "api_key", label: "API key", secret: true }],
  ollama: [
    { name: "base_url", label: "Base URL", secret: false },
    { name: "api_key", label: "API key", secret: true, optional: true },
  ],
  pinecone: [{ name: "api_key", label: "API key", secret: true }],
  "http-header": [
    { name: "header_name", label: "Header name", secret: false },
    { name: "header_value", label: "Header value", secret: true },
  ],
  "http-basic": [
    { name: "username", label: "Username", secret: false },
    { name: "password", label: "Password", secret: true },
  ],
  s3: [
    { name: "access_key_id", label: "Access key id", secret: false },
    { name: "secret_access_key", label: "Secret access key", secret: true },
    { name: "region", label: "Region", secret: false, optional: true },
    { name: "endpoint_url", label: "Endpoint URL", secret: false, optional: true },
  ],
};

/** Only the fields given: optional ones left empty are omitted. */
export function secretBody(kind: Kind, values: Record<string, string>): Record<string, string> {
  const body: Record<string, string> = {};
  for (const f of KINDS[kind]) if (values[f.name] || !f.optional) body[f.name] = values[f.name] ?? "";
  return body;
}

function SecretFields({ kind, values, onChange }: { kind: Kind; values: Record<string, string>; onChange: (v: Record<string, string>) => void }) {
  return (
    <>
      {KINDS[kind].map((f) => (
        <label key={f.name}>
          {f.label}
          {f.optional && <span className="muted"> (optional)</span>}
          <input
            type={f.secret ? "password" : "text"}
            autoComplete="off"
            required={!f.optional}
            value={values[f.name] ?? ""}
            onChange={(e) => onChange({ ...values, [f.name]: e.target.value })}
          />
        </label>
      ))}
    </>
  );
}

export function Credentials() {
  const { id: ws, canEdit } = useWorkspace();
  const queries = useQueryClient();
  const [name, setName] = useState("");
  const [kind, setKind] = useState<Kind>("http-header");
  const [values, setValues] = useState<Record<string, string>>({});
  const [rotating, setRotating] = useState<string>();
  const [rotation, setRotation] = useState<Record<string, string>>({});
  const path = { workspace_id: ws };
  const list = useQuery({
    queryKey: ["credentials", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/credentials", { params: { path } })),
  });
  const refresh = () => queries.invalidateQueries({ queryKey: ["credentials", ws] });
  const create = useMutation({
    mutationFn: async () =>
      ok(
        await api.POST("/api/workspaces/{workspace_id}/credentials", {
          params: { path },
          body: { name, kind, secret: secretBody(kind, values) as Schemas["CredentialCreate"]["secret"] },
        }),
      ),
    onSuccess: () => {
      setName("");
      setValues({});
      void refresh();
    },
  });
  const rotate = useMutation({
    mutationFn: async ({ id, kind: k }: { id: string; kind: Kind }) =>
      ok(
        await api.PATCH("/api/workspaces/{workspace_id}/credentials/{credential_id}", {
          params: { path: { ...path, credential_id: id } },
          body: { secret: secretBody(k, rotation) },
        }),
      ),
    onSuccess: () => {
      setRotating(undefined);
      setRotation({});
      void refresh();
    },
  });
  const remove = useMutation({
    mutationFn: async (id: string) =>
      ok(await api.DELETE("/api/workspaces/{workspace_id}/credentials/{credential_id}", { params: { path: { ...path, credential_id: id } } })),
    onSuccess: () => void refresh(),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  const items = list.data ?? [];
  return (
    <section className="page">
      <h1>Credentials</h1>
      <p className="muted">Secrets are stored encrypted and never shown again; only a hint is.</p>
      <ErrorNote error={list.error ?? rotate.error ?? remove.error} />
      {list.isSuccess && items.length === 0 && <p className="empty">No credentials yet.</p>}
      {items.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th>Name</th>
              <th>Kind</th>
              <th>Secret</th>
              <th>Updated</th>
              {canEdit && <th>Actions</th>}
            </tr>
          </thead>
          <tbody>
            {items.map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>{c.kind}</td>
                <td className="mono">{c.hint}</td>
                <td>{timeAgo(c.updated_at)}</td>
                {canEdit && (
                  <td>
                    {rotating === c.id ? (
                      <form
                        className="inline"
                        onSubmit={(e) => {
                          e.preventDefault();
                          rotate.mutate({ id: c.id, kind: c.kind as Kind });
                        }}
                      >
                        <SecretFields kind={c.kind as Kind} values={rotation} onChange={setRotation} />
                        <button type="submit" className="primary">
                          Save new secret
                        </button>
                        <button type="button" onClick={() => setRotating(undefined)}>
                          Cancel
                        </button>
                      </form>
                    ) : (
                      <div className="row">
                        <button type="button" onClick={() => setRotating(c.id)}>
                          Rotate
                        </button>
                        <button
                          type="button"
                          className="danger"
                          onClick={() => window.confirm(`Delete credential “${c.name}”?`) && remove.mutate(c.id)}
                        >
                          Delete
                        </button>
                      </div>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canEdit && (
        <form className="card" onSubmit={submit} aria-label="New credential">
          <h2>New credential</h2>
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
          </label>
          <label>
            Kind
            <select
              value={kind}
              onChange={(e) => {
                setKind(e.target.value as Kind);
                setValues({});
              }}
            >
              {Object.keys(KINDS).map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </label>
          <SecretFields kind={kind} values={values} onChange={setValues} />
          <button type="submit" className="primary" disabled={create.isPending}>
            Save credential
          </button>
          <ErrorNote error={create.error} />
        </form>
      )}
    </section>
  );
}
