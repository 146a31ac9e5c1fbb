"""Virtual boards: the MicroPython unix port on a pseudo-terminal with LittleFS flash."""
