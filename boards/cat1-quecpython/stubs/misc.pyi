# QuecPython `misc`: Power.powerOnReason() 1 key, 2 reset, 3 VBAT, 4 RTC, 5 fault, 6 VBUS.
class Power:
    @staticmethod
    def powerOnReason() -> int: ...
