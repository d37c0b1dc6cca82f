"""The emulator's content publishing and insights: containers over time, media_publish,
the quota, Meta's 2207xxx errors, published media with permalinks, current and deprecated
metrics."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import ACCOUNT, TOKEN, graph_emulator  # noqa: F401

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def jpeg(width: int = 1080, height: int = 1080) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def files() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback file server: path → bytes; anything else answers 404."""
    served: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            return

        def do_GET(self) -> None:
            data = served.get(self.path)
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


def graph(emulator: GraphEmulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.url, trust_env=False)


def error_of(answer: httpx.Response) -> tuple[int, int | None]:
    error = answer.json()["error"]
    return error["code"], error.get("error_subcode")


def test_container_goes_from_in_progress_to_finished_and_publishes_once(
    graph_emulator: GraphEmulator,  # noqa: F811
    files: tuple[str, dict[str, bytes]],
) -> None:
    base, served = files
    served["/a.jpg"] = jpeg()
    with graph(graph_emulator) as http:
        http.post("/_emulator/containers", json={"ready_after": 60, "count": 1})
        created = http.post(
            f"/v25.0/{ACCOUNT}/media",
            json={"image_url": f"{base}/a.jpg", "caption": "Hello #one @two"},
            headers=AUTH,
        )
        assert created.status_code == 200, created.text
        container = created.json()["id"]
        assert graph_emulator.state.publishing.fetched == [f"{base}/a.jpg"]
        status = http.get(
            f"/v25.0/{container}", params={"fields": "status_code,status"}, headers=AUTH
        ).json()
        assert status["status_code"] == "IN_PROGRESS"
        early = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": container}, headers=AUTH
        )
        assert error_of(early) == (9007, 2207027)
        http.post("/_emulator/clock", json={"advance": 61})
        status = http.get(f"/v25.0/{container}", headers=AUTH).json()
        assert status["status_code"] == "FINISHED"
        published = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": container}, headers=AUTH
        )
        assert published.status_code == 200, published.text
        media_id = published.json()["id"]
        again = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": container}, headers=AUTH
        )
        assert again.status_code == 400
        status = http.get(f"/v25.0/{container}", headers=AUTH).json()
        assert status["status_code"] == "PUBLISHED"
        media = http.get(
            f"/v25.0/{media_id}", params={"fields": "id,permalink,caption"}, headers=AUTH
        ).json()
        assert media["permalink"].startswith("https://www.instagram.com/p/")
        assert media["caption"] == "Hello #one @two"
        listed = http.get(f"/v25.0/{ACCOUNT}/media", params={"fields": "id"}, headers=AUTH)
        assert [m["id"] for m in listed.json()["data"]] == [media_id]
        quota = http.get(f"/v25.0/{ACCOUNT}/content_publishing_limit", headers=AUTH).json()
        assert quota["data"][0]["quota_usage"] == 1
        assert quota["data"][0]["config"] == {"quota_total": 100, "quota_duration": 86400}


