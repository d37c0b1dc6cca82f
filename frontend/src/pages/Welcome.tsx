import { Navigate } from "react-router-dom";
import { NewWorkspace } from "../components/Shell";
import { ErrorNote } from "../components/ErrorNote";
import { useWorkspaces } from "../state";

const LAST = "sf-last-workspace";

/** After sign-in: the last workspace used, the first one, or a form to create one. */
export function Welcome() {
  const workspaces = useWorkspaces();
  if (workspaces.isPending) return <p className="center muted">Loading…</p>;
  if (workspaces.error) return <ErrorNote error={workspaces.error} />;
  const list = workspaces.data ?? [];
  const last = localStorage.getItem(LAST);
  const pick = list.find((w) => w.id === last) ?? list[0];
  if (pick) return <Navigate to={`/w/${pick.id}/flows`} replace />;
  return (
    <section className="card narrow">
      <h1>Welcome to Socialflow</h1>
      <p>Flows live in workspaces. Create your first one to start building.</p>
      <NewWorkspace />
    </section>
  );
}

export function rememberWorkspace(id: string): void {
  localStorage.setItem(LAST, id);
}
