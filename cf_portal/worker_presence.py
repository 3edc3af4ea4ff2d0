"""A tab keeps its session when the worker that held its websocket dies (several workers sharing Redis).

Reflex 0.10.1's `RedisTokenManager` records, for each connected tab token, the socket and the worker
(`instance_id`) holding it, in Redis (`token_manager_socket_record_<token>`). A worker that is killed never deletes
its records, so when the tab reconnects to another worker its token is still "connected" there, the tab is taken
for a duplicate tab (the same tab opened twice) and gets a new token: a fresh, empty state.

`PresenceTokenManager` tells the two apart. Each worker keeps one Redis connection subscribed to its own
presence channel (`cf_portal_worker_alive_<instance_id>`); the operating system closes that connection the moment
the process dies, however it dies, and Redis drops the subscription with it. When a tab links a token whose record
names another worker with no subscriber on its presence channel (`PUBSUB NUMSUB`), the record is a leftover and is
removed (only if unchanged) before Reflex links the token: the tab keeps its token and its state. A token open in
two live tabs still gives the second one a new token, as before.

The presence connection also turns Redis's keyspace notifications on again each time it (re)connects: Reflex's
state manager sets them once per process, so after a Redis restart without that setting in redis.conf its lock
waiters would otherwise only wake at the lock's expiry.

It relies on `RedisTokenManager` internals (`_get_redis_key`, `token_to_socket`, `instance_id`, the pickled
`SocketRecord`), pinned to Reflex 0.10.1 by tests/unit/test_worker_presence.py. It is installed by a lifespan task
(`install_presence_token_manager`), which replaces the event namespace's token manager before the worker accepts
connections; with one worker and no Redis nothing changes.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import Any

from reflex.istate.manager.redis import NOTIFY_KEYSPACE_EVENTS, enable_keyspace_notifications
from reflex.utils.token_manager import RedisTokenManager, SocketRecord

logger = logging.getLogger(__name__)

PRESENCE_CHANNEL_PREFIX = "cf_portal_worker_alive_"
RECONNECT_DELAY = 0.5  # seconds between attempts while Redis is away
SUBSCRIBE_TIMEOUT = 5.0  # how long a link waits for this worker's own presence before going on without it

# Delete the key only if it still holds the leftover record read before (a newer link must win).
_DELETE_IF_UNCHANGED = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def presence_channel(instance_id: str) -> str:
    return f"{PRESENCE_CHANNEL_PREFIX}{instance_id}"


class PresenceTokenManager(RedisTokenManager):
    """`RedisTokenManager` that lets a tab reclaim its token from a worker that is no longer alive."""

    def __init__(self, redis: Any, notify_keyspace_events: str = NOTIFY_KEYSPACE_EVENTS) -> None:  # noqa: ANN401
        super().__init__(redis)
        self._notify_keyspace_events = notify_keyspace_events
        self._present = asyncio.Event()
        self._presence_task: asyncio.Task | None = None

    # --- this worker's presence ------------------------------------------------------------------------------
    def ensure_presence(self) -> None:
        if self._presence_task is None or self._presence_task.done():
            self._presence_task = asyncio.get_running_loop().create_task(
                self._keep_presence(), name="cf_portal worker presence")

    async def _keep_presence(self) -> None:
        while True:
            try:
                await self._hold_presence()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - Redis away: try again
                logger.debug("worker presence lost (%s), reconnecting", error)
            finally:
                self._present.clear()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _hold_presence(self) -> None:
        async with self.redis.pubsub() as pubsub:
            instance_id = self.instance_id
            await pubsub.subscribe(presence_channel(instance_id))
            try:
                await enable_keyspace_notifications(self.redis, self._notify_keyspace_events)
            except Exception as error:  # noqa: BLE001 - a managed Redis may refuse CONFIG SET
                logger.debug("could not enable keyspace notifications: %s", error)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "subscribe":
                    self._present.set()
                if self.instance_id != instance_id:  # Reflex gave this worker a new identity: announce that one
                    return

    async def is_instance_alive(self, instance_id: str) -> bool:
        counts = await self.redis.pubsub_numsub(presence_channel(instance_id))
        return bool(counts and counts[0][1])

    # --- linking a tab -----------------------------------------------------------------------------------------
    async def link_token_to_sid(self, token: str, sid: str) -> str | None:
        self.ensure_presence()
        record = self.token_to_socket.get(token)
        if record is None or record.sid != sid:
            if not self._present.is_set():  # records of this worker must not look abandoned to the others
                try:
                    await asyncio.wait_for(self._present.wait(), SUBSCRIBE_TIMEOUT)
                except TimeoutError:
                    logger.warning("worker presence not announced in Redis; linking the tab anyway")
            await self._release_abandoned(token)
        return await super().link_token_to_sid(token, sid)

    async def _release_abandoned(self, token: str) -> None:
        """Remove `token`'s socket record if the worker it names is gone."""
        key = self._get_redis_key(token)
        try:
            raw = await self.redis.get(key)
            if not raw:
                return
            record = pickle.loads(raw)  # noqa: S301 - written by Reflex's token manager in our own Redis
            if not isinstance(record, SocketRecord) or record.instance_id == self.instance_id:
                return
            if await self.is_instance_alive(record.instance_id):
                return
            if await self.redis.eval(_DELETE_IF_UNCHANGED, 1, key, raw):
                self.token_to_socket.pop(token, None)
                logger.info("a tab reconnected after its worker died: it keeps its session")
        except Exception as error:  # noqa: BLE001 - Redis trouble: Reflex's own handling follows
            logger.warning("could not check the worker of a reconnecting tab: %s", error)

    async def close(self) -> None:
        if self._presence_task is not None:
            self._presence_task.cancel()
            try:
                await self._presence_task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
            self._presence_task = None
        await super().close()


def install_presence_token_manager(app: Any) -> None:  # noqa: ANN401
    """Lifespan task: swap the event namespace's Redis token manager for `PresenceTokenManager`."""
    namespace = getattr(app, "event_namespace", None)
    current = getattr(namespace, "_token_manager", None)
    if type(current) is not RedisTokenManager:
        return  # one worker without Redis (LocalTokenManager), or already swapped
    try:
        events = getattr(app.state_manager, "_redis_notify_keyspace_events", NOTIFY_KEYSPACE_EVENTS)
    except Exception:  # noqa: BLE001 - no state manager yet: Reflex's default flags
        events = NOTIFY_KEYSPACE_EVENTS
    manager = PresenceTokenManager(current.redis, events)
    namespace._token_manager = manager  # noqa: SLF001 - no public hook in Reflex 0.10.1
    manager.ensure_presence()
