"""A TCP forwarder: ``python tcpforward.py LISTEN_HOST PORT TARGET_HOST TARGET_PORT``.

The partition test runs it inside the worker's network namespace so that
the store's ``base_url`` can stay on ``127.0.0.1`` (the host speaks plain
HTTP to loopback only) while the bytes really cross the veth link to the
sandbox on the host. When the link goes down, what it forwards stalls as
any connection would. It prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


async def _main(host: str, port: int, target_host: str, target_port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(target_host, target_port), 10)
        except (OSError, TimeoutError):
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, host, port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
