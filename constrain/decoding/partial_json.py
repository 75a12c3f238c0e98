"""The value a JSON *prefix* describes so far, for streaming.

A constrained generation's text is always a prefix of a valid document, so a streaming client
can show the object as it grows.  :func:`parse_partial` reads such a prefix and returns what is
already determined:

- containers are closed where the text stops;
- a string that has started is included with the characters so far (an escape cut in half is
  left out until it is whole);
- a number is included once its text is a number (``-`` and ``1e`` are not yet);
- ``true`` / ``false`` / ``null`` only when complete;
- an object member only once its value has started (a key alone is not a member yet).

Text that is not a JSON prefix raises ``ValueError`` (a constrained output never is).
"""

from __future__ import annotations

import json
import re

__all__ = ["MISSING", "parse_partial"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


#: returned when the prefix determines no value yet (empty text, ``"-"``, ``{"a``)
MISSING = _Missing()

_WS = " \t\n\r"
_NUM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class _End(Exception):
    """The text stopped inside the value being read; carries what was read of it."""

    def __init__(self, value):
        self.value = value


def parse_partial(text: str):
    """The value of the JSON prefix ``text`` so far (``MISSING`` if none)."""
    p = _Parser(text)
    try:
        v = p.value()
    except _End as e:
        return e.value
    p.ws()
    if p.i != len(text):
        raise ValueError(f"extra text after a complete JSON value at offset {p.i}")
    return v


class _Parser:
    def __init__(self, s: str):
        self.s = s
        self.i = 0

    def ws(self) -> None:
        s, i = self.s, self.i
        while i < len(s) and s[i] in _WS:
            i += 1
        self.i = i

    def at_end(self) -> bool:
        self.ws()
        return self.i >= len(self.s)

    def fail(self, what: str):
        raise ValueError(f"not a JSON prefix: expected {what} at offset {self.i}")

    def value(self):
        if self.at_end():
            raise _End(MISSING)
        c = self.s[self.i]
        if c == "{":
            return self.obj()
        if c == "[":
            return self.arr()
        if c == '"':
            return self.string()
        if c in "-0123456789":
            return self.number()
        for word, v in (("true", True), ("false", False), ("null", None)):
            rest = self.s[self.i:self.i + len(word)]
            if word.startswith(rest):
                if rest == word:
                    self.i += len(word)
                    return v
                if self.i + len(rest) == len(self.s):
                    raise _End(MISSING)
        self.fail("a value")

    def obj(self):
        out: dict = {}
        self.i += 1
        if self.at_end():
            raise _End(out)
        if self.s[self.i] == "}":
            self.i += 1
            return out
        while True:
            if self.at_end():
                raise _End(out)
            if self.s[self.i] != '"':
                self.fail("a key")
            try:
                key = self.string()
            except _End:
                raise _End(out) from None
            if self.at_end():
                raise _End(out)
            if self.s[self.i] != ":":
                self.fail("':'")
            self.i += 1
            try:
                out[key] = self.value()
            except _End as e:
                if e.value is not MISSING:
                    out[key] = e.value
                raise _End(out) from None
            if self.at_end():
                raise _End(out)
            c = self.s[self.i]
            self.i += 1
            if c == "}":
                return out
            if c != ",":
                self.i -= 1
                self.fail("',' or '}'")

    def arr(self):
        out: list = []
        self.i += 1
        if self.at_end():
            raise _End(out)
        if self.s[self.i] == "]":
            self.i += 1
            return out
        while True:
            try:
                out.append(self.value())
            except _End as e:
                if e.value is not MISSING:
                    out.append(e.value)
                raise _End(out) from None
            if self.at_end():
                raise _End(out)
            c = self.s[self.i]
            self.i += 1
            if c == "]":
                return out
            if c != ",":
                self.i -= 1
                self.fail("',' or ']'")

    def string(self) -> str:
        s = self.s
        i = self.i + 1
        buf = []
        while i < len(s):
            c = s[i]
            if c == '"':
                self.i = i + 1
                return "".join(buf)
            if c == "\\":
                if i + 1 >= len(s):
                    break
                e = s[i + 1]
                if e == "u":
                    h = s[i + 2:i + 6]
                    if len(h) < 4:
                        break
                    cp = int(h, 16)
                    if 0xD800 <= cp < 0xDC00:  # a surrogate pair: wait for its second half
                        if len(s) < i + 12:
                            break
                        buf.append(json.loads('"' + s[i:i + 12] + '"'))
                        i += 12
                        continue
                    buf.append(chr(cp))
                    i += 6
                    continue
                if e not in _ESC:
                    self.i = i
                    self.fail("an escape")
                buf.append(_ESC[e])
                i += 2
                continue
            buf.append(c)
            i += 1
        self.i = len(s)
        raise _End("".join(buf))

    def number(self):
        m = _NUM.match(self.s, self.i)
        end = m.end() if m else self.i
        # the longest prefix that is a number; more text may still extend it
        j = self.i
        while j < len(self.s) and self.s[j] in "+-0123456789.eE":
            j += 1
        if j == len(self.s):  # the text stops inside the number
            if m is None:
                raise _End(MISSING)
            txt = m.group(0)
            raise _End(json.loads(txt))
        if m is None or end != j:
            self.fail("a number")
        self.i = end
        return json.loads(m.group(0))
