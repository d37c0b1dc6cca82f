import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok, type Role } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useMe, useWorkspace } from "../state";

const ROLES: Role[] = ["viewer", "editor", "admin"];

export function Members() {
  const { id: ws, isAdmin } = useWorkspace();
  const me = useMe();
  const queries = useQueryClient();
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const path = { workspace_id: ws };
  const members = useQuery({
    queryKey: ["members", ws],
    queryFn: async () => ok(await api.GET("/api/workspaces/{workspace_id}/members", { params: { path } })),
    enabled: isAdmin,
  });
  const refresh = () => queries.invalidateQueries({ queryKey: ["members", ws] });
  const add = useMutation({
    mutationFn: async () => ok(await api.POST("/api/workspaces/{workspace_id}/members", { params: { path }, body: { email, role } })),
    onSuccess: () => {
      setEmail("");
      void refresh();
    },
  });
  const change = useMutation({
    mutationFn: async ({ user, next }: { user: string; next: Role }) =>
      ok(await api.PATCH("/api/workspaces/{workspace_id}/members/{user_id}", { params: { path: { ...path, user_id: user } }, body: { role: next } })),
    onSettled: () => void refresh(),
  });
  const remove = useMutation({
    mutationFn: async (user: string) =>
      ok(await api.DELETE("/api/workspaces/{workspace_id}/members/{user_id}", { params: { path: { ...path, user_id: user } } })),
    onSettled: () => void refresh(),
  });
  if (!isAdmin) {
    return (
      <section className="page">
        <h1>Members</h1>
        <p className="empty">Only admins of this workspace manage its members.</p>
      </section>
    );
  }
  const submit = (e: FormEvent) => {
    e.preventDefault();
    add.mutate();
  };
  return (
    <section className="page">
      <h1>Members</h1>
      <ErrorNote error={members.error ?? change.error ?? remove.error} />
      <table className="grid">
        <thead>
          <tr>
            <th>Email</th>
            <th>Role</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {(members.data ?? []).map((m) => (
            <tr key={m.user_id}>
              <td>
                {m.email} {m.user_id === me.data?.id && <span className="muted">(you)</span>}
              </td>
              <td>
                <select
                  aria-label={`Role of ${m.email}`}
                  value={m.role}
                  onChange={(e) => change.mutate({ user: m.user_id, next: e.target.value as Role })}
                >
                  {ROLES.map((r) => (
                    <option key={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>
                <button
                  type="button"
                  className="danger"
                  onClick={() => window.confirm(`Remove ${m.email} from this workspace?`) && remove.mutate(m.user_id)}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card" onSubmit={submit} aria-label="Add member">
        <h2>Add a member</h2>
        <p className="muted small">They need a Socialflow account already.</p>
        <label>
          Email
          <input type="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r}>{r}</option>
            ))}
          </select>
        </label>
        <button type="submit" className="primary" disabled={add.isPending}>
          Add member
        </button>
        <ErrorNote error={add.error} />
      </form>
    </section>
  );
}
