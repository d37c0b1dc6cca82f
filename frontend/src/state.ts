// Server state shared by every page: the signed-in user, workspaces, the node palette.
import { useQuery } from "@tanstack/react-query";
import { useParams } from "react-router-dom";
import { api, ok, type NodeDescription, type Workspace } from "./api/client";

export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => ok(await api.GET("/api/users/me")),
    retry: false,
  });
}

export function useWorkspaces() {
  return useQuery({
    queryKey: ["workspaces"],
    queryFn: async () => ok(await api.GET("/api/workspaces")) as Workspace[],
  });
}

export interface WorkspaceAccess {
  id: string;
  workspace?: Workspace;
  canEdit: boolean;
  isAdmin: boolean;
}

/** The workspace in the URL and what the caller's role allows in it. */
export function useWorkspace(): WorkspaceAccess {
  const { ws = "" } = useParams();
  const { data } = useWorkspaces();
  const workspace = data?.find((w) => w.id === ws);
  const role = workspace?.role;
  return { id: ws, workspace, canEdit: role === "editor" || role === "admin", isAdmin: role === "admin" };
}

export function useNodeTypes() {
  return useQuery({
    queryKey: ["node-types"],
    queryFn: async () => ok(await api.GET("/api/node-types")) as NodeDescription[],
    staleTime: 60_000,
    select: (list) => ({ list, byKind: new Map(list.map((d) => [d.kind, d])) }),
  });
}
