# What intake accepts from the POS as a receipt (DESIGN §1.2), before anything touches flash:
# sensitive card data refused, a full PAN masked (first 6, a star per middle digit, last 4),
# every field checked. Errors name the field: they become the NAK reason.
from micropython import const

_MAX_UNKNOWN_TEXT = const(64)


class Refused(Exception):
    # str(): the NAK reason, e.g. "sensitive:cvv" or "schema:amt".
    pass


# Keys that carry what must never be stored: track data, card verification values, PIN.
_SENSITIVE = (
    "track",
    "track1",
    "track2",
    "track3",
    "trk1",
    "trk2",
    "trk3",
    "tk1",
    "tk2",
    "tk3",
    "cvv",
    "cvv2",
    "cvc",
    "cvc2",
    "cvn",
    "cvn2",
    "cav2",
    "cid",
    "csc",
    "pin",
    "pinblock",
    "pin_block",
    "epin",
    "de35",
    "de36",
    "de45",
    "de52",
)
_TYPES = ("sale", "void", "refund", "preauth", "preauth_void", "preauth_done", "preauth_done_void")
_STATES = (
    "approved",
    "declined",
    "no_response",
    "reversal_pending",
    "reversed",
    "reversal_failed",
    "voided",
    "offline_pending",
    "offline_sent",
)
_CHOICES = {
    "typ": _TYPES,
    "st": _STATES,
    "ch": ("card", "qr"),
    "ck": ("D", "C", "U"),
    "rv": ("98", "96", "A0", "06"),
    "sm": ("T1", "D1", "D0"),
}
# key: (length, digits only); text fields of a fixed length
_FIXED = {
    "mid": (15, False),
    "tid": (8, False),
    "bat": (6, True),
    "trc": (6, True),
    "otrc": (6, True),
    "rrn": (12, False),
    "orrn": (12, False),
    "auth": (6, False),
    "rc": (2, False),
    "ent": (3, True),
    "sd": (4, True),
    "cur": (3, False),
}
# key: longest; optional ids of 1..N printable ASCII characters (DESIGN §2.3)
_IDS = {"ord": 64, "xid": 64}
_INTS = ("amt", "lt")
_REQUIRED = ("mid", "tid", "bat", "trc", "typ", "amt", "st")


def _digits(text):
    return len(text) > 0 and all("0" <= c <= "9" for c in text)


def mask_pan(pan):
    return pan[:6] + "*" * (len(pan) - 10) + pan[-4:]


def _is_masked(pan):
    return (
        13 <= len(pan) <= 19
        and _digits(pan[:6])
        and _digits(pan[-4:])
        and all(c == "*" for c in pan[6:-4])
    )


def _track_like(text):
    # Track 2 equivalent data: a PAN, a separator ("=" or "D"), then expiry and service code.
    for sep in ("=", "D", "^"):
        at = text.find(sep)
        if at >= 12 and _digits(text[at - 12 : at]) and len(text) > at + 4:
            if _digits(text[at + 1 : at + 5]):
                return True
    return False


def _luhn(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix(run):
    # Begins as a card number can (3, 4, 5, 6, 8, 9, or Mastercard's 2221-2720); an order
    # number led by a date (2025...) does not. The collector's `card_prefix` is the same rule.
    return run[0] in "345689" or "2221" <= run[:4] <= "2720"


def _mask_runs(text, luhn_only=False):
    # Masks every run of 13-19 digits in free text (in ids: only a card-like one, passing
    # Luhn with a card's prefix, as the collector refuses them); -> (text, how many masked).
    out = []
    count = 0
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and "0" <= text[j] <= "9":
            j += 1
        if j > i:
            run = text[i:j]
            if 13 <= len(run) <= 19 and (not luhn_only or (_luhn(run) and _card_prefix(run))):
                run = mask_pan(run)
                count += 1
            out.append(run)
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out), count


def check(body):
    # -> (clean body, full PANs masked). Raises Refused. `body` is not modified.
    if not isinstance(body, dict):
        raise Refused("schema:body")
    for key in body:
        if not isinstance(key, str):
            raise Refused("schema:key")
        if key.lower() in _SENSITIVE:
            raise Refused("sensitive:" + key.lower())
    for key in _REQUIRED:
        if key not in body:
            raise Refused("schema:" + key)
    # A copy made at full size in one allocation (filled key by key, the dict would grow
    # through 4 tables, the last ~640 bytes, the others garbage); values replaced in place.
    clean = dict(body)
    masked = 0
    for key, value in body.items():
        clean[key], count = _field(key, value)
        masked += count
    return clean, masked


def _field(key, value):
    # -> (the value to store, full PANs masked in it); raises Refused.
    if isinstance(value, str) and _track_like(value):
        raise Refused("sensitive:track")
    if key == "pan":
        if not isinstance(value, str):
            raise Refused("schema:pan")
        if _digits(value) and 13 <= len(value) <= 19:
            return mask_pan(value), 1
        if not _is_masked(value):
            raise Refused("schema:pan")
    elif key in _CHOICES:
        if value not in _CHOICES[key]:
            raise Refused("schema:" + key)
    elif key in _FIXED:
        length, digits = _FIXED[key]
        if not isinstance(value, str) or len(value) != length:
            raise Refused("schema:" + key)
        if digits and not _digits(value):
            raise Refused("schema:" + key)
    elif key in _IDS:
        if not isinstance(value, str) or not 0 < len(value) <= _IDS[key]:
            raise Refused("schema:" + key)
        for c in value:
            if not "!" <= c <= "~":
                raise Refused("schema:" + key)
        # A card number standing alone (13-19 digits passing Luhn, a card's prefix) is
        # masked; an order number failing either, or the 28-digit ids of WeChat and Alipay,
        # stay whole.
        return _mask_runs(value, True)
    elif key in _INTS:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Refused("schema:" + key)
    elif isinstance(value, str):
        # A key this firmware does not know (a newer POS): kept, short, PAN-free.
        if len(value) > _MAX_UNKNOWN_TEXT:
            raise Refused("schema:" + key)
        return _mask_runs(value)
    elif not (isinstance(value, int) or value is None):
        raise Refused("schema:" + key)
    return value, 0
