# The Python half of ironhorse's gevent bridge: runs on the worker's one hub thread.
#
# Rust queues new requests and wake-ups in an inbox and makes the bell descriptor readable
# when the inbox goes from empty to non-empty; a drainer greenlet takes the whole inbox per
# wake-up and never blocks, a spawner greenlet starts one greenlet per request in a pool of
# --worker-connections (waiting for room when it is full). Each request's greenlet talks to
# its channel (Rust state shared with the HTTP session) and waits on its own Event only
# when the channel has nothing to give or no room.
import sys
import warnings


class GeventMissing(Exception):
    """gevent cannot be imported in the application's environment."""


def patch():
    """gevent.monkey.patch_all(), before the application is imported."""
    try:
        from gevent import monkey
    except ImportError as error:
        raise GeventMissing(
            f"-k gevent needs gevent installed in the application's environment "
            f"({sys.executable}): pip install gevent ({error})") from None
    with warnings.catch_warnings():
        # Patching off the process's first thread is expected here: the hub thread patches.
        warnings.simplefilter("ignore", monkey.MonkeyPatchWarning)
        monkey.patch_all()


class Input:
    """wsgi.input: the body as the session hands it over, read on demand."""

    def __init__(self, chan, event):
        self._chan, self._event = chan, event
        self._buf = b""
        self._eof = False

    def _more(self):
        if self._eof:
            return False
        while True:
            chunk = self._chan.chunk(self._event)
            if chunk is not None:
                break
            self._event.wait()
            self._event.clear()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._more():
            pass
        data, self._buf = self._buf[:size], self._buf[size:]
        return data

    def readline(self, size=-1):
        while b"\n" not in self._buf and (size is None or size < 0 or len(self._buf) < size):
            if not self._more():
                break
        end = self._buf.find(b"\n") + 1 or len(self._buf)
        if size is not None and size >= 0:
            end = min(end, size)
        line, self._buf = self._buf[:end], self._buf[end:]
        return line

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def _send(chan, event, data):
    while not chan.send(data, event):
        event.wait()
        event.clear()


def _run(app, chan, Event):
    event = Event()
    try:
        environ = chan.environ(Input(chan, event))
        if environ is None:
            return

        def write(data):
            _send(chan, event, data)

        def start_response(status, headers, exc_info=None):
            started, sent = chan.progress()
            if exc_info:
                try:
                    if sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif started:
                raise AssertionError("start_response called a second time without exc_info")
            chan.start(status, headers)
            return write

        result = app(environ, start_response)
        try:
            sent = chan.progress()[1]
            if isinstance(result, (list, tuple)) and not sent:
                chan.finish(result)
            elif not sent and chan.file(result):
                pass  # a file_wrapper over a real file: the session sends it (sendfile)
            else:
                for data in result:
                    if data:
                        _send(chan, event, data)
                chan.finish()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except BaseException as error:  # noqa: BLE001 - every failure is the app's, logged
        chan.failed(error)
    finally:
        chan.ended()


def serve(app, inbox, worker_connections):
    """The hub thread's body: until the inbox says stop, then every greenlet finishes."""
    import gevent
    from gevent.event import Event
    from gevent.pool import Pool
    from gevent.queue import Queue

    from gevent.monkey import get_original

    inbox.hub_thread(get_original("_thread", "get_ident")())
    hub = gevent.get_hub()
    bell = hub.loop.io(inbox.fileno(), 1)
    pool = Pool(worker_connections)
    starts = Queue()

    def spawner():
        while True:
            chan = starts.get()
            if chan is None:
                return
            pool.wait_available()
            chan.set_task(pool.spawn(_run, app, chan, Event))

    spawning = gevent.spawn(spawner)
    # The worker's heartbeat goes on only while this timer fires: a hub blocked by a greenlet
    # (even in a C call no exception interrupts) stops it, and the master replaces the worker.
    pulse = hub.loop.timer(inbox.tick_seconds, inbox.tick_seconds)
    pulse.start(inbox.tick)
    inbox.log_info(f"gevent {gevent.__version__}: greenlets on one hub thread, "
                   f"at most {worker_connections} at once")
    while True:
        hub.wait(bell)
        news = inbox.drain()
        if news is None:
            break
        for chan in news:
            starts.put_nowait(chan)
    starts.put_nowait(None)
    spawning.join()
    pool.join()
    pulse.close()
    bell.close()
    inbox.stopped()
