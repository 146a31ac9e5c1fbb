# What the journal refused for want of room: receipts refused (JournalFull) and diagnostics
# dropped past their cap, counted since mount for stats(), and how many of them no `overflow`
# diagnostic has reported yet. The report is itself a diagnostic, so it can be dropped too;
# then its count stays unreported and goes out with a later report.


class Overflow:
    def __init__(self):
        self.receipts = 0
        self.diag = 0
        self._unreported = {"r": 0, "d": 0}
        self._reporting = False

    def refused(self, kind):
        if self._reporting:
            return  # the report itself, dropped for want of room, is not a refused record
        if kind == "r":
            self.receipts += 1
        else:
            self.diag += 1
        self._unreported[kind] += 1

    def pending(self):
        return self._unreported["r"] + self._unreported["d"]

    def report(self, append_diag):
        # append_diag(body) -> seq, or None when the diagnostic was dropped.
        self._reporting = True
        try:
            for kind in ("r", "d"):
                count = self._unreported[kind]
                if count:
                    self._unreported[kind] = 0
                    if append_diag({"ev": "overflow", "count": count, "kind": kind}) is None:
                        self._unreported[kind] += count  # still no room: report it later
        finally:
            self._reporting = False
