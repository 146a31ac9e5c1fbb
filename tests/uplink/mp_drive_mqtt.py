# MicroPython side of the scripted-broker tests (tests/uplink/test_mqtt_scripted.py):
#   micropython mp_drive_mqtt.py PORT N_PUBLISH DEAD_MS
# Connects firmware/mqtt.py to 127.0.0.1:PORT as the device would (client id "dev-0001",
# persistent session, LWT), subscribes, publishes N_PUBLISH QoS 1 messages, then reads until
# the connection ends. Every event is printed as one line for the host to check.
import asyncio
import socket
import sys
import time

import mqtt
from mqtt_codec import MQTTError


def _connect(port):
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    sock.setblocking(False)
    return sock


async def _main(port, n_publish, dead_ms):
    client = mqtt.MQTTClient("dev-0001", time.ticks_ms, time.ticks_diff, 60, dead_ms)
    client.on_puback = lambda pid: print("PUBACK", pid)
    client.on_message = lambda topic, payload, qos: print(
        "MSG", topic.decode(), bytes(payload).decode(), qos
    )
    will = ("dz/v1/dev-0001/status", b"offline", 1, True)
    try:
        present = await client.connect(_connect(port), will=will)
        print("CONNACK", int(present))
        await client.subscribe([("dz/v1/dev-0001/ack", 0), ("dz/v1/dev-0001/cmd", 1)])
        print("SUBACK")
        await client.publish("dz/v1/dev-0001/status", b"online", 1, True)
        for i in range(n_publish):
            pid = await client.publish("dz/v1/dev-0001/up", b"batch-%d" % i, 1)
            print("SENT", pid)
        run = asyncio.create_task(client.run())
        keep = asyncio.create_task(client.keepalive(50))
        while not (run.done() or keep.done()):
            await asyncio.sleep_ms(10)
        for task in (run, keep):
            if task.done():
                await task
            else:
                task.cancel()
    except mqtt.ConnectRefused as exc:
        print("REFUSED", exc.code)
    except MQTTError as exc:
        print("ERROR", type(exc).__name__, exc)
    except OSError as exc:
        print("OSERROR", exc)
    finally:
        client.close()
    print("END")


asyncio.run(_main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
