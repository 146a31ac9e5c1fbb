# MicroPython side of the descriptor test (tests/uplink/test_mqtt_scripted.py):
#   micropython mp_drive_sessions.py PORT N_SESSIONS
# Runs N_SESSIONS sessions of firmware/mqtt.py against the scripted broker, one after the
# other, the way uplink.py runs them: connect, subscribe, run reader and keepalive until one
# fails, then close(). The broker ends session i by path i % 5 (see the test). Prints
# "SESSION i why" for each and "FDS i n" (open descriptors of this process, after a
# collection) after the first and the last.
import asyncio
import gc
import os
import socket
import sys
import time

from dzcore.uplink import mqtt
from dzcore.uplink.mqtt_codec import MQTTError


def _fds():
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _connect(port):
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    sock.setblocking(False)
    return sock


async def _session(client, port, index):
    try:
        await client.connect(_connect(port), timeout_ms=3000)
        await client.subscribe([("dz/v1/dev-0001/cmd", 1)], 3000)
        if index % 5 == 3:
            await client.disconnect()  # the client ends this one itself
            return "disconnect"
        run = asyncio.create_task(client.run())
        keep = asyncio.create_task(client.keepalive(20))
        while not (run.done() or keep.done()):
            await asyncio.sleep_ms(5)
        for task in (run, keep):
            if task.done():
                await task
            else:
                task.cancel()
        return "ended"
    except mqtt.ConnectRefused as exc:
        return "refused %d" % exc.code
    except MQTTError as exc:
        return type(exc).__name__
    except OSError as exc:
        return "oserror %s" % exc
    finally:
        client.close()


async def _main(port, sessions):
    client = mqtt.MQTTClient("dev-0001", time.ticks_ms, time.ticks_diff, 60, 300)
    for index in range(sessions):
        why = await _session(client, port, index)
        print("SESSION", index, why)
        if index in (0, sessions - 1):
            print("FDS", index, _fds())


asyncio.run(_main(int(sys.argv[1]), int(sys.argv[2])))
