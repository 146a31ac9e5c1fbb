# Small helpers for firmware tests that run under MicroPython (see tests/mp_harness.py).
# The decorators only carry settings; the host reads them from the source with `ast`.
import os


def heap(size):
    return lambda f: f


def board(name):
    return lambda f: f


def timeout(seconds):
    return lambda f: f


def slow(f):
    return f


class TestFailure(Exception):
    pass


def check(condition, message="check failed"):
    # Not `assert`: assert is compiled out with -O, and tests must never stop checking.
    if not condition:
        raise TestFailure(message)


def equal(actual, expected, what="value"):
    if actual != expected:
        raise TestFailure("%s: expected %r, got %r" % (what, expected, actual))


def raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    raise TestFailure("expected %s" % exc_type.__name__)


def tmpdir():
    # A fresh host directory per test, made by the harness.
    return os.getenv("DZ_TMP") or "."
