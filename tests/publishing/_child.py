"""A publishing worker in a process of its own, for the tests that kill it mid-way.

``python -m tests.publishing._child '<json>'`` with the database URL, the emulator's URL, the
secret key, the storage folder and the post id: it makes one attempt at the post.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

# the workspace table, which the credential's key names: a worker registers every table when
# it runs the migrations at start, and this stand-in does the same by importing them
import socialflow.api.models  # noqa: F401
from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.publishing import Publisher, PublishingContext


async def main(spec: dict[str, str]) -> None:
    settings = Settings(
        environment="test",
        secret_key=spec["secret_key"],
        data_dir=spec["data_dir"],
        database={"url": spec["database_url"]},
        instagram={
            "graph_instagram_url": spec["emulator_url"],
            "graph_facebook_url": spec["emulator_url"],
        },
        knowledge={"storage_url": spec["storage_url"]},
    )
    db = Database(settings.database_url)
    try:
        context = PublishingContext(settings=settings, db=db, keys=key_wrapper(settings))
        outcome = await Publisher(context).publish(uuid.UUID(spec["post_id"]))
        print(outcome.model_dump_json(), flush=True)  # noqa: T201 - read by the test
    finally:
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
