# The harness itself, seen from inside MicroPython: the heap cap holds, the board is on the path.
import gc

from mptest import check, heap, raises


def test_heap_is_capped_at_64k():
    gc.collect()
    total = gc.mem_free() + gc.mem_alloc()
    check(60 * 1024 <= total <= 64 * 1024, "heap is %d bytes, expected 64K" % total)


def test_allocation_past_the_cap_raises_memory_error():
    raises(MemoryError, bytearray, 80 * 1024)


@heap("256K")
def test_heap_can_be_raised_per_test():
    gc.collect()
    buf = bytearray(80 * 1024)
    check(len(buf) == 80 * 1024)


def test_virtual_board_module_is_importable():
    import board

    check(board.Board.name == "virtual")
