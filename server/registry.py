"""The live model registry: what is served now, and how that changes (load, swap, unload).

The data plane (:class:`server.servicers.Served`) reads it; the poller and the
repository RPCs change it, both through :meth:`Registry.sync` and :meth:`Registry.unload`.

No downtime, nothing lost: changes run one at a time on the event loop. A new or
changed version loads, is checked and warms up in a worker thread beside the
versions serving now; traffic moves in one step (a dict replaced on the loop) once
it is ready. A request picks its version and enters that version's batcher in one
step on the same loop, so a retired version's batcher is closed only after the
swap, and it answers everything it already holds before its thread ends. A
version that fails to load is recorded (log line, index reason, metric) and what
served before keeps serving; it is retried only once its files change.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from server import model_config, model_states, repository, runtime
from server.errors import InvalidArgument, ModelLoadError, NotFound, NotYet
from server.model_states import UNLOADED, Model
from server.repository import DEFAULT_MODEL, Fingerprint, ModelVersion
from server.version_setup import VersionSetup

if TYPE_CHECKING:
    from server.gates import GateMonitor
    from server.metrics import Metrics
    from server.published import Published
    from server.settings import Settings

log = logging.getLogger(__name__)


class Registry:
    """Models by name; read by the data plane, changed by the poller and the RPCs."""

    def __init__(self, settings: Settings, metrics: Metrics, gates: GateMonitor | None = None,
                 published: Published | None = None):
        self._settings = settings
        self._setup = VersionSetup(settings, metrics, gates, published)
        self._models: dict[str, Model] = {}
        self._lock = asyncio.Lock()
        self._churn = 0  # loads and retirements since memory was last handed back
        self._quiet = False  # failures are the caller's one error line, not log lines

    # The data plane's side: called on the event loop, never blocks.

    def get(self, name: str, version: int = 0) -> ModelVersion:
        """The named model's version (0: the latest served); NotFound says why not."""
        name = name or DEFAULT_MODEL
        entry = self._models.get(name)
        if entry is None or not entry.serving:
            why = f" ({entry.reason})" if entry is not None and entry.reason else ""
            raise NotFound(f"unknown model {name!r}{why}; serving: "
                           f"{', '.join(self.names()) or 'none'}")
        if version == 0:
            return entry.serving[max(entry.serving)]
        if version not in entry.serving:
            raise NotFound(f"model {name!r} has no version {version}; serving: "
                           f"{', '.join(map(str, sorted(entry.serving)))}")
        return entry.serving[version]

    def names(self) -> list[str]:
        """Models with at least one version serving."""
        return sorted(n for n, m in self._models.items() if m.serving)

    def versions(self, name: str) -> list[int]:
        """Every version of a model serving now, ascending."""
        entry = self._models.get(name)
        return sorted(entry.serving) if entry is not None else []

    def all(self) -> list[ModelVersion]:
        """Every version serving now, by model name then version."""
        return [m.serving[v] for n in self.names() for m in [self._models[n]]
                for v in sorted(m.serving)]

    def index(self, ready_only: bool = False) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) for every model in the repository or registry."""
        try:
            on_disk = repository.model_names(self._settings.model_repository)
        except ModelLoadError:
            on_disk = []
        return model_states.index(self._models, on_disk, ready_only)

    # Changes: one at a time, on the event loop; slow work in worker threads.

    async def sync(self, names: list[str] | None = None, strict: bool = False,
                   at_start: bool = False) -> list[str]:
        """Brings the named models (None: every one, gone ones included) in line with disk.

        Returns the problems found (one line each); ``strict`` also counts files not
        readable yet as problems instead of leaving them to the next poll. ``at_start``
        (strict, and failures not logged): the caller ends the server with the problem.
        """
        async with self._lock:
            self._quiet = at_start
            strict = strict or at_start
            root = self._settings.model_repository
            on_disk = await asyncio.to_thread(repository.model_names, root)
            problems: list[str] = []
            for name in sorted(set(on_disk) | set(self._models)) if names is None else names:
                problems += await self._sync_model(root / name, name in on_disk, strict)
            await self._release()
            return problems

    async def load(self, name: str) -> None:
        """Loads (or reloads) one model from the repository; refusals name the problem."""
        if not name or name != Path(name).name or name.startswith("."):
            raise InvalidArgument(f"invalid model name {name!r}")
        if not (self._settings.model_repository / name).is_dir():
            raise NotFound(f"failed to load {name!r}: no such model folder in the repository")
        entry = self._models.get(name)
        if entry is not None:
            entry.failed.clear()  # an explicit load tries again, changed files or not
        problems = await self.sync([name], strict=True)
        if problems:
            raise InvalidArgument(f"failed to load {name!r}: {problems[0]}")

    async def unload(self, name: str) -> None:
        """Stops serving ``name``; requests it already queued are still answered."""
        async with self._lock:
            entry = self._models.get(name)
            if entry is None or not entry.serving:
                return
            retired = list(entry.serving.values())
            entry.serving, entry.prints, entry.reason = {}, {}, UNLOADED
            entry.failed = {mv.version: (UNLOADED, None) for mv in retired}
            log.info("model %s unloaded", name)
            self._setup.take_down(retired)
            await self._retire(retired)
            await self._release()

    async def close(self) -> None:
        """Shutdown: every batcher finishes what it holds."""
        async with self._lock:
            retired = [mv for entry in self._models.values() for mv in entry.serving.values()]
            self._models.clear()
            await self._retire(retired)

    async def _sync_model(self, model_dir: Path, present: bool, strict: bool) -> list[str]:
        name = model_dir.name
        entry = self._models.get(name)
        if not present:
            if entry is not None and entry.serving:
                log.info("model %s: folder removed from the repository; unloading", name)
                self._setup.take_down(list(entry.serving.values()))
                await self._retire(list(entry.serving.values()))
            self._models.pop(name, None)
            return []
        entry = self._models.setdefault(name, Model())
        available = await asyncio.to_thread(repository.version_numbers, model_dir)
        try:
            plan = await asyncio.to_thread(model_config.plan, model_dir, self._settings)
        except NotYet as e:
            return self._not_yet(name, e, strict)
        except ModelLoadError as e:  # the config is broken: no version can load with it
            for v in available:
                if v not in entry.serving:
                    self._failed(entry, name, v, str(e), repository.fingerprint(model_dir, v))
            entry.reason = entry.reason if entry.serving else str(e)
            return [str(e)]
        wanted = model_config.select(plan.config.version_policy, available)
        if not wanted:
            entry.reason = f"{model_dir}: no version folders (1/, 2/, …) with a model"
            if strict:
                return [entry.reason]
        keep = {v: entry.serving[v] for v in wanted if v in entry.serving}
        prints = {v: entry.prints[v] for v in keep}
        problems: list[str] = []
        for v in wanted:
            if v not in available:
                problems.append(f"{model_dir}: version {v} (version_policy) has no folder")
                self._failed(entry, name, v, problems[-1], None)
                continue
            fp = await asyncio.to_thread(repository.fingerprint, model_dir, v)
            if prints.get(v) == fp or (v in entry.failed and entry.failed[v][1] == fp):
                continue  # unchanged since it loaded, or since it failed
            entry.loading.add(v)
            self._churn += 1  # a load frees its temporary buffers, loaded or not
            try:
                loaded = await asyncio.to_thread(self._setup.bring_up, model_dir, plan, v)
            except NotYet as e:
                problems += self._not_yet(name, e, strict)
                continue
            except ModelLoadError as e:
                problems.append(str(e))
                self._failed(entry, name, v, str(e), fp)
                continue
            finally:
                entry.loading.discard(v)
            keep[v], prints[v] = loaded, fp
            entry.failed.pop(v, None)
        if any(v not in keep for v in wanted):
            # Something wanted did not load: whatever served before keeps serving.
            for v, mv in entry.serving.items():
                if v not in keep and v in available:
                    keep[v], prints[v] = mv, entry.prints[v]
        await self._swap(name, entry, keep, prints)
        return problems

    async def _swap(self, name: str, entry: Model, serving: dict[int, ModelVersion],
                    prints: dict[int, Fingerprint]) -> None:
        """Moves traffic to ``serving`` in one step, then retires what it replaced."""
        retired = [mv for v, mv in entry.serving.items() if serving.get(v) is not mv]
        entry.serving, entry.prints = serving, prints
        if serving:
            entry.reason = ""
        self._setup.take_down(retired)
        for mv in retired:
            if mv.version not in serving:
                entry.failed[mv.version] = (UNLOADED, None)
                log.info("model %s version %d retired", name, mv.version)
        self._setup.serving(list(serving.values()))
        await self._retire(retired)

    async def _retire(self, versions: list[ModelVersion]) -> None:
        """Closes their batchers (each answers what it holds) off the loop, then lets go."""
        while versions:
            batcher = versions.pop().batcher
            if batcher is not None:
                await asyncio.to_thread(batcher.close, self._settings.grace_period_s)
            self._churn += 1

    async def _release(self) -> None:
        """After loads and retirements, hands the memory they freed back to the OS."""
        if self._churn:
            self._churn = 0
            await asyncio.to_thread(runtime.release_freed_memory)

    def _failed(self, entry: Model, name: str, version: int, reason: str,
                fp: Fingerprint | None) -> None:
        if entry.failed.get(version) == (reason, fp):
            return  # reported already
        entry.failed[version] = (reason, fp)
        self._setup.failed(name, version, reason, self._quiet)

    @staticmethod
    def _not_yet(name: str, error: NotYet, strict: bool) -> list[str]:
        if strict:
            return [str(error)]
        log.info("model %s: %s; retrying at the next poll", name, error)
        return []
