# What the journal refused for want of room: receipts refused (JournalFull) and diagnostics
# dropped past their cap, counted since mount for stats(), and how many of them no `overflow`
# diagnostic has reported yet. The report is itself a diagnostic, so it can be dropped too;
# then its count stays unreported and goes out with a later report.


class Overflow:
    def __init__(self):
        self.receipts = 0
        self.diag = 0
        self._unreported = {"r": 0, "d": 0}

    def refused(self, kind):
        if kind == "r":
            self.receipts += 1
        else:
            self.diag += 1
        self._unreported[kind] += 1

    def pending(self):
        return self._unreported["r"] + self._unreported["d"]

    def report(self, append_diag):
        # append_diag(body) -> seq, or None when the diagnostic was dropped (and counted here).
        for kind in ("r", "d"):
            count = self._unreported[kind]
            if count:
                self._unreported[kind] = 0
                if append_diag({"ev": "overflow", "count": count, "kind": kind}) is None:
                    # Still no room: report it later. The dropped report itself is not a
                    # dropped record; append_diag counted it as one, so take that back.
                    self._unreported["d"] -= 1
                    self._unreported[kind] += count
                    self.diag -= 1
