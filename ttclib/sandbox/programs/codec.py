"""Values crossing between the tests' process (T) and the solution's process (S), and the pipe
protocol they cross by.

Part of both programs (its text comes first in each, see :mod:`ttclib.sandbox.programs`). A
value is JSON of exact builtin types only, tagged where JSON has none; T decodes what S sends
with :func:`decode`, which builds builtins only, so T's comparisons never run code of the
solution. A message is 8 bytes of length, then its JSON.
"""

import json
import os

TAGS = frozenset("tSFdicyYQDIKVERq")
VIEWS = {type({}.keys()): "K", type({}.values()): "V", type({}.items()): "E"}


def encode(x, depth=0):
    if depth > 200:
        raise ValueError("value nested more than 200 deep")
    t, deeper = type(x), depth + 1
    if x is None or t is bool or t is str or t is float:
        return x
    if t is int:
        return x if -(2**53) < x < 2**53 else {"i": format(x, "x")}  # hex: no digit limit
    if t is list:
        return [encode(v, deeper) for v in x]
    if t is tuple:
        return {"t": [encode(v, deeper) for v in x]}
    if t is dict:
        return {"d": [[encode(k, deeper), encode(v, deeper)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"S" if t is set else "F": [encode(v, deeper) for v in x]}
    if t is complex:
        return {"c": [x.real, x.imag]}
    if t is bytes or t is bytearray:
        return {"y" if t is bytes else "Y": x.hex()}
    if t.__module__ == "fractions" and t.__name__ == "Fraction":
        return {"Q": [encode(x.numerator, deeper), encode(x.denominator, deeper)]}
    if t.__module__ == "decimal" and t.__name__ == "Decimal":
        return {"D": str(x)}
    if t in VIEWS:  # dict views compare as they do in Python (keys like a set)
        if VIEWS[t] == "E":
            return {"E": [[encode(k, deeper), encode(v, deeper)] for k, v in x]}
        return {VIEWS[t]: [encode(v, deeper) for v in x]}
    if t is range:
        return {"R": [encode(x.start, deeper), encode(x.stop, deeper), encode(x.step, deeper)]}
    if t.__module__ == "collections" and t.__name__ == "deque":
        return {"q": [encode(v, deeper) for v in x]}
    import collections.abc

    if isinstance(x, collections.abc.Iterator):  # map, filter, a generator...: what it yields,
        return {"I": [encode(v, deeper) for v in x]}  # arriving as an iterator over it
    return encode(plain(x), deeper)


def plain(x):
    """The builtin value standing for ``x`` (numpy scalars, IntEnum, namedtuple, Counter...)."""
    if type(x).__module__ == "numpy" and getattr(x, "ndim", None) == 0:
        return x.item()
    for base in (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset):
        if isinstance(x, base):
            return base(x)
    raise TypeError(f"a {type(x).__name__} is not a plain value")


def decode(v, depth=0):
    if depth > 250:
        raise ValueError("value nested more than 250 deep")
    t, deeper = type(v), depth + 1
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [decode(e, deeper) for e in v]
    if t is not dict or len(v) != 1:
        raise ValueError(f"not a value: {v!r:.80}")
    ((tag, p),) = v.items()
    if tag not in TAGS:
        raise ValueError(f"not a value tag: {tag!r:.20}")
    if tag in "yY":
        return (bytes if tag == "y" else bytearray).fromhex(str_of(p))
    if tag == "i":
        return int(str_of(p), 16)
    if tag == "D":
        import decimal

        return decimal.Decimal(str_of(p))
    items = list_of(p)
    if tag == "c":
        return complex(*(float_of(e) for e in pair_of(items)))
    if tag == "Q":
        import fractions

        return fractions.Fraction(*(int_of(decode(e, deeper)) for e in pair_of(items)))
    if tag in "dE":
        pairs = {decode(k, deeper): decode(e, deeper) for k, e in map(pair_of, items)}
        return pairs if tag == "d" else pairs.items()
    if tag == "R":
        return range(*(int_of(decode(e, deeper)) for e in items))
    values = [decode(e, deeper) for e in items]
    if tag == "K":
        return dict.fromkeys(values).keys()
    if tag == "V":
        return dict(enumerate(values)).values()
    if tag == "I":
        return iter(values)
    if tag == "q":
        import collections

        return collections.deque(values)
    return {"t": tuple, "S": set, "F": frozenset}[tag](values)


def str_of(p):
    if type(p) is not str:
        raise ValueError(f"not a string: {p!r:.80}")
    return p


def list_of(p):
    if type(p) is not list:
        raise ValueError(f"not a list: {p!r:.80}")
    return p


def pair_of(p):
    if type(p) is not list or len(p) != 2:
        raise ValueError(f"not a pair: {p!r:.80}")
    return p


def float_of(p):
    if type(p) is not float and type(p) is not int:
        raise ValueError(f"not a number: {p!r:.80}")
    return float(p)


def int_of(p):
    if type(p) is not int:
        raise ValueError(f"not an integer: {p!r:.80}")
    return p


def send(fd, message):
    data = json.dumps(message).encode()
    data = len(data).to_bytes(8, "big") + data
    while data:
        data = data[os.write(fd, data) :]


def receive(fd, limit=1 << 31):
    """The next message, or None at the end of the stream."""
    head = read_exactly(fd, 8)
    if head is None:
        return None
    size = int.from_bytes(head, "big")
    if size > limit:
        raise ValueError(f"message of {size} bytes")
    body = read_exactly(fd, size)
    if body is None:
        raise EOFError("stream ended inside a message")
    return json.loads(body)


def read_exactly(fd, n):
    parts, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
