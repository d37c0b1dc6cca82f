"""The daily token refresh: old tokens are renewed, expired and revoked ones say so."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from socialflow.core.credentials import Credential, open_credential
from socialflow.core.db import utcnow
from socialflow.instagram import InstagramAccount
from socialflow.instagram._refresh import refresh_tokens
from socialflow.orchestration import EngineRuntime
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    connect_account,
    graph_emulator,
    use_emulator,
)


async def _age(
    runtime: EngineRuntime, account: InstagramAccount, hours: float, expires_in_days: float
) -> None:
    async with runtime.db.sessionmaker() as session:
        await session.execute(
            update(InstagramAccount)
            .where(InstagramAccount.id == account.id)
            .values(
                token_refreshed_at=utcnow() - timedelta(hours=hours),
                token_expires_at=utcnow() + timedelta(days=expires_in_days),
            )
        )
        await session.commit()


async def test_refresh_renews_old_tokens_and_flags_dead_ones(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    old = await connect_account(runtime, ig_user_id="1001", token="tok-old")
    young = await connect_account(runtime, ig_user_id="1002", token="tok-young")
    expired = await connect_account(runtime, ig_user_id="1003", token="tok-expired")
    revoked = await connect_account(runtime, ig_user_id="1004", token="tok-revoked")
    for ig_user_id, token in (("1001", "tok-old"), ("1002", "tok-young"), ("1004", "tok-revoked")):
        graph_emulator.state.add_account(ig_user_id, "shop", token)
    graph_emulator.state.long_lived.clear()
    await _age(runtime, old, hours=30, expires_in_days=30)
    await _age(runtime, young, hours=2, expires_in_days=59)
    await _age(runtime, expired, hours=24 * 61, expires_in_days=-1)
    await _age(runtime, revoked, hours=48, expires_in_days=20)
    graph_emulator.state.accounts["1004"].tokens.clear()  # the user removed the app
    settings = runtime.settings.instagram
    async with httpx.AsyncClient(trust_env=False) as http:
        report = await refresh_tokens(runtime.db, settings, runtime.key_wrapper(), http)
    mine = {str(a.id) for a in (old, young, expired, revoked)}
    assert [a for a in report.refreshed if a in mine] == [str(old.id)]
    assert sorted(a for a in report.expired if a in mine) == sorted(
        [str(expired.id), str(revoked.id)]
    )
    async with runtime.db.sessionmaker() as session:
        rows = {
            a.ig_user_id: a
            for a in [
                await session.get(InstagramAccount, x.id) for x in (old, young, expired, revoked)
            ]
            if a
        }
        credential = await session.get(Credential, rows["1001"].credential_id)
    assert credential is not None
    new_token = open_credential(credential, runtime.key_wrapper())["access_token"]
    assert new_token.startswith("IGQ-long-") and new_token in graph_emulator.state.long_lived
    assert rows["1001"].token_status == "valid"
    assert rows["1001"].token_expires_at is not None
    assert rows["1001"].token_expires_at > utcnow() + timedelta(days=59)
    assert rows["1002"].token_status == "valid" and rows["1002"].token_expires_at is not None
    assert rows["1002"].token_expires_at < utcnow() + timedelta(days=59, hours=1)
    assert rows["1003"].token_status == "expired" and "reconnect" in (rows["1003"].last_error or "")
    assert rows["1004"].token_status == "revoked" and "190" in (rows["1004"].last_error or "")
    # a second pass the same day has nothing to do for these accounts
    async with httpx.AsyncClient(trust_env=False) as http:
        again = await refresh_tokens(runtime.db, settings, runtime.key_wrapper(), http)
    assert not mine & {*again.refreshed, *again.expired, *again.failed}
