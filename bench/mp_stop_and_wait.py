# MicroPython baseline for bench/uplink_2g.py: the naive uploader, one receipt per MQTT
# message as JSON, waiting for each PUBACK before the next (stop-and-wait).
#   micropython mp_stop_and_wait.py PORT N
import asyncio
import json
import socket
import sys
import time

from dzcore.uplink import mqtt


def _receipt(i):
    # The same receipt as tests/uplink/mp_drive_agent.py, with the record's envelope.
    return {
        "seq": i + 1,
        "k": "r",
        "t": 1763700000 + i,
        "boot": 1,
        "up": i,
        "b": {
            "mid": "898310048161234",
            "tid": "10293847",
            "bat": "000042",
            "trc": "%06d" % i,
            "typ": "sale",
            "amt": 1000 + i,
            "cur": "CNY",
            "pan": "622848******1234",
            "ck": "D",
            "ent": "071",
            "lt": 1763700000 + i,
            "st": "approved",
            "rc": "00",
            "rrn": "%012d" % i,
            "auth": "%06d" % (i % 999999),
        },
    }


async def main(port, n):
    sock = socket.socket()
    sock.connect(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    sock.setblocking(False)
    client = mqtt.MQTTClient("sw-0001", time.ticks_ms, time.ticks_diff, 60)
    acked = asyncio.Event()
    client.on_puback = lambda pid: acked.set()
    await client.connect(sock)
    reader = asyncio.create_task(client.run())
    start = time.ticks_ms()
    for i in range(n):
        acked.clear()
        await client.publish("dz/v1/sw-0001/json", json.dumps(_receipt(i)).encode(), 1)
        await acked.wait()
    print("STOP_AND_WAIT_MS", time.ticks_diff(time.ticks_ms(), start), n)
    reader.cancel()
    client.close()


asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
