# Runs under MicroPython for tests/firmware/test_cbor_property.py: reads one request per line
# from stdin and answers one line each, so one interpreter run checks many examples.
#   E <expr>  -> hex of cbor.encode(value)           (value built from the expression)
#   D <hex>   -> hex of cbor.encode(cbor.decode(b))  or  "ERR <message>" on CBORError
# Values travel as expressions over B()/S()/F() so that no CBOR is involved in the transport.
import struct
import sys

from dzcore import cbor


def B(h):
    return bytes.fromhex(h)


def S(h):
    return bytes.fromhex(h).decode()


def F(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]


_NAMES = {"B": B, "S": S, "F": F}


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        op, arg = line[0], line[2:].strip()
        if op == "E":
            print(cbor.encode(eval(arg, _NAMES)).hex())
        else:
            try:
                value = cbor.decode(bytes.fromhex(arg))
            except cbor.CBORError as exc:
                print("ERR", exc)
                continue
            print(cbor.encode(value).hex())


main()
