"""Security tests drive the API as the API tests do: the same app, client and team fixtures."""

from tests.api.conftest import app, client, team  # noqa: F401 - fixtures
