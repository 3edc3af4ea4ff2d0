"""How the states run work that hashes a password (sign in, sign up, accept an invitation, change password).

Such work runs in a thread pool of its own, as many threads as there are hash slots
(`cf_portal.services.passwords.HASH_SLOTS`): a burst of sign-ins queues here, while purchases, card changes and
every other `asyncio.to_thread` keep the default pool to themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cf_portal.services.passwords import HASH_SLOTS

T = TypeVar("T")

_pool = ThreadPoolExecutor(max_workers=HASH_SLOTS, thread_name_prefix="cf-password")


async def run_password_work(work: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(_pool, work, *args)
