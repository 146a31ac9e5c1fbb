# MicroPython: print every record of a journal as one JSON line ("REC {...}").
#   micropython mp_journal_dump.py ROOT
import json
import sys

from dzcore import cbor
from dzcore.journal.journal import Journal

j = Journal(sys.argv[1], 4 << 20)
j.mount()
start = 1
while True:
    items, _gaps, nxt = j.peek(start, 64, 1 << 16)
    for _seq, raw in items:
        print("REC", json.dumps(cbor.decode(raw)))
    if not items or nxt == start:
        break
    start = nxt
