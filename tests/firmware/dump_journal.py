# Prints every record of the journal on a LittleFS2 image, one JSON line each, after mounting
# it as the agent does (recovery included). Run by CPython tests:
#   micropython dump_journal.py IMAGE BLOCK_COUNT [ROOT]
import json
import sys

import vfs
from blockdev import FileBlockDevice
from dzcore import cbor
from dzcore.journal.journal import Journal


def main():
    image, blocks = sys.argv[1], int(sys.argv[2])
    root = sys.argv[3] if len(sys.argv) > 3 else "/dz/journal"
    device = FileBlockDevice(open(image, "r+b"), blocks)
    vfs.mount(vfs.VfsLfs2(device), "/img")  # type: ignore[arg-type]
    journal = Journal("/img" + root, 1 << 30)
    journal.mount()
    stats = journal.stats()
    print(
        json.dumps({"epoch": stats["epoch"], "next_seq": stats["next_seq"], "lost": stats["lost"]})
    )
    cursor = 1
    while True:
        items, gaps, cursor = journal.peek(cursor, 16, 8192)
        for gap in gaps:
            print(json.dumps({"gap": gap}))
        if not items:
            break
        for seq, raw in items:
            record = cbor.decode(raw)
            print(json.dumps({"seq": seq, "k": record["k"], "b": record["b"]}))
    journal.close()


main()
