"""Qdrant Edge, the embedded index: shards under `data_dir/index/<space>/`.

Small tenants share `shared/`; a promoted tenant has `tenants/<tenant>/`, built in `promoting/<tenant>/`
and renamed into place (the atomic switch). Before tiers each tenant had `data_dir/index/<tenant>/`:
index/legacy_layout.py moves those into this layout.
"""

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from trooply.errors import ServiceUnavailable
from trooply.index.base import TierStatus
from trooply.index.datadir_lock import DataDirLock
from trooply.index.edge_shard import EdgeShardStore, ShardBuilds, is_shard
from trooply.index.tiers import TenantView, TieredIndex
from trooply.vectors import VectorSpace

log = logging.getLogger(__name__)


class EdgeIndex(TieredIndex):
    def __init__(self, data_dir: Path, space: VectorSpace, optimize_threshold: int = 20000,
                 promotion_threshold: int = 20000, lock: DataDirLock | None = None) -> None:
        """`lock`: the data directory's, when another index (another space) already holds it."""
        super().__init__(space, promotion_threshold)
        self._data_dir = data_dir
        self._dir_lock = lock or DataDirLock(data_dir)
        self._owns_dir_lock = lock is None
        self._root = data_dir / "index" / _path_part(space.name, "vector space")
        self._builds = ShardBuilds(data_dir, data_dir / "index-work", optimize_threshold)
        self._guard = threading.Lock()  # the stores below and their opening
        self._closed = False
        self._shared: EdgeShardStore | None = None
        self._dedicated: dict[str, EdgeShardStore] = {}
        self._targets: dict[str, EdgeShardStore] = {}
        try:
            # A crash mid-promotion: those tenants are still served from shared, the next promotion starts over.
            shutil.rmtree(self._root / "promoting", ignore_errors=True)
            self._dedicated_names = {p.name for p in (self._root / "tenants").glob("*") if is_shard(p)}
            for tenant_id in sorted(self._dedicated_names):  # a crash between a switch and the shared clean-up
                TenantView(self._shared_store(), tenant_id, shared=True).delete_all()
        except BaseException:
            self._release_dir_lock()
            raise

    def ping(self) -> None:
        if self._closed:
            raise ServiceUnavailable("the index is closed", code="index_closed")
        if not os.access(self._data_dir, os.R_OK | os.W_OK | os.X_OK):
            raise ServiceUnavailable(f"data directory {self._data_dir} is not accessible",
                                     code="index_unavailable")

    def close(self) -> None:
        if self._close_stores():
            self._release_dir_lock()

    def destroy(self) -> None:
        self._close_stores()
        # Still under the data-directory lock: no other process can open the space while it is deleted.
        try:
            for path in (self._root, self._builds.copy_path(self._root), self._builds.previous_path(self._root)):
                shutil.rmtree(path, ignore_errors=True)
        finally:
            self._release_dir_lock()
        log.info("deleted the index of %s", self.space.name)

    def _close_stores(self) -> bool:
        """False when already closed."""
        with self._guard:
            if self._closed:
                return False
            self._closed = True
        self._stop_promotions()  # after `_closed`: a promotion under way fails at its next step
        with self._guard:
            stores = [*([self._shared] if self._shared else []), *self._dedicated.values(), *self._targets.values()]
            self._shared, self._dedicated, self._targets = None, {}, {}
        for store in stores:
            store.retire()
        return True

    def build_graph(self, tenant_id: str) -> None:
        """Builds the HNSW graph of the store the tenant lives in now, as a catalogue at rest would have it
        (bench/tenants.py and bench/duplicates.py measure searches on it)."""
        (self._dedicated_store(tenant_id) or self._shared_store()).build_graph()

    def graph_build(self, tenant_id: str) -> "GraphBuild":
        """Whether the HNSW graph of the store the tenant lives in is being rebuilt in the background, and
        whether writes are being recorded meanwhile (to be replayed on the built copy)."""
        store = self._dedicated_store(tenant_id) or self._shared_store()
        return GraphBuild(store.building, store.recording)

    # The stores

    def _shared_store(self) -> EdgeShardStore:
        with self._guard:
            self._check_open()
            if self._shared is None:
                path = self._root / "shared"
                if is_shard(path) or self._builds.previous_path(path).exists():
                    self._shared = EdgeShardStore.open(path, self.space, "the shared index", self._builds)
                    self._fill_words_later(self._shared, "the shared index")
                else:
                    self._shared = EdgeShardStore.create(path, self.space, self._builds, shared=True)
            return self._shared

    def _dedicated_store(self, tenant_id: str) -> EdgeShardStore | None:
        with self._guard:
            self._check_open()
            store = self._dedicated.get(tenant_id)
            if store is None and tenant_id in self._dedicated_names:
                store = self._dedicated[tenant_id] = EdgeShardStore.open(
                    self._tenant_path(tenant_id), self.space, f"index of tenant {tenant_id}", self._builds)
                self._fill_words_later(store, f"the index of tenant {tenant_id}", tenant_id)
            return store

    def _promotion_target(self, tenant_id: str) -> EdgeShardStore | None:
        with self._guard:
            return self._targets.get(tenant_id)

    def _begin_promotion(self, tenant_id: str) -> EdgeShardStore:
        path = self._target_path(tenant_id)
        with self._guard:
            self._check_open()
            shutil.rmtree(path, ignore_errors=True)
            target = self._targets[tenant_id] = EdgeShardStore.create(path, self.space, self._builds, shared=False)
            return target

    def _finish_promotion(self, tenant_id: str) -> None:
        with self._guard:
            self._check_open()
            target = self._targets.pop(tenant_id)
            target.retire()
            destination = self._tenant_path(tenant_id)
            destination.parent.mkdir(parents=True, exist_ok=True)
            target.path.rename(destination)  # the switch: from here on the tenant is dedicated
            self._dedicated_names.add(tenant_id)
            store = self._dedicated[tenant_id] = EdgeShardStore.open(
                destination, self.space, f"index of tenant {tenant_id}", self._builds)
        store.build_if_due()  # its copy was written after the last build

    def _abandon_promotion(self, tenant_id: str) -> None:
        with self._guard:
            target = self._targets.pop(tenant_id, None)
        if target is not None:
            target.retire()
        shutil.rmtree(self._target_path(tenant_id), ignore_errors=True)

    def _drop_dedicated(self, tenant_id: str) -> None:
        # Under the guard so that no concurrent call reopens the shard while it is deleted.
        with self._guard:
            store = self._dedicated.pop(tenant_id, None)
            if store is not None:
                store.retire()
            self._dedicated_names.discard(tenant_id)
            shutil.rmtree(self._tenant_path(tenant_id), ignore_errors=True)

    def _dedicated_tenants(self) -> list[str]:
        with self._guard:
            return sorted(self._dedicated_names)

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceUnavailable("the index is closed", code="index_closed")

    def _tenant_path(self, tenant_id: str) -> Path:
        return self._root / "tenants" / _path_part(tenant_id, "tenant id")

    def _target_path(self, tenant_id: str) -> Path:
        return self._root / "promoting" / _path_part(tenant_id, "tenant id")

    def _release_dir_lock(self) -> None:
        if self._owns_dir_lock:
            self._dir_lock.release()

    # For the move from the layout before tiers (index/legacy_layout.py)

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    def open_shard(self, path: Path, what: str) -> EdgeShardStore:
        return EdgeShardStore.open(path, self.space, what, self._builds)

    def dedicated_path(self, tenant_id: str) -> Path:
        return self._tenant_path(tenant_id)

    def add_dedicated(self, tenant_id: str) -> None:
        """A shard put at `dedicated_path(tenant_id)` from outside: the tenant's store from now on."""
        with self._guard:
            self._dedicated_names.add(tenant_id)


def tier_on_disk(data_dir: Path, space_name: str, tenant_id: str) -> TierStatus:
    """A tenant's tier read from the data directory's layout without its lock, for a process that may not open
    the index beside a running server (the CLI); as `EdgeIndex.tier` answers, a moment stale at worst."""
    root = data_dir / "index" / _path_part(space_name, "vector space")
    if is_shard(root / "tenants" / _path_part(tenant_id, "tenant id")):
        return TierStatus("dedicated")
    return TierStatus("shared", promoting=(root / "promoting" / tenant_id).exists())


def _path_part(name: str, what: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"invalid {what} {name!r}")  # it names a directory
    return name


@dataclass(frozen=True)
class GraphBuild:
    building: bool
    recording: bool
