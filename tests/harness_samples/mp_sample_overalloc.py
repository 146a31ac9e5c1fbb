# Not collected (no mp_test_ prefix): run by tests/test_mp_harness.py to prove that a firmware
# test allocating past the heap cap fails.
def test_allocates_100k():
    data = bytearray(100 * 1024)
    print("allocated", len(data))
