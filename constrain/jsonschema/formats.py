"""JSON Schema ``format`` values as byte-level DFAs over the decoded string content.

:func:`format_dfa` returns a minimal :class:`~constrain.grammar.dfa.ByteDFA` over the UTF-8
bytes of the *decoded* string value (no quotes, no JSON escapes) for a format of JSON Schema
draft 2020-12, as the JSON-Schema-Test-Suite (``optional/format``) defines it.  Every DFA is
**sound**: it never accepts an invalid string.  Most are **exact**; the rest accept a
documented *subset* of the valid strings.  Unknown names give ``None`` (the caller decides
whether to refuse).  :data:`KNOWN_FORMATS` lists the supported names, :func:`format_is_exact`
says which DFA is exact.

Exact (accepts precisely the valid strings):

``date``
    RFC 3339 ``full-date``: 4-digit year ``0001``–``9999``, month lengths, Feb 29 only in
    Gregorian leap years (divisible by 4, centuries only when divisible by 400).  Year ``0000``
    (valid in RFC 3339) is left out, as ``jsonschema``'s checker (Python's ``date``) refuses it.
    (``date-time`` keeps year ``0000``: its checker, ``rfc3339-validator``, accepts it.)
``duration``
    RFC 3339 appendix A (ISO 8601 durations): ``P`` + date part and/or ``T`` time part, or
    weeks alone; units in order, no fractions, no signs; upper-case designators as in ISO 8601
    (RFC 5234 would read the ABNF's literals case-insensitively; lower case is left out, which
    is the safe side).
``ipv4``
    dotted quad, decimal octets 0–255 without leading zeros.
``ipv6``
    RFC 4291 text form (RFC 3986 ``IPv6address``): every ``::`` compression, an embedded IPv4
    dotted quad in the last 32 bits; no zone id, no brackets, no prefix length.
``uuid``
    RFC 4122 text form ``8-4-4-4-12`` hex digits, any case, any version/variant nibble.
``uri``, ``uri-reference``
    RFC 3986 ``URI`` / ``URI-reference`` ABNF (ASCII only; ``IP-literal`` with exact IPv6 and
    ``IPvFuture``; a dotted quad in the host is also a valid ``reg-name``).
``iri``, ``iri-reference``
    RFC 3987 ``IRI`` / ``IRI-reference`` ABNF (``ucschar`` everywhere ``unreserved`` is allowed,
    ``iprivate`` in the query).
``json-pointer``
    RFC 6901.
``time``, ``date-time``
    RFC 3339 ``full-time`` / ``date-time`` with a required offset (``Z``/``z`` or
    ``±hh:mm``), ``T``/``t`` separator, any fraction of a second, and a leap second ``:60``
    exactly when the time converted to UTC is ``23:59`` (the suite's rule; the calendar date is
    not checked).  Exact only when ``max_states`` allows the exact DFA (time: 11,017 states;
    date-time: :data:`EXACT_SIZES`); below that — including the default cap — the DFA is the
    sound subset that accepts a leap second only with an offset whose minutes are ``00``,
    ``15``, ``30`` or ``45`` (every UTC offset in use).

Sound subsets (what is excluded):

``hostname``
    RFC 1123 labels (letters, digits, inner hyphens; 1–63 characters; no leading/trailing dot)
    and a total of at most 253 characters.  Excluded: *reserved LDH labels* (``--`` in
    positions 3–4), which removes all IDNA A-labels (``xn--...``): their validity needs
    Punycode decoding and IDNA2008 rules.  With the default ``max_states`` the 253-character
    bound is enforced conservatively: when a label grows past 3 characters, the remaining length
    budget is rounded down to a multiple of 16 (each label longer than 3 characters may forfeit
    up to 15 characters of the budget), so every such hostname of total length
    ``<= 253 - 15 * (number of labels longer than 3 characters)`` is accepted.  With
    ``max_states >= EXACT_SIZES["hostname"]`` (24,038) the bound is exact.
``idn-hostname``
    the ASCII names of the ``hostname`` DFA, plus U-labels and the ideographic full stops as
    :mod:`constrain.jsonschema.idn` describes: IDNA2008 PVALID code points of a few BMP blocks,
    NFC by construction, the CONTEXTJ/CONTEXTO rules, at most 9 code points per U-label (so the
    A-label fits 63 octets), at most 3 U-labels per name.  Excluded: A-labels (``xn--``),
    right-to-left labels, U+30FB, longer U-labels.
``email``
    RFC 5321 ``Mailbox``: ``Dot-string`` or ``Quoted-string`` local part of at most 64 octets
    (RFC 5321 4.5.3.1.1), ``@``, then a domain or an address literal.  Excluded: domains that
    the default (budgeted) ``hostname`` DFA does not accept (so domains obey the DNS limits of
    63-octet labels and 253 characters instead of the ABNF's unlimited ``sub-domain``, and
    R-LDH labels are excluded), General-address-literals (``[tag:...]``), IPv4 literal octets
    with leading zeros (RFC 5321 ``Snum`` allows them, most validators do not), the ``IPv6:``
    tag in any other case.  IPv6 literals follow RFC 5321's own ``IPv6-addr`` (at most 6 groups beside ``::``),
    which is also valid RFC 4291.
``idn-email``
    ``email`` plus RFC 6531 ``UTF8-non-ascii`` characters in the local part (in atoms and quoted
    strings; still at most 64 octets), and the ``idn-hostname`` domains.
``uri-template``
    RFC 6570 (level 4) with the suite's extra ``'`` literal: literals, ``{`` operator varspec
    list ``}`` with ``:1``–``:9999`` prefixes and ``*`` explode.  Excluded: the operators
    ``= , ! @ |`` that RFC 6570 reserves for future extensions.
``relative-json-pointer``
    ``non-negative-integer`` followed by ``#`` or a JSON pointer (draft-handrews-01, what the
    suite tests).  Excluded: the ``+N``/``-N`` index manipulation of draft-bhutton-00.
``regex``
    a regular subset of the ECMA-262 syntax that is also valid in non-unicode ECMA and Python
    ``re``: literals, ``.``, escapes ``\\d \\D \\w \\W \\s \\S \\f \\n \\r \\t \\v \\xHH \\uHHHH``
    and escaped syntax characters, non-empty classes of literals (not ``\\ ] [ - ^``) /
    escapes / ordered ranges between ASCII letters or digits, groups ``(...)``/``(?:...)``
    nested at most 3 deep, alternation, ``^``/``$``, and quantifiers ``* + ? {n} {n,}`` (n up to 4 digits) and
    ``{n,m}`` with single digits ``n <= m``, each optionally lazy.  Everything else (lookaround,
    backreferences, named groups, ``\\b``, ``\\p{...}``, ``\\cX``, class ranges with other
    endpoints, unescaped ``-`` in classes, deeper nesting) is excluded.

DFA sizes (minimal states with the default ``max_states`` = 10,000; cold build time on one
core; every DFA is built once per process, ``lru_cache``)::

    date 29 · duration 15 · ipv4 24 · ipv6 151 · uuid 37 · json-pointer 10 ·
    relative-json-pointer 13 · uri-template 27 · uri 179 (0.1 s) · uri-reference 182 (0.15 s) ·
    iri 261 (0.1 s) · iri-reference 277 (0.2 s) · time 884 (0.1 s) · date-time 913 (0.15 s) ·
    hostname 2,781 (0.15 s) · idn-hostname 6,400 (2.6 s) · email 3,178 (0.7 s) · idn-email 7,647 (1.4 s) ·
    regex 722 (1 s)
    exact variants (max_states >= EXACT_SIZES[name]): time 11,017 (1.6 s) ·
    date-time 11,046 (2 s) · hostname 24,038 (0.9 s)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from constrain.errors import ConfigError, LimitExceeded
from constrain.grammar.dfa import DEFAULT_MAX_STATES, ByteDFA, ByteNFA
from constrain.grammar.regex import compile_regex, literal_dfa

__all__ = ["KNOWN_FORMATS", "EXACT_FORMATS", "EXACT_SIZES", "format_dfa", "format_is_exact"]

_BIG = 1_000_000  # internal cap while building (results are checked against max_states)

# ---------------------------------------------------------------------------------------
# shared regex pieces (Python ``re`` syntax, compiled with compile_regex)
# ---------------------------------------------------------------------------------------

_DIGIT = "[0-9]"
_HEX = "[0-9A-Fa-f]"
_DEC_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4 = rf"{_DEC_OCTET}(?:\.{_DEC_OCTET}){{3}}"
_H16 = f"{_HEX}{{1,4}}"
_LS32 = f"(?:{_H16}:{_H16}|{_IPV4})"


def _ipv6_regex() -> str:
    # RFC 3986 IPv6address
    alts = [f"(?:{_H16}:){{6}}{_LS32}", f"::(?:{_H16}:){{5}}{_LS32}"]
    tails = {2: f"(?:{_H16}:){{4}}{_LS32}", 3: f"(?:{_H16}:){{3}}{_LS32}",
             4: f"(?:{_H16}:){{2}}{_LS32}", 5: f"{_H16}:{_LS32}", 6: _LS32, 7: _H16, 8: ""}
    for k in range(1, 8):  # "[ *(k-1)( h16 ":" ) h16 ] "::" tail"
        prefix = f"(?:(?:{_H16}:){{0,{k - 1}}}{_H16})?" if k > 1 else f"(?:{_H16})?"
        alts.append(f"{prefix}::{tails[k + 1]}")
    return "(?:" + "|".join(alts) + ")"


_IPV6 = _ipv6_regex()
_UUID = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"

# dates and times (RFC 3339)
_MD = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
       "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
       "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_YEAR = ("(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])"
              "|(?:0[48]|[2468][048]|[13579][26]|00)00)")
_DATE = f"(?:[0-9]{{4}}-{_MD}|{_LEAP_YEAR}-02-29)"
_HH = "(?:[01][0-9]|2[0-3])"
_MIN = "[0-5][0-9]"
_FRAC = r"(?:\.[0-9]+)?"
_OFFSET = f"(?:[Zz]|[+-]{_HH}:{_MIN})"
_TIME_NO_LEAP = f"{_HH}:{_MIN}:{_MIN}{_FRAC}{_OFFSET}"


def _leap_second_regex(all_offsets: bool) -> str:
    """``HH:MM:60[.frac]offset`` where HH:MM - offset = 23:59 UTC.

    For local time ``t`` (minutes of the day) the ``+`` offset is ``t - 23:59`` and the ``-``
    offset is ``23:59 - t`` (mod 24 h): one each per local time; ``Z`` only at 23:59.
    With ``all_offsets=False`` only offsets whose minutes are 00/15/30/45 are kept.
    """
    alts = []
    for t in range(1440):
        hh, mm = divmod(t, 60)
        offs = []
        plus = (t - 1439) % 1440
        minus = (1439 - t) % 1440
        for sign, v in (("\\+", plus), ("-", minus)):
            oh, om = divmod(v, 60)
            if all_offsets or om % 15 == 0:
                offs.append(f"{sign}{oh:02d}:{om:02d}")
        if t == 1439:
            offs.append("[Zz]")
        if offs:
            alts.append(f"{hh:02d}:{mm:02d}:60{_FRAC}(?:{'|'.join(offs)})")
    return "(?:" + "|".join(alts) + ")"


def _time_regex(exact: bool) -> str:
    return f"(?:{_TIME_NO_LEAP}|{_leap_second_regex(exact)})"


# duration (RFC 3339 appendix A)
_DUR_SECOND = f"{_DIGIT}+S"
_DUR_MINUTE = f"{_DIGIT}+M(?:{_DUR_SECOND})?"
_DUR_HOUR = f"{_DIGIT}+H(?:{_DUR_MINUTE})?"
_DUR_TIME = f"T(?:{_DUR_HOUR}|{_DUR_MINUTE}|{_DUR_SECOND})"
_DUR_DAY = f"{_DIGIT}+D"
_DUR_MONTH = f"{_DIGIT}+M(?:{_DUR_DAY})?"
_DUR_YEAR = f"{_DIGIT}+Y(?:{_DUR_MONTH})?"
_DUR_DATE = f"(?:{_DUR_DAY}|{_DUR_MONTH}|{_DUR_YEAR})(?:{_DUR_TIME})?"
_DURATION = f"P(?:{_DUR_DATE}|{_DUR_TIME}|{_DIGIT}+W)"

# URIs (RFC 3986) and IRIs (RFC 3987)
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = f"%{_HEX}{_HEX}"
_UCSCHAR = (r"\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef"
            + "".join(f"\\U{p:04x}0000-\\U{p:04x}fffd" for p in range(1, 14))
            + r"\U000e1000-\U000efffd")
_IPRIVATE = r"\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"


def _uri_regexes(iri: bool) -> tuple[str, str]:
    unres = _UNRESERVED + (_UCSCHAR if iri else "")
    pchar = f"(?:[{unres}{_SUB_DELIMS}:@]|{_PCT})"
    segment = f"{pchar}*"
    segment_nz = f"{pchar}+"
    segment_nz_nc = f"(?:[{unres}{_SUB_DELIMS}@]|{_PCT})+"
    query = f"(?:{pchar}|[/?{_IPRIVATE if iri else ''}])*"
    fragment = f"(?:{pchar}|[/?])*"
    scheme = r"[A-Za-z][A-Za-z0-9+\-.]*"
    userinfo = f"(?:[{unres}{_SUB_DELIMS}:]|{_PCT})*"
    ipvfuture = rf"[vV]{_HEX}+\.[{_UNRESERVED}{_SUB_DELIMS}:]+"
    ip_literal = rf"\[(?:{_IPV6}|{ipvfuture})\]"
    reg_name = f"(?:[{unres}{_SUB_DELIMS}]|{_PCT})*"  # IPv4address is a subset of reg-name
    authority = f"(?:{userinfo}@)?(?:{ip_literal}|{reg_name})(?::[0-9]*)?"
    path_abempty = f"(?:/{segment})*"
    path_absolute = f"/(?:{segment_nz}(?:/{segment})*)?"
    path_noscheme = f"{segment_nz_nc}(?:/{segment})*"
    path_rootless = f"{segment_nz}(?:/{segment})*"
    tail = rf"(?:\?{query})?(?:#{fragment})?"
    hier_part = f"(?://{authority}{path_abempty}|{path_absolute}|{path_rootless}|)"
    uri = f"{scheme}:{hier_part}{tail}"
    relative_part = f"(?://{authority}{path_abempty}|{path_absolute}|{path_noscheme}|)"
    relative_ref = f"{relative_part}{tail}"
    return uri, f"(?:{uri}|{relative_ref})"


# JSON pointers
_JSON_POINTER = "(?:/(?:[^/~]|~[01])*)*"
_RELATIVE_JSON_POINTER = f"(?:0|[1-9][0-9]*)(?:#|{_JSON_POINTER})"

# URI templates (RFC 6570; the suite also accepts "'" in literals)
_PCT_T = f"%{_HEX}{_HEX}"
_UT_LITERALS = (rf"(?:[\x21\x23\x24\x26\x27\x28-\x3b\x3d\x3f-\x5b\x5d\x5f\x61-\x7a\x7e"
                rf"{_UCSCHAR}{_IPRIVATE}]|{_PCT_T})")
_UT_VARCHAR = f"(?:[A-Za-z0-9_]|{_PCT_T})"
_UT_VARNAME = rf"{_UT_VARCHAR}(?:\.?{_UT_VARCHAR})*"
_UT_VARSPEC = rf"{_UT_VARNAME}(?::[1-9][0-9]{{0,3}}|\*)?"
_UT_EXPRESSION = rf"\{{[+#./;?&]?{_UT_VARSPEC}(?:,{_UT_VARSPEC})*\}}"
_URI_TEMPLATE = f"(?:{_UT_LITERALS}|{_UT_EXPRESSION})*"

# e-mail (RFC 5321 / RFC 6531)
_ATEXT = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
_NON_ASCII = r"\u0080-\U0010ffff"
_SNUM = _DEC_OCTET
_IPV4_LIT = rf"{_SNUM}(?:\.{_SNUM}){{3}}"
_IPV6_HEX = f"{_HEX}{{1,4}}"


def _rfc5321_ipv6() -> str:
    full = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{7}}"
    v4full = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{5}}:{_IPV4_LIT}"
    # "::" with at most 6 (resp. 4 + IPv4) groups in total beside it
    comp = []
    for a in range(0, 7):
        for b in range(0, 7 - a):
            left = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{{a - 1}}}" if a else ""
            right = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{{b - 1}}}" if b else ""
            comp.append(f"{left}::{right}")
    v4comp = []
    for a in range(0, 5):
        for b in range(0, 5 - a):
            left = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{{a - 1}}}" if a else ""
            right = f"{_IPV6_HEX}(?::{_IPV6_HEX}){{{b - 1}}}:" if b else ""
            v4comp.append(f"{left}::{right}{_IPV4_LIT}")
    return "(?:" + "|".join([full, v4full] + comp + v4comp) + ")"


def _local_part_regex(utf8: bool) -> str:
    extra = _NON_ASCII if utf8 else ""
    atom = f"[{_ATEXT}{extra}]+"
    dot_string = rf"{atom}(?:\.{atom})*"
    qtext = rf"[\x20\x21\x23-\x5b\x5d-\x7e{extra}]"
    quoted = rf'"(?:{qtext}|\\[\x20-\x7e])*"'
    return f"(?:{dot_string}|{quoted})"


# "regex": a sound regular subset of ECMA-262 syntax (see module docstring)
_RX_SYNTAX = r"\^$\\.*+?()\[\]{}|"
_RX_ESCAPE = rf"\\(?:[dDwWsSfnrtv]|x{_HEX}{{2}}|u{_HEX}{{4}}|[{_RX_SYNTAX}/])"
_RX_CLASS_ESCAPE = rf"\\(?:[dDwWsSfnrtvb\-]|x{_HEX}{{2}}|u{_HEX}{{4}}|[{_RX_SYNTAX}/])"


def _rx_ranges() -> str:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    alts = []
    for i, lo in enumerate(chars):
        alts.append(f"{lo}-[{''.join(chars[i:])}]")
    return "(?:" + "|".join(alts) + ")"


def _regex_format_dfa(depth: int) -> ByteDFA:
    klass = _rx(rf"\[\^?(?:[^\\\]\-\[^]|{_RX_CLASS_ESCAPE}|{_rx_ranges()})+\]")
    base_atom = _rx(rf"[^{_RX_SYNTAX}]|\.|{_RX_ESCAPE}").union(klass, max_states=_BIG)
    single = "|".join(rf"\{{{n},{m}\}}" for n in range(10) for m in range(n, 10))
    quant = _rx(rf"(?:[*+?]|\{{[0-9]{{1,4}},?\}}|{single})\??")
    anchor = _rx(r"[$^]")
    nfa = ByteNFA()

    def disjunction(d: int):
        def term():
            atoms = [nfa.embed_dfa(base_atom)]
            if d > 0:
                atoms.append(nfa.concat([nfa.literal(b"("), nfa.opt(nfa.literal(b"?:")),
                                         disjunction(d - 1), nfa.literal(b")")]))
            return nfa.alt([nfa.concat([nfa.alt(atoms), nfa.opt(nfa.embed_dfa(quant))]),
                            nfa.embed_dfa(anchor)])

        first = nfa.star(term())
        rest = nfa.star(nfa.concat([nfa.literal(b"|"), nfa.star(term())]))
        return nfa.concat([first, rest])

    s, e = disjunction(depth)
    return nfa.to_dfa(s, e, max_states=_BIG).minimize()


# ---------------------------------------------------------------------------------------
# explicit-state builders
# ---------------------------------------------------------------------------------------

_ALNUM = [b for b in range(256) if chr(b).isascii() and chr(b).isalnum()]
_HOST_CLASSES = (_ALNUM, [ord("-")], [ord(".")])
_HOST_TOTAL = 253
_HOST_LABEL = 63
_HOST_SHORT = 3    # labels up to this length are budgeted exactly in the subset
_HOST_GRAIN = 16   # longer labels round the remaining budget down to a multiple of this


def _explicit_dfa(start, classes, step, accepting, what: str) -> ByteDFA:
    ids = {start: 0}
    order = [start]
    rows: list[list[int]] = []
    acc: list[bool] = []
    i = 0
    while i < len(order):
        s = order[i]
        i += 1
        acc.append(bool(accepting(s)))
        row = []
        for c in range(len(classes)):
            t = step(s, c)
            if t is None:
                row.append(-1)
                continue
            j = ids.get(t)
            if j is None:
                if len(order) >= _BIG:
                    raise LimitExceeded(f"building {what} needs too many states",
                                        limit="max_dfa_states", value=_BIG)
                j = ids[t] = len(order)
                order.append(t)
            row.append(j)
        rows.append(row)
    r = np.asarray(rows, dtype=np.int32).reshape(len(rows), len(classes))
    trans = np.full((len(rows), 256), -1, dtype=np.int32)
    for c, bs in enumerate(classes):
        trans[:, bs] = r[:, [c]]
    return ByteDFA(trans, np.asarray(acc, dtype=bool)).minimize()


def _hostname_dfa(exact: bool) -> ByteDFA:
    """RFC 1123 hostnames without reserved-LDH labels, total <= 253 (exact or budgeted).

    State ``(long, r, l, h)``: ``r`` remaining character budget, ``l`` current label length,
    ``h`` last character was ``-``.  In the subset, a label longer than ``_HOST_SHORT`` switches
    to ``long`` mode, where ``r`` is frozen at the budget left after its ``_HOST_SHORT + 1``-th
    character rounded down to a multiple of ``_HOST_GRAIN``; the characters read in long mode
    are charged against it when the label ends.  The charged budget never exceeds the true one,
    so every accepted name has at most 253 characters.
    """
    short = _HOST_LABEL if exact else _HOST_SHORT

    def step(s, c):
        long_, r, l, h = s
        if c == 2:  # '.'
            if l == 0 or h:
                return None
            rn = r - (l - short - 1) - 1 if long_ else r - 1
            return None if rn < 0 else (False, rn, 0, False)
        hyphen = c == 1
        if l >= _HOST_LABEL or (hyphen and (l == 0 or (l == 3 and h))):
            return None
        if long_:
            return (True, r, l + 1, hyphen) if l + 1 - short - 1 <= r else None
        if r == 0:
            return None
        if l + 1 <= short:
            return (False, r - 1, l + 1, hyphen)
        return (True, ((r - 1) // _HOST_GRAIN) * _HOST_GRAIN, l + 1, hyphen)

    return _explicit_dfa((False, _HOST_TOTAL, 0, False), _HOST_CLASSES, step,
                         lambda s: s[2] > 0 and not s[3], "the hostname DFA")


def _max_bytes_dfa(n: int) -> ByteDFA:
    """All byte strings of length <= n."""
    trans = np.full((n + 1, 256), -1, dtype=np.int32)
    for i in range(n):
        trans[i, :] = i + 1
    return ByteDFA(trans, np.ones(n + 1, dtype=bool))


def _concat(*parts: ByteDFA) -> ByteDFA:
    nfa = ByteNFA()
    frags = [nfa.embed_dfa(p) for p in parts]
    s, e = nfa.concat(frags)
    return nfa.to_dfa(s, e, max_states=_BIG).minimize()


def _rx(pattern: str) -> ByteDFA:
    return compile_regex(pattern, max_states=_BIG)


# ---------------------------------------------------------------------------------------
# builders per format (exact flag: build the exact variant where there are two)
# ---------------------------------------------------------------------------------------

def _idn_hostname() -> ByteDFA:
    from constrain.jsonschema.idn import idn_hostname_dfa

    return idn_hostname_dfa()


def _email(utf8: bool) -> ByteDFA:
    local = _rx(_local_part_regex(utf8)).intersect(_max_bytes_dfa(64), max_states=_BIG)
    literal = _rx(rf"\[(?:{_IPV4_LIT}|IPv6:{_rfc5321_ipv6()})\]")
    domain = _build("idn-hostname" if utf8 else "hostname", False).union(literal, max_states=_BIG)
    return _concat(local, literal_dfa(b"@"), domain)


_BUILDERS = {
    # year 0000 is a valid RFC 3339 full-date, but Python's date (jsonschema's "date" checker)
    # starts at year 1: leave it out so every accepted value also passes jsonschema
    "date": lambda exact: _rx(_DATE).intersect(_rx("0000-.*").complement(), max_states=_BIG),
    "time": lambda exact: _rx(_time_regex(exact)),
    "date-time": lambda exact: _rx(f"{_DATE}[Tt]{_time_regex(exact)}"),
    "duration": lambda exact: _rx(_DURATION),
    "ipv4": lambda exact: _rx(_IPV4),
    "ipv6": lambda exact: _rx(_IPV6),
    "uuid": lambda exact: _rx(_UUID),
    "uri": lambda exact: _rx(_uri_regexes(False)[0]),
    "uri-reference": lambda exact: _rx(_uri_regexes(False)[1]),
    "iri": lambda exact: _rx(_uri_regexes(True)[0]),
    "iri-reference": lambda exact: _rx(_uri_regexes(True)[1]),
    "json-pointer": lambda exact: _rx(_JSON_POINTER),
    "relative-json-pointer": lambda exact: _rx(_RELATIVE_JSON_POINTER),
    "uri-template": lambda exact: _rx(_URI_TEMPLATE),
    "hostname": lambda exact: _hostname_dfa(exact),
    "idn-hostname": lambda exact: _idn_hostname(),
    "email": lambda exact: _email(utf8=False),
    "idn-email": lambda exact: _email(utf8=True),
    "regex": lambda exact: _regex_format_dfa(3),
}

KNOWN_FORMATS: frozenset[str] = frozenset(_BUILDERS)
"""Format names :func:`format_dfa` supports (every draft 2020-12 format)."""

EXACT_FORMATS: frozenset[str] = frozenset({
    "date", "time", "date-time", "duration", "ipv4", "ipv6", "uuid", "uri", "uri-reference",
    "iri", "iri-reference", "json-pointer"})
"""Formats whose language can be exact (``time``/``date-time`` need ``max_states``)."""

EXACT_SIZES: dict[str, int] = {
    # minimal state counts of the large "exact" variants; a format listed here gets its
    # exact (or, for hostname-based formats, exact-length) DFA only when max_states allows it
    "time": 11017,
    "date-time": 11046,
    "hostname": 24038,
}


def format_is_exact(name: str, *, max_states: int = DEFAULT_MAX_STATES) -> bool:
    """True iff :func:`format_dfa` (with this ``max_states``) accepts exactly the valid strings."""
    if name not in EXACT_FORMATS:
        return False
    return EXACT_SIZES.get(name, 0) <= max_states


_SAME_AS: dict[str, str] = {}


#: the code a format DFA is a function of (its disk cache key includes their digest)
_BUILD_SOURCES = ("constrain.jsonschema.formats", "constrain.jsonschema.idn", "constrain.jsonschema._idn_table",
                  "constrain.grammar.dfa", "constrain.grammar.regex")


@lru_cache(maxsize=None)
def _build(name: str, exact: bool) -> ByteDFA:
    # fixed automata, some slow to build (email ~0.6 s, idn-email ~6 s): kept on disk
    from constrain.grammar.dfa import cached_dfa, source_digest

    return cached_dfa("format", f"{name}-{'exact' if exact else 'sound'}-{source_digest(*_BUILD_SOURCES)}",
                      lambda: _BUILDERS[name](exact))


def format_dfa(name: str, *, pointer: str = "",
               max_states: int = DEFAULT_MAX_STATES) -> ByteDFA | None:
    """Minimal DFA of the strings valid for format ``name``, or ``None`` for unknown formats.

    The DFA reads the UTF-8 bytes of the decoded string value.  It is sound for every format
    (never accepts an invalid string) and exact for the formats that :func:`format_is_exact`
    reports (see the module docstring for what each subset excludes).  Formats with a larger
    exact variant (:data:`EXACT_SIZES`) get it when it fits in ``max_states``.

    Raises :class:`~constrain.errors.LimitExceeded` if even the smaller variant has more than
    ``max_states`` states.
    """
    if not isinstance(name, str):
        raise ConfigError(f"format name must be a string, got {type(name).__name__}")
    if name not in _BUILDERS:
        return None
    exact = name in EXACT_SIZES and EXACT_SIZES[name] <= max_states
    dfa = _build(_SAME_AS.get(name, name), exact)
    if dfa.n_states > max_states:
        raise LimitExceeded(f"format {name!r} (at {pointer or '/'}) needs a "
                            f"{dfa.n_states}-state DFA", limit="max_dfa_states", value=max_states)
    return dfa
