"""Every command a reader copies from README.md works: "Try it locally" runs as written (it starts the server,
on the tiny model, and the 127.0.0.1 image host), then every `curl` command of the README, in order, against
them; each must answer 2xx.

What a reader would fill in is filled in here, and nothing else is changed: the placeholders (`job_…`,
`srch_…`, `rule_…`, `dup_…`, `ten_…`) become the ids the earlier commands answered, example.com image URLs point at
the README's own image host, files named with `@` are made (images, a CSV, spoken audio), and the ports are free
ones. The one other change: a model migration names the second tiny model, since no weights can be downloaded
here."""

import json
import re
import shlex
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

from tests.support.services import free_port
from tests.support.shell import Shell
from tests.support.speech import encode, spoken_wav

README = Path(__file__).parents[2] / "README.md"
ADMIN_TOKEN = "readme-admin-token-0123456789"
PLACEHOLDERS = ("job", "srch", "rule", "dup", "ten", "feed")
OFFLINE_MODEL = ('"hf-hub:Marqo/marqo-fashionSigLIP"', '"trooply-test-tiny-b", "pretrained": "random"')


def bash_blocks(text: str) -> list[tuple[str, str]]:
    """(the section's title, the block) for every ```bash block."""
    blocks, section = [], ""
    for part in re.split(r"(^## [^\n]*$|^```bash\n.*?^```$)", text, flags=re.M | re.S):
        if part.startswith("## "):
            section = part[3:].strip()
        elif part.startswith("```bash"):
            blocks.append((section, part[len("```bash\n"):-3]))
    return blocks


def commands(block: str) -> list[str]:
    """The block's commands, a command spanning lines (a trailing backslash, an open quote) as one."""
    found, pending = [], ""
    for line in block.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line + "\n"
        try:
            shlex.split(pending.replace("\\\n", " "), comments=True)
        except ValueError:
            continue  # a quote still open
        if pending.rstrip("\n").endswith("\\"):
            continue
        found.append(pending.rstrip("\n"))
        pending = ""
    return found


def test_the_readme_blocks_are_read_whole():
    blocks: dict[str, str] = {}
    for title, block in bash_blocks(README.read_text()):
        blocks.setdefault(title, block)
    assert "Try it locally" in blocks
    tour = commands(blocks["A tour with curl"])
    assert tour[2].startswith("curl -s -X POST localhost:8000/v1/products") and tour[2].endswith("]}'")
    assert all(c.count("'") % 2 == 0 for c in tour)


class Reader:
    """Runs the README's commands in one shell and keeps what a reader would note down from the answers."""

    def __init__(self, shell: Shell, port: int, image_port: int, bin_dir: str) -> None:
        self.shell, self.port, self.image_port, self.bin_dir = shell, port, image_port, bin_dir
        self.ids: dict[str, str] = {}
        self.search_with_sku_1: str | None = None

    def filled_in(self, command: str) -> str:
        command = command.replace(".venv/bin/", f"{self.bin_dir}/").replace(*OFFLINE_MODEL)
        command = command.replace("localhost:8000", f"127.0.0.1:{self.port}").replace("8001", str(self.image_port))
        command = re.sub(r"https://(cdn\.)?example\.com/", f"http://127.0.0.1:{self.image_port}/", command)
        if "srch_…" in command and self.search_with_sku_1:
            command = command.replace("srch_…", self.search_with_sku_1)
        for prefix, value in self.ids.items():
            command = command.replace(f"{prefix}_…", value)
        return command

    def curl(self, command: str) -> tuple[int, str]:
        body, status = self.shell.cwd / ".body", self.shell.cwd / ".status"
        body.unlink(missing_ok=True)
        wrapped = (f"curl() {{ command curl \"$@\" -o {body} -w '%{{http_code}}' > {status}; }}; "
                   f"{command}; unset -f curl")
        self.shell.run(wrapped)
        text = body.read_text() if body.exists() else ""
        self.note(command, text)
        return int(status.read_text() or 0), text

    def note(self, command: str, body: str) -> None:
        for prefix in PLACEHOLDERS:
            found = re.findall(rf'"({prefix}_[0-9a-f]{{20}})"', body)
            # A tenant's id is the first the admin API answered (the one it creates); any other id, the latest.
            if found and (prefix != "ten" or ("/admin/" in command and prefix not in self.ids)):
                self.ids[prefix] = found[0]
        if '"search_id"' in body and '"id":"sku-1"' in body:
            self.search_with_sku_1 = json.loads(body)["search_id"]
        if "/v1/keys/rotate" in command and "/admin/" not in command:  # our own keys, rotated
            keys = json.loads(body)
            self.shell.run(f"SK={keys['secret_key']}; PK={keys['publishable_key']}")

    def wait_for_ingest(self) -> None:
        """A reader would look at the job before searching; products still pending make a search miss them."""
        key = self.shell.value("SK")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = httpx.get(f"http://127.0.0.1:{self.port}/v1/catalog/stats",
                               headers={"Authorization": f"Bearer {key}"})
            assert answer.status_code == 200, answer.text
            stats = answer.json()
            if stats["counts"]["pending"] == 0:
                return
            time.sleep(0.2)
        raise AssertionError(f"products still pending: {stats}")


