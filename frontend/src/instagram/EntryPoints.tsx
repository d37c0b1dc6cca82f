import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ok } from "../api/client";
import { ErrorNote } from "../components/ErrorNote";
import { useWorkspace } from "../state";
import { iceBreakerLines, menuLines, parseIceBreakers, parseMenu } from "./entryPoints";

interface Account {
  id: string;
  username: string;
}

/** An account's ice breakers and persistent menu: each postback item's payload starts the flows
 * whose DM trigger takes postbacks with that keyword. */
export function EntryPoints({ accounts, canEdit }: { accounts: Account[]; canEdit: boolean }) {
  const { id: ws } = useWorkspace();
  const queries = useQueryClient();
  const [accountId, setAccountId] = useState(accounts[0]?.id ?? "");
  const [breakers, setBreakers] = useState("");
  const [menu, setMenu] = useState("");
  useEffect(() => {
    // the accounts load after the first render: pick the first one once they are there
    if (!accounts.some((a) => a.id === accountId) && accounts[0]) setAccountId(accounts[0].id);
  }, [accounts, accountId]);
  const path = { workspace_id: ws, account_id: accountId };
  const profile = useQuery({
    queryKey: ["ig-profile", ws, accountId],
    enabled: accountId !== "",
    queryFn: async () =>
      ok(await api.GET("/api/workspaces/{workspace_id}/instagram/accounts/{account_id}/messenger-profile", { params: { path } })),
  });
  useEffect(() => {
    if (!profile.data) return;
    setBreakers(iceBreakerLines(profile.data.ice_breakers ?? []));
    setMenu(menuLines(profile.data.persistent_menu ?? []));
  }, [profile.data]);
  const save = useMutation({
    mutationFn: async () =>
      ok(
        await api.PUT("/api/workspaces/{workspace_id}/instagram/accounts/{account_id}/messenger-profile", {
          params: { path },
          body: { ice_breakers: parseIceBreakers(breakers), persistent_menu: parseMenu(menu) },
        }),
      ),
    onSuccess: () => void queries.invalidateQueries({ queryKey: ["ig-profile", ws, accountId] }),
  });
  if (accounts.length === 0) return null;
  return (
    <>
      <h2>Ice breakers and menu</h2>
      <p className="muted small">
        One per line: <code>question | PAYLOAD</code> (at most 4) and <code>title | PAYLOAD</code> or <code>title | https://link</code>. A
        tap sends the payload: a flow whose DM trigger takes postbacks with that keyword runs.
      </p>
      <label>
        Account{" "}
        <select value={accountId} onChange={(e) => setAccountId(e.target.value)}>
          {accounts.map((a) => (
            <option key={a.id} value={a.id}>
              @{a.username}
            </option>
          ))}
        </select>
      </label>
      <div className="row">
        <label>
          Ice breakers
          <textarea rows={4} value={breakers} onChange={(e) => setBreakers(e.target.value)} disabled={!canEdit} />
        </label>
        <label>
          Persistent menu
          <textarea rows={4} value={menu} onChange={(e) => setMenu(e.target.value)} disabled={!canEdit} />
        </label>
      </div>
      {canEdit && (
        <button type="button" onClick={() => save.mutate()} disabled={save.isPending || profile.isPending}>
          Save on Instagram
        </button>
      )}
      <ErrorNote error={save.error ?? profile.error} />
    </>
  );
}
