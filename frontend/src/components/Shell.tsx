import { Suspense, useState, type FormEvent } from "react";
import { NavLink, Outlet, useNavigate } from "react-router-dom";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { useMe, useWorkspace, useWorkspaces } from "../state";
import { ErrorNote } from "./ErrorNote";

/** Creates a workspace and opens it. */
export function NewWorkspace({ onDone }: { onDone?: () => void }) {
  const [name, setName] = useState("");
  const navigate = useNavigate();
  const queries = useQueryClient();
  const create = useMutation({
    mutationFn: async () =>
      ok(await api.POST("/api/workspaces", { body: { name: name.trim() } })),
    onSuccess: async (ws) => {
      await queries.invalidateQueries({ queryKey: ["workspaces"] });
      onDone?.();
      navigate(`/w/${ws.id}/flows`);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <form className="inline" onSubmit={submit} aria-label="New workspace">
      <label>
        Workspace name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
      </label>
      <button type="submit" disabled={create.isPending || !name.trim()}>
        Create workspace
      </button>
      <ErrorNote error={create.error} />
    </form>
  );
}

export function Shell() {
  const me = useMe();
  const workspaces = useWorkspaces();
  const { id, workspace, isAdmin } = useWorkspace();
  const navigate = useNavigate();
  const queries = useQueryClient();
  const [adding, setAdding] = useState(false);
  const logout = useMutation({
    mutationFn: async () => ok(await api.POST("/api/auth/logout")),
    onSettled: () => {
      queries.clear();
      navigate("/signin");
    },
  });
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href="/">
          Socialflow
        </a>
        <label className="switcher">
          <span className="sr-only">Workspace</span>
          <select
            value={id}
            aria-label="Workspace"
            onChange={(e) => navigate(`/w/${e.target.value}/flows`)}
          >
            {(workspaces.data ?? []).map((w) => (
              <option key={w.id} value={w.id}>
                {w.name} ({w.role})
              </option>
            ))}
          </select>
        </label>
        <button type="button" className="ghost" onClick={() => setAdding((v) => !v)}>
          + Workspace
        </button>
        <nav aria-label="Main">
          <NavLink to="flows">Flows</NavLink>
          <NavLink to="events">Events</NavLink>
          <NavLink to="contacts">Contacts</NavLink>
          <NavLink to="conversations">Conversations</NavLink>
          <NavLink to="broadcasts">Broadcasts</NavLink>
          <NavLink to="runs">Runs</NavLink>
          <NavLink to="credentials">Credentials</NavLink>
          {isAdmin && <NavLink to="members">Members</NavLink>}
          <NavLink to="knowledge">Knowledge</NavLink>
          <NavLink to="instagram">Instagram</NavLink>
          <NavLink to="calendar">Calendar</NavLink>
        </nav>
        <span className="who" title={me.data?.email}>
          {me.data?.email}
          {workspace && <span className={`role role-${workspace.role}`}>{workspace.role}</span>}
        </span>
        <button type="button" className="ghost" onClick={() => logout.mutate()}>
          Sign out
        </button>
      </header>
      {adding && (
        <div className="drawer">
          <NewWorkspace onDone={() => setAdding(false)} />
        </div>
      )}
      {workspaces.isSuccess && !workspace ? (
        <p className="center error" role="alert">
          This workspace does not exist or you are not a member. <a href="/">Go home</a>
        </p>
      ) : (
        <main>
          {/* a page's code loads on its first visit; the top bar stays meanwhile */}
          <Suspense fallback={<p className="center muted">Loading…</p>}>
            <Outlet />
          </Suspense>
        </main>
      )}
    </div>
  );
}
