"""The index layout from before tiers, moved into the tiered one: Qdrant Edge kept `data_dir/index/<tenant>/`,
the server a `<prefix><tenant>` collection per tenant. The container runs this once on every index it opens
(`Container._open_index`: at start, on first use, and by `trooply migrate`), before the index serves a call; the
engines know only today's layout. Idempotent and resumable: a rerun copies the same point ids again, and once the
layout is current it only lists the data directory or the collections."""

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from trooply.errors import ServiceUnavailable
from trooply.index.base import ScrollPage
from trooply.index.edge import EdgeIndex, _path_part
from trooply.index.edge_shard import is_shard, stored_space
from trooply.index.tiers import new_version

if TYPE_CHECKING:  # the server engine (and qdrant-client with it) loads only where a server index is opened
    from trooply.index.server import QdrantServerIndex

log = logging.getLogger(__name__)

_COPY_PAGE = 1024
_CONFLICTS = ".conflicts"  # under `index-legacy/`: legacy shards that could not be moved


def move_legacy_layout(index: object) -> None:
    """Moves what the layout before tiers left into `index`'s (an engine without a legacy layout: nothing)."""
    if isinstance(index, EdgeIndex):
        _EdgeMove(index).run()
        return
    from trooply.index.server import QdrantServerIndex

    if isinstance(index, QdrantServerIndex):
        _move_server_collections(index)


class _EdgeMove:
    """Each `data_dir/index/<tenant>/` shard: aside first (one rename), then into the shared shard when small, else
    renamed into `tenants/` of its own space. A shard stays aside until it is fully moved."""

    def __init__(self, index: EdgeIndex) -> None:
        self.index = index
        self.data_dir = index.data_dir
        self.aside = self.data_dir / "index-legacy"

    def run(self) -> None:
        legacy_builds = self.data_dir / "index-build"
        for previous in sorted((legacy_builds / "old").glob("*")):
            if is_shard(previous) and not (self.data_dir / "index" / previous.name).exists():
                self._move(previous, self.aside / previous.name)  # the process died between the two renames of a swap
        for shard in sorted((self.data_dir / "index").glob("*")):
            if is_shard(shard):
                self._move(shard, self.aside / shard.name)
        shutil.rmtree(legacy_builds, ignore_errors=True)  # unfinished build copies: discarded, as a crash did
        for shard in sorted(self.aside.glob("*")):
            if shard.name != _CONFLICTS:
                self._adopt(shard.name, shard)
        if self.aside.exists() and not any(self.aside.iterdir()):
            self.aside.rmdir()

    def _adopt(self, tenant_id: str, path: Path) -> None:
        index = self.index
        stored = stored_space(path, index.space.name)
        if stored != index.space:  # another model's, or a size mismatch its tenant's calls report as before
            self._move(path, self.data_dir / "index" / _path_part(stored.name, "vector space") / "tenants" / tenant_id)
            return
        legacy = index.open_shard(path, f"index of tenant {tenant_id}")
        if legacy.count([]) >= index.promotion_threshold:
            legacy.retire()
            if self._move(path, index.dedicated_path(tenant_id)):
                index.add_dedicated(tenant_id)
            return
        _copy_pages(lambda offset: legacy.scroll(_COPY_PAGE, offset, [], full_payload=True), index, tenant_id)
        legacy.retire()
        shutil.rmtree(path)
        log.info("moved the index of tenant %s into the shared shard", tenant_id)

    def _move(self, source: Path, destination: Path) -> bool:
        """Whether `source` took its place (else it is set aside among the conflicts)."""
        if destination.exists():
            _set_aside(source, destination, self.aside / _CONFLICTS)
            return False
        destination.parent.mkdir(parents=True, exist_ok=True)
        source.rename(destination)
        return True


def _set_aside(source: Path, destination: Path, conflicts: Path) -> None:
    """A legacy shard whose place is taken: kept for an operator in `conflicts`, and out of the way of the next
    start (which would otherwise open and count it again)."""
    conflicts.mkdir(parents=True, exist_ok=True)
    kept = conflicts / source.name
    suffix = 1
    while kept.exists():
        kept, suffix = conflicts / f"{source.name}.{suffix}", suffix + 1
    source.rename(kept)
    log.warning("not moving %s: %s already exists; set aside as %s", source, destination, kept)


def _move_server_collections(index: "QdrantServerIndex") -> None:
    """Each `<prefix><tenant>` collection: a big one (or another model's) gets its alias, a small one is copied into
    the shared collection and then deleted. A failure is refused clearly (503 index_unavailable); the container
    then keeps the index closed, so the next call tries again."""
    client, prefix = index.client, index.collection_prefix
    aliased = {a.collection_name for a in client.get_aliases().aliases}
    for collection in client.get_collections().collections:
        rest = collection.name.removeprefix(prefix)
        if collection.name.startswith(prefix) and "." not in rest and collection.name not in aliased:
            try:
                _adopt_collection(index, rest, collection.name)
            except Exception as failed:
                log.exception("moving collection %s into the tiered layout failed", collection.name)
                raise ServiceUnavailable(
                    f"moving the index collection {collection.name} from before tiers failed: {failed}",
                    code="index_unavailable") from failed


def _adopt_collection(index: "QdrantServerIndex", tenant_id: str, name: str) -> None:
    from qdrant_client import models

    from trooply.index.server import CollectionStore, _stored_space

    stored = _stored_space(index.client, name, index.space.name)
    legacy = CollectionStore(index.client, name, stored.name)
    if stored != index.space or legacy.count([]) >= index.promotion_threshold:
        index.client.update_collection_aliases(change_aliases_operations=[models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=name, alias_name=index.tenant_name(tenant_id, stored)))])
        return
    _copy_pages(lambda offset: legacy.scroll(_COPY_PAGE, offset, [], full_payload=True), index, tenant_id)
    index.client.delete_collection(name)


def _copy_pages(page_at, index: "EdgeIndex | QdrantServerIndex", tenant_id: str) -> None:
    """Every point of a legacy store into the tenant's part of the shared one (same point ids on a rerun: nothing
    doubles)."""
    shared = index.shared_view(tenant_id)
    offset: object | None = None
    while True:
        page: ScrollPage = page_at(offset)
        shared.upsert(page.points, new_version())
        offset = page.next_offset
        if offset is None:
            break
