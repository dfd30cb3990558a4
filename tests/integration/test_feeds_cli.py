"""`trooply feeds list|add|sync` against a real `trooply serve`: a merchant registers a feed served by a real
127.0.0.1 server, syncs it and waits for the report, lists the feeds; errors carry the API's codes."""

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import auth
from tests.support.feed_server import FeedServer
from tests.support.image_server import ImageServer
from tests.support.images import solid_png
from tests.support.services import create_tenant_cli, serving, trooply_env


def trooply(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trooply.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180)


def test_a_feed_is_added_synced_and_listed_from_the_command_line(tmp_path: Path) -> None:
    env = trooply_env(tmp_path / "data")
    with ImageServer() as images, FeedServer() as feed, serving(env, tmp_path / "serve.log") as url:
        images.add_image("/a.png", solid_png(40, 40, (200, 30, 30)))
        images.add_image("/b.png", solid_png(40, 40, (30, 30, 200)))
        feed.publish('<?xml version="1.0"?><rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>'
                     + "".join(f"<item><g:id>{name}</g:id><g:title>{name}</g:title><g:image_link>"
                               f"{images.url(f'/{name}.png')}</g:image_link><g:price>5 USD</g:price></item>"
                               for name in "ab") + "</channel></rss>")
        tenant = create_tenant_cli(env)
        remote = {**env, "TROOPLY_URL": url, "TROOPLY_API_KEY": tenant["secret_key"]}

        added = trooply("feeds", "add", feed.url("/feed.xml"), "--schedule", "manual", env=remote)
        assert added.returncode == 0, added.stderr
        feed_id = json.loads(added.stdout)["id"]
        # The first sync (started by `add`) or a new one, followed to its end.
        synced = trooply("feeds", "sync", feed_id, "--wait", env=remote)
        assert synced.returncode == 0, synced.stderr
        assert json.loads(synced.stdout)["status"] == "completed"
        listed = [json.loads(line) for line in trooply("feeds", "list", env=remote).stdout.splitlines()]
        assert [(f["id"], f["schedule"]) for f in listed] == [(feed_id, "manual")]
        assert listed[0]["syncs"][0]["status"] == "completed"  # the list shows each feed's last sync
        for name in "ab":
            assert httpx.get(f"{url}/v1/products/{name}", headers=auth(tenant["secret_key"])).status_code == 200

        unknown = trooply("feeds", "sync", "feed_nope", env=remote)
        assert unknown.returncode == 1 and "feed_not_found" in unknown.stderr
        refused = trooply("feeds", "list", "--key", tenant["publishable_key"], env=remote)
        assert refused.returncode == 1 and "insufficient_scope" in refused.stderr
        no_key = trooply("feeds", "list", env={k: v for k, v in remote.items() if k != "TROOPLY_API_KEY"})
        assert no_key.returncode == 2 and "secret key" in no_key.stderr
