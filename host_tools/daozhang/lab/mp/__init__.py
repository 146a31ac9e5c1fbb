"""Running the real MicroPython unix port from the host."""
