"""A TCP port forwarder, so that a browser in the side namespace opens the server as
`http://127.0.0.1:PORT`: a secure context (camera, microphone) with the cookies the
other browser tests get, while every byte still crosses the side link.

Run as `python -m visio.testing.forward LISTEN_PORT TARGET_HOST TARGET_PORT`; it prints
`ready` once it listens on 127.0.0.1 and runs until its standard input closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _forward(listen_port: int, host: str, port: int) -> None:
    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, target_writer), _pipe(target_reader, writer))

    server = await asyncio.start_server(connect, "127.0.0.1", listen_port)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    await stdin.read()  # until the harness closes it, or exits
    server.close()


if __name__ == "__main__":
    asyncio.run(_forward(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
