# MicroPython side of the scripted-broker tests (tests/uplink/test_mqtt_scripted.py):
#   micropython mp_drive_mqtt.py PORT N_PUBLISH DEAD_MS [KEEPALIVE_S [HOLD_MS [LINGER_MS]]]
# Connects firmware/dzcore/uplink/mqtt.py to 127.0.0.1:PORT as the device would (client id
# "dev-0001", persistent session, LWT), subscribes, publishes N_PUBLISH QoS 1 messages, then
# reads until the connection ends. With HOLD_MS it reads that long only, then sends DISCONNECT.
# With LINGER_MS the process lives that long after the client's close(): the broker must see
# the socket closed by close(), not by the process's exit.
# Every event is printed as one line for the host to check.
import asyncio
import socket
import sys
import time

from dzcore.uplink import mqtt
from dzcore.uplink.mqtt_codec import MQTTError


def _connect(port):
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    sock.setblocking(False)
    return sock


def _message(topic, payload, qos, retain):
    print("MSG", topic.decode(), bytes(payload).decode(), qos, *(["retained"] if retain else []))


async def _main(port, n_publish, dead_ms, keepalive_s, hold_ms, linger_ms):
    client = mqtt.MQTTClient("dev-0001", time.ticks_ms, time.ticks_diff, keepalive_s, dead_ms)
    client.on_puback = lambda pid: print("PUBACK", pid)
    client.on_message = _message
    client.on_skipped = lambda topic, size: print("SKIPPED", topic.decode(), size)
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
        start = time.ticks_ms()
        held = False
        while not (run.done() or keep.done()):
            await asyncio.sleep_ms(10)
            if hold_ms and time.ticks_diff(time.ticks_ms(), start) >= hold_ms:
                run.cancel()
                keep.cancel()
                await asyncio.sleep_ms(0)
                await client.disconnect()
                print("DISCONNECTED")
                held = True
                break
        for task in (run, keep):
            if held:
                break
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
    await asyncio.sleep_ms(linger_ms)
    print("END")


_args = [int(a) for a in sys.argv[1:]] + [60, 0, 0][len(sys.argv) - 4 :]
asyncio.run(_main(*_args))
