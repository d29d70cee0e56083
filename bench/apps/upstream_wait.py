"""A loopback service for bench/gevent.py: answers every request `ok` after WAIT_MS
(default 50 ms), keep-alive, on one asyncio loop.  python3 upstream_wait.py PORT"""
import asyncio
import os
import sys

WAIT = int(os.environ.get("WAIT_MS", "50")) / 1000
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                break
            await asyncio.sleep(WAIT)
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    print(f"upstream on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
