"""A program's stdout compared with the expected text: :func:`normalize_output` (the rule) and
:class:`OutputComparison` (the rule applied while the output arrives, without holding it)."""

from __future__ import annotations


def normalize_output(text: str) -> str:
    """Output as compared by :func:`~ttclib.sandbox.passes_io`: trailing spaces of each line and trailing empty
    lines removed."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


class OutputComparison:
    """A program's stdout compared with the expected text while it arrives, with the rule of
    :func:`normalize_output` (trailing spaces of lines and trailing empty lines do not count),
    without holding the output: :meth:`feed` returns False at the first difference.

    >>> c = OutputComparison("1\\n2\\n")
    >>> c.feed(b"1  \\r\\n2"), c.finish()
    (True, True)
    >>> c = OutputComparison("1\\n2\\n")
    >>> c.feed(b"1\\n3\\n"), c.difference
    (False, "line 2: expected '2', got '3'")
    """

    def __init__(self, expected: str):
        text = normalize_output(expected)
        self.expected = (text + "\n").encode("utf-8", "surrogatepass") if text else b""
        self.pos = 0  # offset in ``expected`` of the next line to match
        self.line = 1  # its number
        self.blank = 0  # empty lines seen since, matched once a non-empty one follows
        self.partial = b""  # the output's unfinished last line
        self.difference: str | None = None
        longest = max((len(x) for x in self.expected.split(b"\n")), default=0)
        self.max_line = longest + 65536

    def feed(self, chunk: bytes) -> bool:
        if self.difference is not None:
            return False
        data = self.partial + chunk
        end = data.rfind(b"\n") + 1
        self.partial = data[end:]
        if len(self.partial) > self.max_line:
            return self._differ(f"line {self.line + self.blank}: longer than any expected line")
        complete = data[:end]
        if not self.blank and complete and self.expected.startswith(complete, self.pos):  # the common, exact case
            self.pos += len(complete)
            self.line += complete.count(b"\n")
            return True
        for raw in complete.split(b"\n")[:-1]:
            if not self._line(raw):
                return False
        return True

    def finish(self) -> bool:
        """Whether the whole output matched (call once the program has ended)."""
        if self.difference is None and self.partial:
            self._line(self.partial)
            self.partial = b""
        if self.difference is None and self.pos < len(self.expected):
            self._differ(f"line {self.line}: expected {self._shown()}, got the end of the output")
        return self.difference is None

    def _line(self, raw: bytes) -> bool:
        text = raw.decode("utf-8", errors="replace").rstrip()
        if not text:
            self.blank += 1
            return True
        for _ in range(self.blank):
            if self._next() != "":
                return self._differ(f"line {self.line}: expected {self._shown()}, got ''")
            self._advance()
        self.blank = 0
        if self._next() != text:
            return self._differ(f"line {self.line}: expected {self._shown()}, got {text[:80]!r}")
        self._advance()
        return True

    def _next(self) -> str | None:
        if self.pos >= len(self.expected):
            return None
        end = self.expected.index(b"\n", self.pos)
        return self.expected[self.pos : end].decode("utf-8", "surrogatepass")

    def _shown(self) -> str:
        line = self._next()
        return "the end of the output" if line is None else repr(line[:80])

    def _advance(self) -> None:
        self.pos = self.expected.index(b"\n", self.pos) + 1
        self.line += 1

    def _differ(self, why: str) -> bool:
        self.difference = why
        return False