def make_files(commands: list[str], where: Path, image_port: int) -> None:
    for name in sorted({name for command in commands for name in re.findall(r"=@([\w.-]+)", command)}):
        if name.endswith(".jpg"):
            Image.new("RGB", (960, 720), (180, 30, 40)).save(where / name)
        elif name.endswith(".csv"):
            rows = [f"csv-{i},http://127.0.0.1:{image_port}/red-sneaker.jpg,Sneaker {i},shoes,{20 + i}"
                    for i in range(3)]
            (where / name).write_text("id,image_url,title,category,price\n" + "\n".join(rows) + "\n")
        elif name.endswith(".webm"):
            encode(spoken_wav("red running shoes", where), ".webm", "-c:a", "libopus")
            (where / "red-running-shoes.webm").rename(where / name)
        else:
            raise AssertionError(f"the README uploads {name}: teach this test to make one")
    for command in commands:
        for name in re.findall(r"https://(?:cdn\.)?example\.com/([\w.-]+)", command):
            if name.endswith(".xml"):  # a feed: one item whose image the README's host serves
                (where / "images" / name).write_text(
                    '<rss xmlns:g="http://base.google.com/ns/1.0"><channel><item><g:id>feed-1</g:id>'
                    f'<g:title>Feed sneaker</g:title><g:price>20.00 EUR</g:price><g:image_link>http://127.0.0.1:'
                    f'{image_port}/red-sneaker.jpg</g:image_link></item></channel></rss>')
            else:
                Image.new("RGB", (960, 720), (40, 60, 160)).save(where / "images" / name)


def test_every_readme_command_works_as_written(tmp_path):
    blocks = bash_blocks(README.read_text())
    local = [command for title, block in blocks if title == "Try it locally" for command in commands(block)]
    curls = [command for title, block in blocks if title != "Try it locally" for command in commands(block)
             if command.startswith("curl ")]
    assert len(local) == 6 and len(curls) > 40
    port, image_port = free_port(), free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "TROOPLY_DATA_DIR": str(tmp_path / "trooply-data"), "TROOPLY_PORT": str(port),
           "TROOPLY_ADMIN_TOKEN": ADMIN_TOKEN, "TROOPLY_INGEST_RETRY_BASE_DELAY": "0.05"}
    with Shell(tmp_path, env, tmp_path / "shell.log") as shell:
        reader = Reader(shell, port, image_port, str(Path(sys.executable).parent))
        for command in local:
            if command.startswith("curl "):
                status, body = reader.curl(reader.filled_in(command))
                assert 200 <= status < 300, (command, status, body)
            else:
                assert shell.run(reader.filled_in(command)) == 0, command
        reader.wait_for_ingest()
        status, body = reader.curl(reader.filled_in(local[-1]))  # the search again, the products indexed
        assert {hit["id"] for hit in json.loads(body)["results"]} == {"mug-red", "mug-navy"}
        make_files(curls, tmp_path, image_port)
        shell.run(f'H="Authorization: Bearer {ADMIN_TOKEN}"')
        for command in curls:
            reader.wait_for_ingest()
            filled = reader.filled_in(command)
            assert "…" not in filled.split("#")[0], f"a placeholder this test cannot fill: {command}"
            status, body = reader.curl(filled)
            assert 200 <= status < 300, f"{command}\n→ {status} {body[:500]}"

