"""Every workspace route, walked as admin, editor, viewer, outsider and anonymous.

The matrix names the least role each route needs. A route the app serves but the matrix does
not list fails the test, so a new route cannot ship without a decision about who may call it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from tests.api.conftest import Team, make_team

ROLES = {"viewer": 0, "editor": 1, "admin": 2}
FLOWS = "/api/workspaces/{workspace_id}/flows"
CREDENTIALS = "/api/workspaces/{workspace_id}/credentials"
KNOWLEDGE = "/api/workspaces/{workspace_id}/knowledge-bases"
CONTACTS = "/api/workspaces/{workspace_id}/contacts"
CONTACT_TAGS = "/api/workspaces/{workspace_id}/contact-tags"
CONTACT_FIELDS = "/api/workspaces/{workspace_id}/contact-fields"
POSTS = "/api/workspaces/{workspace_id}/posts"
BROADCASTS = "/api/workspaces/{workspace_id}/broadcasts"

MATRIX: dict[tuple[str, str], str] = {
    ("GET", "/api/workspaces/{workspace_id}"): "viewer",
    ("PATCH", "/api/workspaces/{workspace_id}"): "admin",
    ("DELETE", "/api/workspaces/{workspace_id}"): "admin",
    ("GET", "/api/workspaces/{workspace_id}/members"): "viewer",
    ("POST", "/api/workspaces/{workspace_id}/members"): "admin",
    ("PATCH", "/api/workspaces/{workspace_id}/members/{user_id}"): "admin",
    ("DELETE", "/api/workspaces/{workspace_id}/members/{user_id}"): "admin",
    # flows and versions: viewers read, editors change
    ("GET", f"{FLOWS}"): "viewer",
    ("GET", f"{FLOWS}/{{flow_id}}"): "viewer",
    ("GET", f"{FLOWS}/{{flow_id}}/export"): "viewer",
    ("GET", f"{FLOWS}/{{flow_id}}/versions"): "viewer",
    ("GET", f"{FLOWS}/{{flow_id}}/versions/{{number}}"): "viewer",
    ("POST", f"{FLOWS}"): "editor",
    ("POST", f"{FLOWS}/import"): "editor",
    ("PATCH", f"{FLOWS}/{{flow_id}}"): "editor",
    ("DELETE", f"{FLOWS}/{{flow_id}}"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/duplicate"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/publish"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/pause"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/resume"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/versions/{{number}}/activate"): "editor",
    ("GET", f"{FLOWS}/{{flow_id}}/webhook"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/webhook/secret"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/run"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/test"): "editor",
    ("POST", "/api/workspaces/{workspace_id}/executions/{execution_id}/rerun"): "editor",
    ("POST", "/api/workspaces/{workspace_id}/executions/{execution_id}/cancel"): "editor",
    ("POST", f"{FLOWS}/{{flow_id}}/replays"): "editor",
    ("GET", f"{FLOWS}/{{flow_id}}/replays/{{replay_id}}"): "viewer",
    # the event log
    ("GET", "/api/workspaces/{workspace_id}/events"): "viewer",
    ("GET", "/api/workspaces/{workspace_id}/events/{event_id}"): "viewer",
    # conversations: waits and global keywords
    ("GET", "/api/workspaces/{workspace_id}/conversations/waits"): "viewer",
    ("GET", "/api/workspaces/{workspace_id}/conversations/keywords"): "viewer",
    ("PUT", "/api/workspaces/{workspace_id}/conversations/keywords"): "editor",
    # run history
    ("GET", "/api/workspaces/{workspace_id}/executions"): "viewer",
    ("GET", "/api/workspaces/{workspace_id}/executions/{execution_id}"): "viewer",
    # credentials: editors see names for pickers, admins manage them
    ("GET", f"{CREDENTIALS}"): "editor",
    ("GET", f"{CREDENTIALS}/{{credential_id}}"): "editor",
    ("POST", f"{CREDENTIALS}"): "admin",
    ("PATCH", f"{CREDENTIALS}/{{credential_id}}"): "admin",
    ("DELETE", f"{CREDENTIALS}/{{credential_id}}"): "admin",
    # instagram: accounts and the send ledger
    ("GET", "/api/workspaces/{workspace_id}/instagram/accounts"): "viewer",
    ("GET", "/api/workspaces/{workspace_id}/instagram/outbox"): "viewer",
    ("GET", "/api/workspaces/{workspace_id}/instagram/sample-events"): "viewer",
    ("PATCH", "/api/workspaces/{workspace_id}/instagram/accounts/{account_id}"): "admin",
    (
        "GET",
        "/api/workspaces/{workspace_id}/instagram/accounts/{account_id}/messenger-profile",
    ): "viewer",
    (
        "PUT",
        "/api/workspaces/{workspace_id}/instagram/accounts/{account_id}/messenger-profile",
    ): "admin",
    ("DELETE", "/api/workspaces/{workspace_id}/instagram/accounts/{account_id}"): "admin",
    ("POST", "/api/workspaces/{workspace_id}/instagram/connect"): "admin",
    ("POST", "/api/workspaces/{workspace_id}/instagram/connect/facebook"): "admin",
    ("GET", "/api/workspaces/{workspace_id}/instagram/connect/attempts/{attempt_id}"): "viewer",
    # knowledge: knowledge bases and documents
    ("GET", f"{KNOWLEDGE}"): "viewer",
    ("GET", f"{KNOWLEDGE}/{{knowledge_base_id}}"): "viewer",
    ("GET", f"{KNOWLEDGE}/{{knowledge_base_id}}/documents"): "viewer",
    ("GET", f"{KNOWLEDGE}/{{knowledge_base_id}}/documents/{{document_id}}"): "viewer",
    ("POST", f"{KNOWLEDGE}/{{knowledge_base_id}}/search"): "viewer",
    ("POST", f"{KNOWLEDGE}"): "editor",
    ("PATCH", f"{KNOWLEDGE}/{{knowledge_base_id}}"): "editor",
    ("DELETE", f"{KNOWLEDGE}/{{knowledge_base_id}}"): "editor",
    ("POST", f"{KNOWLEDGE}/{{knowledge_base_id}}/documents"): "editor",
    ("DELETE", f"{KNOWLEDGE}/{{knowledge_base_id}}/documents/{{document_id}}"): "editor",
    # contacts: viewers read, editors tag and set fields, admins export and erase
    ("GET", f"{CONTACTS}"): "viewer",
    ("GET", f"{CONTACTS}/{{contact_id}}"): "viewer",
    ("PATCH", f"{CONTACTS}/{{contact_id}}"): "editor",
    ("POST", f"{CONTACTS}/{{contact_id}}/takeover"): "editor",
    ("DELETE", f"{CONTACTS}/{{contact_id}}/takeover"): "editor",
    ("POST", f"{CONTACTS}/{{contact_id}}/messages"): "editor",
    ("POST", f"{CONTACTS}/bulk-tags"): "editor",
    ("GET", f"{CONTACTS}/export"): "admin",
    ("DELETE", f"{CONTACTS}/{{contact_id}}"): "admin",
    ("GET", f"{CONTACT_TAGS}"): "viewer",
    ("POST", f"{CONTACT_TAGS}"): "editor",
    ("PATCH", f"{CONTACT_TAGS}/{{tag_id}}"): "editor",
    ("DELETE", f"{CONTACT_TAGS}/{{tag_id}}"): "admin",
    ("GET", f"{CONTACT_FIELDS}"): "viewer",
    ("POST", f"{CONTACT_FIELDS}"): "editor",
    ("PATCH", f"{CONTACT_FIELDS}/{{field_id}}"): "editor",
    ("DELETE", f"{CONTACT_FIELDS}/{{field_id}}"): "admin",
    # the content calendar: viewers read, editors write and schedule, admins delete
    ("GET", f"{POSTS}"): "viewer",
    ("GET", f"{POSTS}/{{post_id}}"): "viewer",
    ("GET", f"{POSTS}/media/{{media_id}}"): "viewer",
    ("POST", f"{POSTS}"): "editor",
    ("POST", f"{POSTS}/media"): "editor",
    ("PATCH", f"{POSTS}/{{post_id}}"): "editor",
    ("POST", f"{POSTS}/{{post_id}}/schedule"): "editor",
    ("POST", f"{POSTS}/{{post_id}}/cancel"): "editor",
    ("DELETE", f"{POSTS}/{{post_id}}"): "admin",
    # broadcasts: viewers read and preview, editors compose, send and cancel, admins delete
    ("GET", f"{BROADCASTS}"): "viewer",
    ("POST", f"{BROADCASTS}/preview"): "viewer",
    ("GET", f"{BROADCASTS}/{{broadcast_id}}"): "viewer",
    ("GET", f"{BROADCASTS}/{{broadcast_id}}/recipients"): "viewer",
    ("POST", f"{BROADCASTS}"): "editor",
    ("POST", f"{BROADCASTS}/{{broadcast_id}}/send"): "editor",
    ("POST", f"{BROADCASTS}/{{broadcast_id}}/cancel"): "editor",
    ("DELETE", f"{BROADCASTS}/{{broadcast_id}}"): "admin",
}


def workspace_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for path, operations in app.openapi()["paths"].items():
        if "{workspace_id}" in path:
            found.update((method.upper(), path) for method in operations)
    return found


def fill(path: str, workspace_id: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "workspace_id":
            return workspace_id
        if name in ("number", "version"):
            return "1"
        return str(uuid.uuid4())  # any other object: an id that exists nowhere

    return re.sub(r"\{(\w+)\}", value, path)


def order(route: tuple[str, str]) -> tuple[int, int, str]:
    method, path = route
    # destructive calls last, and deleting the workspace itself at the very end
    return (method == "DELETE", path == "/api/workspaces/{workspace_id}", path)


async def test_every_workspace_route_is_in_the_matrix(app: Any) -> None:
    served = workspace_routes(app)
    missing = sorted(served - set(MATRIX))
    stale = sorted(set(MATRIX) - served)
    assert not missing, f"add these routes to MATRIX with their least role: {missing}"
    assert not stale, f"these MATRIX entries match no route: {stale}"


async def test_role_matrix(app: Any, client: httpx.AsyncClient) -> None:
    team: Team = await make_team(client)
    answers: dict[tuple[str, str, str], int] = {}
    for method, path in sorted(MATRIX, key=order):
        needed = MATRIX[(method, path)]
        url = fill(path, team.workspace_id)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        for who in ("anonymous", "outsider", "viewer", "editor", "admin"):
            headers = {} if who == "anonymous" else team.by_role(who).headers
            answer = await client.request(method, url, json=body, headers=headers)
            answers[(method, path, who)] = answer.status_code
            shown = f"{method} {path} as {who}: {answer.status_code} {answer.text[:200]}"
            assert answer.status_code != 500, shown
            assert "code" in answer.json() if answer.status_code >= 400 else True, shown
            if who == "anonymous":
                assert answer.status_code == 401, shown
            elif who == "outsider":
                assert answer.status_code == 404, shown
                assert answer.json()["code"] == "workspace_not_found", shown
            elif ROLES[who] < ROLES[needed]:
                assert answer.status_code == 403, shown
                assert answer.json()["details"]["required_role"] == needed, shown
            else:
                assert answer.status_code not in (401, 403), shown
                if answer.status_code == 404:
                    assert answer.json()["code"] != "workspace_not_found", shown
    assert len(answers) == 5 * len(MATRIX)
