"""LIST + WATCH into memory, as client-go's reflectors and stores do (cache.py builds the
operator's caches from these; heartbeats.py reads the nodes' Leases with one).

- `Store`: objects of one resource by (namespace, name), with an index by one label (the
  WorkerCluster instance) so a reconcile finds its pods without scanning all of them. Objects are
  trimmed (no managedFields; a pod keeps its metadata, status and node, not the rest of its
  spec), which keeps 5,000 pods in tens of MiB. It is fed by watch events and by the operator's
  own writes ("write-through"), so a reconcile right after a create never misses the pod it just
  created; an event older than what the store holds (by resourceVersion: etcd's revision, which
  orders all writes, whatever the object) is ignored, and a pod once seen terminating stays
  terminating.
- `Informer`: LIST then WATCH of one resource, in a thread of its own (blocking I/O, away from
  kopf's event loop), relisting when the watch expires (410 Gone) and calling back on each
  change so the work queue hears about it at once.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from workerlab.api.objects import format_time
from workerlab.api.resource import LABEL_INSTANCE, LABEL_MANAGED_BY, MANAGER

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
OnEvent = Callable[[str, Obj], None]

OWNED_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGER}"
LIST_PAGE = 500
# The server ends each watch after 5-10 minutes (random, as client-go's reflectors do, so the
# informers do not re-watch in step); we resume from the last version seen.
WATCH_SECONDS = (300, 600)
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
LOCAL_GRACE_SECONDS = 30.0  # a written-through object survives a relist that predates it
# A deleted object's uid is remembered this long: the answer to our own create may reach the
# store after the watch told of its deletion (garbage collection removes an object whose owner
# is gone within milliseconds), and must not bring it back.
TOMBSTONE_SECONDS = 600.0


CONTAINER_KEPT = ("name", "image", "resources")  # what a change in place compares


def trim(obj: Obj) -> Obj:
    """What the operator reads of an object, without the bulk: managedFields always, and of a
    pod's spec only its node and its containers' name, image and resources (the controller
    reads a pod's metadata and status, and compares those for a change in place)."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("managedFields", None)
    out = {k: v for k, v in obj.items() if k != "metadata"}
    out["metadata"] = meta
    if obj.get("kind") == "Pod" or ("spec" in obj and "containers" in (obj.get("spec") or {})):
        spec = obj.get("spec") or {}
        kept: dict[str, Any] = {"nodeName": spec["nodeName"]} if spec.get("nodeName") else {}
        kept["containers"] = [
            {k: c[k] for k in CONTAINER_KEPT if k in c} for c in spec.get("containers") or []
        ]
        out["spec"] = kept
    return out


def resource_version(obj: Obj) -> int | None:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or "")
    except ValueError:
        return None


