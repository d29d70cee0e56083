# The Python half of ironhorse's ASGI bridge: runs on the worker's one event-loop thread.
#
# Rust queues work (new requests, wake-ups) in an inbox and makes the wake-up descriptor
# readable only when the inbox goes from empty to non-empty; `drain` takes the whole inbox
# per wake-up. `receive`/`send` are the connection's channel's (Rust state shared with the
# HTTP session): completed awaitables when a message is ready or queued, else the
# coroutines below, which await a future.
import asyncio
import inspect
import sys


def is_asgi(app):
    """--interface auto: an `async def` callable, an object whose __call__ is one, or an
    ASGI-2 class (instances are coroutine-callable)."""
    if inspect.isclass(app):
        return inspect.iscoroutinefunction(getattr(app, "__call__", None)) or hasattr(app, "__await__")
    if inspect.iscoroutinefunction(app):
        return True
    return inspect.iscoroutinefunction(getattr(app, "__call__", None))


def asgi3(app):
    """ASGI 2 (a class taking the scope, whose instances take receive and send) as ASGI 3."""
    if inspect.isclass(app):
        async def app3(scope, receive, send):
            await app(scope)(receive, send)
        return app3
    return app


async def receive_later(chan):
    """`receive()` when nothing was ready: parks a future until a message comes (the
    channel's `receive_message` answers at once when one is ready)."""
    loop = asyncio.get_running_loop()
    while True:
        waiter = loop.create_future()
        message = chan.receive_or_park(waiter)
        if message is not None:
            return message
        await waiter


async def send_later(chan, message):
    """`send()` when the queue was full: parks a future until there is room."""
    loop = asyncio.get_running_loop()
    while True:
        waiter = loop.create_future()
        if chan.park_sender(waiter):
            await waiter
        if chan.send(message):
            return


async def _call(app, scope, chan, tasks):
    try:
        await app(scope, chan.receive_message, chan.send_message)
    except asyncio.CancelledError:
        chan.ended("cancelled")
    except BaseException as error:  # noqa: BLE001 - every failure is the app's, logged
        chan.failed(error)
    else:
        chan.ended("returned")
    finally:
        # The task's own entry (no done callback: one scheduled call less per request).
        tasks.pop(chan, None)


class Lifespan:
    """The lifespan protocol, uvicorn's "auto" way: an app that raises or returns before
    answering startup does not support it, and is served anyway."""

    def __init__(self, app, loop, state):
        self.app, self.loop, self.state = app, loop, state
        self.messages = asyncio.Queue()
        self.startup = loop.create_future()
        self.shutdown = loop.create_future()
        self.task = None

    async def _receive(self):
        return await self.messages.get()

    async def _send(self, message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._settle(self.startup, None)
        elif kind == "lifespan.startup.failed":
            self._settle(self.startup, message.get("message", "") or "startup failed")
        elif kind == "lifespan.shutdown.complete":
            self._settle(self.shutdown, None)
        elif kind == "lifespan.shutdown.failed":
            self._settle(self.shutdown, message.get("message", "") or "shutdown failed")
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")

    @staticmethod
    def _settle(future, value):
        if not future.done():
            future.set_result(value)

    async def _run(self):
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as error:  # noqa: BLE001
            if not self.startup.done():
                # Not supported (or broken before answering): served without lifespan.
                self._unsupported(f"{type(error).__name__}: {error}")
                return
            self._settle(self.shutdown, f"{type(error).__name__}: {error}")
            raise
        if not self.startup.done():
            # `if scope["type"] != "http": return`: no lifespan here (uvicorn's reading).
            self._unsupported("it returned without answering lifespan.startup")
            return
        self._settle(self.shutdown, None)

    def _unsupported(self, why):
        self.unsupported = why
        self._settle(self.startup, None)
        self._settle(self.shutdown, None)

    async def start(self):
        """None when started (or unsupported), else the failure's message."""
        self.unsupported = None
        self.task = self.loop.create_task(self._run())
        self.messages.put_nowait({"type": "lifespan.startup"})
        return await self.startup

    async def stop(self):
        if self.unsupported is not None or self.task is None or self.task.done():
            return None
        self.messages.put_nowait({"type": "lifespan.shutdown"})
        return await self.shutdown


# How often the loop-lag probe runs (the ironhorse_asgi_loop_lag_seconds metric).
PROBE_INTERVAL = 0.1


def probe_lag(loop, inbox):
    """A callback scheduled every PROBE_INTERVAL that reports how late it ran: the time the
    loop was kept from its scheduled callbacks (an application blocking it, or CPU
    starvation)."""
    def tick(due):
        now = loop.time()
        inbox.loop_lag(now - due, PROBE_INTERVAL)
        loop.call_at(now + PROBE_INTERVAL, tick, now + PROBE_INTERVAL)

    due = loop.time() + PROBE_INTERVAL
    loop.call_at(due, tick, due)


def serve(app, inbox, fd, loop_kind):
    """The loop thread's body: until the inbox says stop."""
    uvloop = None
    if loop_kind in ("uvloop", "auto"):
        try:
            import uvloop
        except ImportError:
            if loop_kind == "uvloop":
                raise
    if uvloop is not None:
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    inbox.log_info(f"ASGI event loop: {'uvloop' if uvloop is not None else 'asyncio'}")
    app = asgi3(app)
    state = {}
    lifespan = Lifespan(app, loop, state)
    failure = loop.run_until_complete(lifespan.start())
    if lifespan.unsupported is not None:
        inbox.log_info("ASGI lifespan not supported by the application "
                       f"({lifespan.unsupported}); serving without it")
    inbox.started(failure, state)
    if failure is not None:
        loop.close()
        return
    tasks = {}  # channel -> its running task, cancelled if still there at the end
    stopping = loop.create_future()
    inbox.set_waiting(receive_later, send_later)
    create_task = loop.create_task

    def drain():
        starts = inbox.drain()
        if starts is None:
            if not stopping.done():
                stopping.set_result(None)
            return
        for chan, scope in starts:
            task = create_task(_call(app, scope, chan, tasks))
            chan.set_task(task)
            tasks[chan] = task

    loop.add_reader(fd, drain)
    probe_lag(loop, inbox)
    loop.run_until_complete(stopping)
    loop.remove_reader(fd)
    failure = loop.run_until_complete(lifespan.stop())
    inbox.stopped(failure)
    for task in list(tasks.values()):
        task.cancel()
    loop.close()
