"""Field technician tools: flash, provision, self-test and inspect devices with mpremote.

See docs/technician-howto.md for the technician's view and README.md here for the design.
"""
