"""Ice breakers and the persistent menu of a connected account, set and read through the API
against the emulator: Meta's limits refused with the field named, other workspaces' accounts
unknown, and a tapped item's payload starting the flow that listens for it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import Team, make_team
from tests.api.test_instagram_accounts import connect, ig_api  # noqa: F401 - fixture
from tests.fixtures.graph_emulator import ACCOUNT, graph_emulator  # noqa: F401 - fixture

PROFILE = {
    "ice_breakers": [
        {"question": "What are your prices?", "payload": "PRICES"},
        {"question": "Where are you?", "payload": "WHERE"},
    ],
    "persistent_menu": [
        {"type": "postback", "title": "Talk to us", "payload": "HUMAN"},
        {"type": "web_url", "title": "Shop", "url": "https://shop.example.com"},
    ],
}


async def test_ice_breakers_and_menu_are_set_on_meta_and_read_back(
    ig_api: tuple[Any, httpx.AsyncClient],  # noqa: F811
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    _, client = ig_api
    team: Team = await make_team(client)
    account = await connect(client, team)
    url = (
        f"/api/workspaces/{team.workspace_id}/instagram/accounts/{account['id']}/messenger-profile"
    )
    put = await client.put(url, json=PROFILE, headers=team.admin.headers)
    assert put.status_code == 200, put.text
    assert put.json() == {
        "ice_breakers": PROFILE["ice_breakers"],
        "persistent_menu": [
            {"type": "postback", "title": "Talk to us", "payload": "HUMAN", "url": None},
            {
                "type": "web_url",
                "title": "Shop",
                "url": "https://shop.example.com",
                "payload": None,
            },
        ],
    }
    [posted] = [c for c in graph_emulator.calls("messenger_profile") if c["method"] == "POST"]
    assert posted["path"] == f"{ACCOUNT}/messenger_profile"
    assert posted["body"]["ice_breakers"] == [
        {
            "locale": "default",
            "call_to_actions": [
                {"question": "What are your prices?", "payload": "PRICES"},
                {"question": "Where are you?", "payload": "WHERE"},
            ],
        }
    ]
    read = await client.get(url, headers=team.viewer.headers)
    assert read.json() == put.json()
    # an empty list removes what was set
    cleared = await client.put(
        url, json={"ice_breakers": [], "persistent_menu": []}, headers=team.admin.headers
    )
    assert cleared.json() == {"ice_breakers": [], "persistent_menu": []}
    # editors cannot change it; another workspace's admin does not know the account
    assert (await client.put(url, json=PROFILE, headers=team.editor.headers)).status_code == 403
    other = url.replace(team.workspace_id, team.other_workspace_id)
    assert (await client.put(other, json=PROFILE, headers=team.outsider.headers)).status_code == 404


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"ice_breakers": [{"question": "q", "payload": "p"}] * 5}, "ice_breakers"),
        ({"ice_breakers": [{"question": "q" * 81, "payload": "p"}]}, "question"),
        ({"ice_breakers": [{"question": "q", "payload": ""}]}, "payload"),
        ({"persistent_menu": [{"type": "postback", "title": "t" * 31, "payload": "p"}]}, "title"),
        ({"persistent_menu": [{"type": "web_url", "title": "t", "url": "javascript:x"}]}, "url"),
        ({"persistent_menu": [{"type": "postback", "title": "t", "payload": "p"}] * 21}, "menu"),
        ({"greeting": "hi"}, "greeting"),
    ],
)
async def test_limits_are_refused_before_meta_is_called(
    ig_api: tuple[Any, httpx.AsyncClient],  # noqa: F811
    graph_emulator: GraphEmulator,  # noqa: F811
    profile: dict[str, Any],
    field: str,
) -> None:
    _, client = ig_api
    team: Team = await make_team(client)
    account = await connect(client, team)
    url = (
        f"/api/workspaces/{team.workspace_id}/instagram/accounts/{account['id']}/messenger-profile"
    )
    answer = await client.put(url, json=profile, headers=team.admin.headers)
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert not graph_emulator.calls("messenger_profile")
