# Runs one test function of one mp_test_* module under MicroPython (see tests/mp_harness.py).
import sys


def _run(module_name, test_name):
    module = __import__(module_name)
    test = getattr(module, test_name)
    test()


def main():
    module_name, test_name = sys.argv[1], sys.argv[2]
    try:
        _run(module_name, test_name)
    except Exception as exc:  # report every failure with its MicroPython traceback
        sys.print_exception(exc)
        print("MPTEST FAIL")
        sys.exit(1)
    print("MPTEST PASS")


main()