def parse_selector(selector: str) -> dict[str, str]:
    """An equality-based label selector ("a=b,c=d") as a dict."""
    out: dict[str, str] = {}
    for part in selector.split(","):
        if part.strip():
            key, _, value = part.partition("=")
            out[key.strip()] = value.strip().lstrip("=")
    return out


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Store:
    """Objects of one resource by (namespace, name); safe to use from several threads."""

    def __init__(self, index_label: str | None = LABEL_INSTANCE) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, Obj] = {}
        self._local: dict[Key, float] = {}  # written through by us, not yet confirmed by a watch
        self._gone: dict[str, float] = {}  # uids seen deleted -> when (oldest first)
        self._index_label = index_label
        self._index: dict[tuple[str, str], set[str]] = {}  # (namespace, label value) -> names
        self.synced = threading.Event()

    def __len__(self) -> int:
        return len(self._objects)

    # -- feeding -------------------------------------------------------------------------------

    def apply(self, event_type: str, obj: Obj) -> bool:
        """One watch event (ADDED, MODIFIED, DELETED); False when it was stale and ignored."""
        key = _key(obj)
        with self._lock:
            self._local.pop(key, None)
            if event_type == "DELETED":
                self._bury(_uid(obj))
                current = self._objects.get(key)
                if current is not None and _uid(current) not in ("", _uid(obj)):
                    return False  # a newer object of the same name is already here
                self._remove(key)
                return True
            return self._store(key, trim(obj))

    def put(self, obj: Obj) -> None:
        """Write-through of an object the operator just wrote (the API server's answer)."""
        key = _key(obj)
        with self._lock:
            if self._store(key, trim(obj)):
                self._local[key] = time.monotonic()

    def mark_terminating(self, namespace: str, name: str, uid: str, now: datetime) -> None:
        """The operator deleted this pod: terminating from now on, whatever stale events say."""
        key = (namespace, name)
        with self._lock:
            current = self._objects.get(key)
            if current is None or (uid and _uid(current) != uid):
                return
            if not current["metadata"].get("deletionTimestamp"):
                meta = {**current["metadata"], "deletionTimestamp": format_time(now)}
                self._objects[key] = {**current, "metadata": meta}

    def replace(
        self, items: Iterable[Obj], list_version: int | None, namespace: str | None = None
    ) -> None:
        """A fresh LIST (of one namespace, or of all when None) replaces what the store held
        there, except objects we wrote after that LIST."""
        fresh = {_key(o): trim(o) for o in items}
        with self._lock:
            now = time.monotonic()
            for key, when in list(self._local.items()):
                if namespace is not None and key[0] != namespace:
                    continue
                current = self._objects.get(key)
                newer = (
                    current is not None
                    and list_version is not None
                    and (resource_version(current) or 0) > list_version
                )
                if key not in fresh and newer and now - when < LOCAL_GRACE_SECONDS:
                    fresh[key] = current  # type: ignore[assignment]
                else:
                    self._local.pop(key, None)
            for key in list(self._objects):
                if key not in fresh and (namespace is None or key[0] == namespace):
                    self._remove(key)
            for key, obj in fresh.items():
                self._objects.pop(key, None)
                self._store(key, obj)
        self.synced.set()

    def _bury(self, uid: str) -> None:
        if not uid:
            return
        now = time.monotonic()
        self._gone.pop(uid, None)
        self._gone[uid] = now
        while (oldest := next(iter(self._gone))) and now - self._gone[oldest] >= TOMBSTONE_SECONDS:
            del self._gone[oldest]

    def _store(self, key: Key, obj: Obj) -> bool:
        if _uid(obj) in self._gone:
            return False  # deleted already: a late write-through or event of it
        current = self._objects.get(key)
        old, new = resource_version(current or {}), resource_version(obj)
        if old is not None and new is not None and new < old:
            # Older than what is here: a late event of this object, or of one deleted since and
            # created again under its name (kopf hands each uid's events to a task of its own,
            # so the old one's last MODIFIED may come after the new one's ADDED).
            return False
        if (
            current is not None
            and _uid(current) == _uid(obj)
            and current["metadata"].get("deletionTimestamp")
            and not obj["metadata"].get("deletionTimestamp")
        ):
            # A pod never stops terminating: keep the mark set by our own delete.
            deleted_at = current["metadata"]["deletionTimestamp"]
            obj = {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": deleted_at}}
        if current is not None:
            self._unindex(key, current)
        self._objects[key] = obj
        if self._index_label is not None:
            value = (obj["metadata"].get("labels") or {}).get(self._index_label)
            if value is not None:
                self._index.setdefault((key[0], value), set()).add(key[1])
        return True

    def _remove(self, key: Key) -> None:
        current = self._objects.pop(key, None)
        if current is not None:
            self._unindex(key, current)

    def _unindex(self, key: Key, obj: Obj) -> None:
        if self._index_label is None:
            return
        value = (obj["metadata"].get("labels") or {}).get(self._index_label)
        if value is None:
            return
        names = self._index.get((key[0], str(value)))
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._index[(key[0], str(value))]

    # -- reading -------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def select(self, namespace: str, selector: dict[str, str]) -> list[Obj]:
        """Objects of the namespace whose labels include every pair of the selector."""
        with self._lock:
            if self._index_label is not None and self._index_label in selector:
                names = self._index.get((namespace, selector[self._index_label])) or set()
                candidates = [self._objects[(namespace, n)] for n in names]
            else:
                candidates = [o for k, o in self._objects.items() if k[0] == namespace]
        out = []
        for obj in candidates:
            labels = obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                out.append(obj)
        return sorted(out, key=lambda o: str(o["metadata"].get("name")))

    def items(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class Streamer(Protocol):
    """What an informer needs of the transport (`kube.Kube`)."""

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Any: ...
    def stream(self, path: str, query: dict[str, str], timeout: float) -> Iterable[bytes]: ...


class Gone(Exception):
    """The watch's resourceVersion is too old (410): list again."""


@dataclass
class Informer:
    """LIST + WATCH of `path` (a collection, cluster-wide or in one namespace) into `store`."""

    kube: Streamer
    path: str
    store: Store
    selector: str = ""
    on_event: OnEvent | None = None
    name: str = "informer"
    namespace: str | None = None  # the namespace the path is limited to, None: cluster-wide
    lists: int = 0
    watches: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _query(self, **extra: str) -> dict[str, str]:
        query = dict(extra)
        if self.selector:
            query["labelSelector"] = self.selector
        return query

    def _list(self) -> int | None:
        items: list[Obj] = []
        cont = ""
        version: str | None = None
        while True:
            query = self._query(limit=str(LIST_PAGE))
            if cont:
                query["continue"] = cont
            page = self.kube._call("GET", self.path, query=query, timeout=60.0)
            kind = str(page.get("kind") or "").removesuffix("List")
            for item in page.get("items") or []:
                item.setdefault("kind", kind)
                items.append(item)
            meta = page.get("metadata") or {}
            version = version or meta.get("resourceVersion")
            cont = meta.get("continue") or ""
            if not cont:
                break
        self.lists += 1
        list_version = int(version) if version and version.isdigit() else None
        self.store.replace(items, list_version, self.namespace)
        if self.on_event is not None:
            for item in items:
                self.on_event("ADDED", item)
        return list_version

    def _watch(self, version: int) -> int:
        seconds = random.randint(*WATCH_SECONDS)
        query = self._query(
            watch="1",
            resourceVersion=str(version),
            allowWatchBookmarks="true",
            timeoutSeconds=str(seconds),
        )
        self.watches += 1
        for line in self.kube.stream(self.path, query, timeout=seconds + 30):
            if self._stop.is_set():
                break
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise RuntimeError(f"watch error: {obj.get('message')}")
            version = resource_version(obj) or version
            if kind == "BOOKMARK":
                continue
            if self.store.apply(str(kind), obj) and self.on_event is not None:
                self.on_event(str(kind), obj)
        return version

    def _run(self) -> None:
        version: int | None = None
        failures = 0
        while not self._stop.is_set():
            try:
                if version is None:
                    version = self._list()
                    if version is None:
                        raise RuntimeError("LIST answered without a resourceVersion")
                version = self._watch(version)
                failures = 0
            except Gone:
                version = None
            except Exception as error:
                failures += 1
                delay = RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]
                logger.warning("%s: %s; again in %.1fs", self.name, error, delay)
                if getattr(error, "status", None) == 410:
                    version = None
                self._stop.wait(delay)
