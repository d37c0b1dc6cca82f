"""Workspaces and members: the creator is admin, roles gate actions, a workspace keeps an admin."""

from __future__ import annotations

import uuid

import httpx

from tests.api.conftest import Team, sign_up


async def test_creator_is_admin_and_lists_only_own_workspaces(
    client: httpx.AsyncClient, team: Team
) -> None:
    mine = await client.get("/api/workspaces", headers=team.admin.headers)
    assert [(w["name"], w["role"]) for w in mine.json()] == [("Acme", "admin")]
    viewer_view = await client.get("/api/workspaces", headers=team.viewer.headers)
    assert [(w["id"], w["role"]) for w in viewer_view.json()] == [(team.workspace_id, "viewer")]
    outsider = await client.get("/api/workspaces", headers=team.outsider.headers)
    assert [w["id"] for w in outsider.json()] == [team.other_workspace_id]


async def test_members_listed_with_roles(client: httpx.AsyncClient, team: Team) -> None:
    members = await client.get(
        f"/api/workspaces/{team.workspace_id}/members", headers=team.viewer.headers
    )
    assert members.status_code == 200
    assert {m["email"]: m["role"] for m in members.json()} == {
        team.admin.email: "admin",
        team.editor.email: "editor",
        team.viewer.email: "viewer",
    }


async def test_rename_and_delete_need_admin(client: httpx.AsyncClient, team: Team) -> None:
    url = f"/api/workspaces/{team.workspace_id}"
    denied = await client.patch(url, json={"name": "Nope"}, headers=team.editor.headers)
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"
    assert "admin" in denied.json()["message"]
    renamed = await client.patch(url, json={"name": "Acme Ltd"}, headers=team.admin.headers)
    assert renamed.json()["name"] == "Acme Ltd"
    assert (await client.delete(url, headers=team.viewer.headers)).status_code == 403
    assert (await client.delete(url, headers=team.admin.headers)).status_code == 204
    assert (await client.get(url, headers=team.admin.headers)).status_code == 404


async def test_last_admin_cannot_be_demoted_or_removed(
    client: httpx.AsyncClient, team: Team
) -> None:
    base = f"/api/workspaces/{team.workspace_id}/members"
    demote = await client.patch(
        f"{base}/{team.admin.user_id}", json={"role": "editor"}, headers=team.admin.headers
    )
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_admin"
    remove = await client.delete(f"{base}/{team.admin.user_id}", headers=team.admin.headers)
    assert remove.status_code == 409
    # with a second admin, the first may step down
    promoted = await client.patch(
        f"{base}/{team.editor.user_id}", json={"role": "admin"}, headers=team.admin.headers
    )
    assert promoted.json()["role"] == "admin"
    stepped_down = await client.patch(
        f"{base}/{team.admin.user_id}", json={"role": "viewer"}, headers=team.admin.headers
    )
    assert stepped_down.status_code == 200
    # the former admin lost the rights at once
    again = await client.patch(
        f"{base}/{team.viewer.user_id}", json={"role": "editor"}, headers=team.admin.headers
    )
    assert again.status_code == 403


async def test_adding_members_validates_and_reports(client: httpx.AsyncClient, team: Team) -> None:
    base = f"/api/workspaces/{team.workspace_id}/members"
    unknown = await client.post(
        base, json={"email": "ghost@example.com", "role": "viewer"}, headers=team.admin.headers
    )
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "user_not_found"
    again = await client.post(
        base, json={"email": team.viewer.email, "role": "viewer"}, headers=team.admin.headers
    )
    assert again.status_code == 409
    bad_role = await client.post(
        base, json={"email": team.viewer.email, "role": "owner"}, headers=team.admin.headers
    )
    assert bad_role.status_code == 422
    problem = bad_role.json()["details"]["problems"][0]
    assert problem["field"] == "body.role"
    assert "admin" in problem["message"] and "viewer" in problem["message"]
    newcomer = await sign_up(client)
    added = await client.post(
        base, json={"email": newcomer.email.upper(), "role": "editor"}, headers=team.admin.headers
    )
    assert added.status_code == 201
    assert added.json()["role"] == "editor"
    gone = await client.delete(f"{base}/{newcomer.user_id}", headers=team.admin.headers)
    assert gone.status_code == 204
    assert (
        await client.get(f"/api/workspaces/{team.workspace_id}", headers=newcomer.headers)
    ).status_code == 404


async def test_outsiders_cannot_tell_a_workspace_exists(
    client: httpx.AsyncClient, team: Team
) -> None:
    real = await client.get(f"/api/workspaces/{team.workspace_id}", headers=team.outsider.headers)
    fake = await client.get(f"/api/workspaces/{uuid.uuid4()}", headers=team.outsider.headers)
    assert real.status_code == fake.status_code == 404
    assert real.json()["code"] == fake.json()["code"] == "workspace_not_found"
    anonymous = await client.get(f"/api/workspaces/{team.workspace_id}")
    assert anonymous.status_code == 401
