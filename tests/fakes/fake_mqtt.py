# A stand-in for firmware/dzcore/uplink/mqtt.py's MQTTClient that records what would go on the wire.
class FakeMQTT:
    def __init__(self):
        self.sent = []  # (topic, payload bytes, qos)

    async def publish(self, topic, payload, qos=0, retain=False):
        self.sent.append((topic, bytes(payload), qos))
        return len(self.sent)

    async def publish_into(self, topic, buf, start, end, qos=1):
        self.sent.append((topic, bytes(memoryview(buf)[start:end]), qos))
        return len(self.sent)
