# The esp32-devkit and cat1-quecpython adapters against fakes with the documented shapes.
from mptest import board, check, equal


@board("cat1-quecpython")
def test_cat1_signal_registration_and_time():
    import fake_quectel
    from board import Board

    mods = fake_quectel.modules()
    b = Board(mods)
    equal(
        b.signal(),
        {
            "reg": 1,
            "cell": 0x0B3F27,
            "rat": "lte",
            "csq": 23,
            "rssi": -71,
            "rsrp": -98,
            "rsrq": -11,
            "sinr": 14,
        },
        "LTE signal map",
    )
    mods["net"].state = ([1, 1, 2, 0, 0, 0], [5, 0x22, 0x1234, 3, 0, 0])
    mods["net"].detail = ([-83, 0, 255, 255], [99, 99, 255, 255, 255])
    mods["net"].csq = 99
    mods["sim"].status = 1
    equal(b.signal(), {"reg": 5, "cell": 0x1234, "rat": "gsm", "rssi": -83}, "GSM, roaming")
    mods["sim"].status = 0
    equal(b.signal()["sim"], 0, "no SIM shows up in the signal map")
    equal(b.wall_time(), (1763782800, "modem"), "NITZ time")
    mods["net"].nitz = ("", 0, 0)
    equal(b.wall_time(), None, "no NITZ yet")
    equal(b.reset_cause(), "power_on", "power key")
    mods["Power"].reason = 5
    equal(b.reset_cause(), "crash", "fault")
    mods["Power"].reason = 1


@board("cat1-quecpython")
def test_cat1_data_call_outages_and_readiness_stage():
    import fake_quectel
    from board import Board

    mods = fake_quectel.modules()
    b = Board(mods)
    check(b.link_up(), "up from dataCall.getInfo before any callback")
    mods["dataCall"].event(1, 0)
    check(not b.link_up(), "down on the dataCall callback")
    mods["dataCall"].event(2, 1)
    check(not b.link_up(), "another profile does not count")
    mods["checkNet"].result = (2, 2)
    equal(b.link_why(), "reg 2", "registration stage from checkNet")
    mods["checkNet"].result = (1, 0)
    equal(b.link_why(), "sim 0", "no SIM")
    equal(mods["checkNet"].calls, [1, 1], "bounded wait")
    mods["dataCall"].event(1, 1)
    check(b.link_up(), "back up")
    equal(b.outages, 1, "one outage counted")
    b.feed_watchdog()
    b.feed_watchdog()
    wdt = fake_quectel.FakeWDT.made[-1]
    equal((wdt.period, wdt.fed), (60, 2), "watchdog made once, fed")


@board("esp32-devkit")
def test_esp32_wlan_status_rssi_reset_cause_ntp():
    import fake_esp32
    from board import Board

    mods = fake_esp32.modules()
    b = Board(mods)
    wlan = mods["network"].wlan
    check(b.link_up(), "connected")
    equal(b.signal(), {"rat": "wifi", "rssi": -61}, "rssi")
    wlan.connected = False
    wlan.code = mods["network"].STAT_NO_AP_FOUND
    check(not b.link_up(), "down")
    equal(b.link_why(), "no ap", "WLAN status names the stage")
    wlan.code = mods["network"].STAT_HANDSHAKE_TIMEOUT
    equal(b.link_why(), "handshake timeout", "handshake")
    equal(b.signal(), {"rat": "wifi"}, "no rssi while disconnected")
    equal(b.wall_time(), None, "no NTP without a link")
    wlan.connected = True
    equal(b.wall_time(), (817090800 + 946684800, "ntp"), "NTP, 2000 epoch converted")
    equal(mods["ntptime"].calls, 1, "NTP once")
    b.wall_time()
    equal(mods["ntptime"].calls, 1, "still once")
    for cause, name in ((1, "power_on"), (3, "watchdog"), (5, "soft"), (2, "unknown")):
        mods["machine"].cause = cause
        equal(b.reset_cause(), name, "reset cause %d" % cause)
    b.feed_watchdog()
    equal(mods["machine"].wdts[0].fed, 1, "watchdog fed")


@board("esp32-devkit")
def test_esp32_mounts_littlefs_on_the_vfs_partition():
    import fake_esp32
    from board import Board

    mods = fake_esp32.modules()
    part = fake_esp32.FakePartition("vfs")
    fake_esp32.FakePartition.table = [fake_esp32.FakePartition("nvs"), part]
    b = Board(mods)
    equal(b.mount_storage(), part, "the vfs partition")
    equal(mods["vfs"].formatted, [part], "formatted on first use")
    equal(mods["vfs"].mounted[0][1], "/", "mounted at /")
    fake_esp32.FakePartition.table = []
    try:
        b.mount_storage()
    except OSError:
        return
    check(False, "no partition must raise")


@board("esp32-devkit")
def test_esp32_terminal_link_is_the_uart_of_board_json():
    import asyncio

    import fake_esp32
    from board import Board

    mods = fake_esp32.modules()
    b = Board(mods)
    equal(b.spec()["uart"], {"id": 1, "tx": 17, "rx": 16, "baudrate": 115200}, "board.json")
    link = b.terminal_link()
    equal(mods["machine"].uart.args, (1, 115200, 17, 16), "UART built from board.json")
    equal(b.journal_dir(), "/dz/journal", "journal on the vfs partition")
    uart = mods["machine"].uart
    served = []

    async def handler(reader, writer):
        # Reads split across UART arrivals, answers, then fails like a broken frame would.
        head = await reader.readexactly(3)
        rest = await reader.read(10) if not served else b""
        served.append(head + rest)
        writer.write(b"ack")
        await writer.drain()

    async def main():
        task = asyncio.create_task(link.serve(handler))
        uart.feed(b"ab")
        await asyncio.sleep_ms(30)
        uart.feed(b"cdef")
        await asyncio.sleep_ms(30)
        uart.feed(b"xyz")
        await asyncio.sleep_ms(60)
        task.cancel()

    asyncio.run(main())
    equal(served, [b"abcdef", b"xyz"], "frames read from the UART, served again after an end")
    equal(uart.tx, b"ackack", "answers written to the UART")


@board("cat1-quecpython")
def test_cat1_terminal_link_and_journal_dir():
    import fake_esp32
    import fake_quectel
    from board import Board

    mods = fake_quectel.modules()
    made = []

    def uart(*args):
        made.append(args)
        return fake_esp32.FakeUART(*args)

    mods["UART"] = uart
    b = Board(mods)
    check(b.terminal_link() is not None, "a UART link")
    equal(made, [(2, 115200, 8, 0, 1, 0)], "QuecPython UART(id, baud, 8, 0, 1, 0)")
    equal(b.journal_dir(), "/usr/dz/journal", "QuecPython user fs")