def test_expiry_errors_and_quota(
    graph_emulator: GraphEmulator,  # noqa: F811
    files: tuple[str, dict[str, bytes]],
) -> None:
    base, served = files
    served["/a.jpg"] = jpeg()
    served["/a.png"] = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    with graph(graph_emulator) as http:

        def create(**body: object) -> httpx.Response:
            return http.post(f"/v25.0/{ACCOUNT}/media", json=body, headers=AUTH)

        assert error_of(create(image_url=f"{base}/missing.jpg")) == (9004, 2207052)
        assert error_of(create(image_url=f"{base}/a.png")) == (36001, 2207005)
        assert error_of(create(image_url=f"{base}/a.jpg", caption="x" * 2201)) == (36004, 2207010)
        tags = " ".join(f"#t{n}" for n in range(31))
        assert error_of(create(image_url=f"{base}/a.jpg", caption=tags)) == (36004, 2207010)
        mentions = " ".join(f"@u{n}" for n in range(21))
        assert error_of(create(image_url=f"{base}/a.jpg", caption=mentions)) == (100, 2207040)
        assert error_of(create(video_url=f"{base}/v.mp4", media_type="VIDEO")) == (100, 2207023)
        child = create(image_url=f"{base}/a.jpg", is_carousel_item="true").json()["id"]
        assert error_of(create(media_type="CAROUSEL", children=child)) == (100, 2207028)
        expired = create(image_url=f"{base}/a.jpg").json()["id"]
        http.post("/_emulator/clock", json={"advance": 86_401})
        assert http.get(f"/v25.0/{expired}", headers=AUTH).json()["status_code"] == "EXPIRED"
        refused = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": expired}, headers=AUTH
        )
        assert error_of(refused) == (-2, 2207020)
        http.post("/_emulator/containers", json={"outcome": "ERROR", "error_subcode": 2207026})
        broken = create(image_url=f"{base}/a.jpg").json()["id"]
        status = http.get(f"/v25.0/{broken}", headers=AUTH).json()
        assert status == {"id": broken, "status_code": "ERROR", "status": "Error: 2207026"}
        http.post("/_emulator/containers", json={"outcome": "FINISHED"})
        http.post("/_emulator/quota", json={"ig_user_id": ACCOUNT, "total": 2, "used": 2})
        ready = create(image_url=f"{base}/a.jpg").json()["id"]
        over = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": ready}, headers=AUTH
        )
        assert error_of(over) == (9, 2207042)
        # a day later the window has room again (and the old container expired)
        http.post("/_emulator/clock", json={"advance": 86_401})
        fresh = create(image_url=f"{base}/a.jpg").json()["id"]
        within = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": fresh}, headers=AUTH
        )
        assert within.status_code == 200, within.text


def test_carousel_needs_finished_children_and_insights_follow_meta(
    graph_emulator: GraphEmulator,  # noqa: F811
    files: tuple[str, dict[str, bytes]],
) -> None:
    base, served = files
    served["/a.jpg"] = jpeg()
    with graph(graph_emulator) as http:

        def create(**body: object) -> str:
            answer = http.post(f"/v25.0/{ACCOUNT}/media", json=body, headers=AUTH)
            assert answer.status_code == 200, answer.text
            return str(answer.json()["id"])

        children = [create(image_url=f"{base}/a.jpg", is_carousel_item="true") for _ in range(3)]
        carousel = create(media_type="CAROUSEL", children=",".join(children), caption="Three")
        alone = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": children[0]}, headers=AUTH
        )
        assert error_of(alone) == (100, 2207089)
        media_id = http.post(
            f"/v25.0/{ACCOUNT}/media_publish", json={"creation_id": carousel}, headers=AUTH
        ).json()["id"]
        media = http.get(f"/v25.0/{media_id}", headers=AUTH).json()
        assert media["media_type"] == "CAROUSEL_ALBUM"
        assert [c["id"] for c in media["children"]["data"]] == children
        http.post("/_emulator/insights", json={"id": media_id, "metrics": {"views": 321}})
        insights = http.get(
            f"/v25.0/{media_id}/insights", params={"metric": "views,reach,saved"}, headers=AUTH
        ).json()["data"]
        assert [(m["name"], m["period"]) for m in insights] == [
            ("views", "lifetime"),
            ("reach", "lifetime"),
            ("saved", "lifetime"),
        ]
        assert insights[0]["values"] == [{"value": 321}]
        for old in ("impressions", "plays", "video_views"):
            refused = http.get(f"/v25.0/{media_id}/insights", params={"metric": old}, headers=AUTH)
            assert refused.status_code == 400 and "no longer supported" in refused.text, old
        story_only = http.get(
            f"/v25.0/{media_id}/insights", params={"metric": "navigation"}, headers=AUTH
        )
        assert story_only.status_code == 400
        of_child = http.get(
            f"/v25.0/{children[0]}/insights", params={"metric": "views"}, headers=AUTH
        )
        assert error_of(of_child)[0] == 10
        account = http.get(
            f"/v25.0/{ACCOUNT}/insights",
            params={"metric": "reach,views", "period": "day", "metric_type": "total_value"},
            headers=AUTH,
        ).json()["data"]
        assert [m["name"] for m in account] == ["reach", "views"]
        assert all(isinstance(m["total_value"]["value"], int) for m in account)
        gone = http.get(
            f"/v25.0/{ACCOUNT}/insights",
            params={"metric": "profile_views", "period": "day"},
            headers=AUTH,
        )
        assert gone.status_code == 400 and "no longer supported" in gone.text
