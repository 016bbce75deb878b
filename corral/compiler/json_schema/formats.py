r"""The JSON Schema ``format`` automata: one regex per format name, matched against the decoded value.

:data:`FORMATS` maps a ``format`` name to a regex in corral's dialect matched against the whole
decoded value (:func:`format_pattern` returns ``None`` for names without one: ``idn-hostname``
needs IDNA tables). Exact unless listed here:

* ``date`` (RFC 3339 full-date): exact, including 30/31-day months and Feb 29 in leap years only
  (divisible by 4, and not by 100 unless by 400; year ``0000`` is a leap year; Python's
  ``datetime`` rejects year 0 but RFC 3339's ``4DIGIT`` allows it).
* ``time`` / ``date-time`` (RFC 3339 full-time, ``T``/``Z`` in either case): exact except leap
  seconds. A leap second is valid only when the time is 23:59:60 UTC, i.e. local time and offset
  must agree (``15:59:60-08:00``); doing that exactly ties the hour and minute to the offset
  (1,440 combinations: the literal automaton of ``time`` grows from 196 to 66,100 states). So
  ``:60`` is accepted only as ``23:59:60`` with offset ``Z``, ``+00:00`` or ``-00:00`` — a
  subset: every accepted value is valid. ``date-time`` does not tie leap seconds to the dates
  that had one.
* ``duration``: the ISO 8601 subset of RFC 3339 Appendix A, exact (weeks alone, ``P1Y2D`` and
  fractions rejected, as the test suite expects).
* ``email``: RFC 5321 ``Mailbox``: Dot-string or Quoted-string local part, then a domain of LDH
  labels of at most 63 characters or an address literal ``[IPv4]`` / ``[IPv6:...]``. Not
  checked: the 64-octet local-part and 255-octet domain limits, general address literals
  (``[tag:...]``).
* ``idn-email`` (RFC 6531): as ``email`` with any non-ASCII code point allowed in atoms, quoted
  strings and domain labels (U-labels are not checked against IDNA2008).
* ``hostname`` (RFC 1123): LDH labels of 1 to 63 characters separated by dots, no trailing dot. Not
  checked: the 253-character total (crossed with the label counter it needs 178,000 states; pass
  ``max_length=253`` and a larger ``max_states`` to
  :func:`~corral.compiler.json_schema.json_strings.json_string_dfa` for it) and the validity of
  ``xn--`` A-labels (Punycode and IDNA2008 rules are not a practical regular language).
* ``ipv4``: dotted quad, 0-255, no leading zeros; exact. ``ipv6``: RFC 4291 / RFC 3986
  ``IPv6address``, all ``::`` forms and the embedded IPv4 form; exact (no zone id, no brackets).
* ``uri``, ``uri-reference`` (RFC 3986) and ``iri``, ``iri-reference`` (RFC 3987, ``iprivate``
  in queries only): the ABNF, exact; ``uri-template`` (RFC 6570 level 4): exact.
* ``regex``: a subset of the regular expressions that are valid both as ECMA-262 patterns (the
  specification's dialect) and for Python's ``re`` (what ``jsonschema`` checks with), in the
  syntax the two share, so that every accepted value compiles in both. Left out (rejected though
  valid): groups nested more than :data:`REGEX_FORMAT_DEPTH` (4) deep (the full language nests
  without bound, so it is context-free, not regular); named groups (ECMA ``(?<n>...)`` and
  Python ``(?P<n>...)`` differ), backreferences, lookbehind, inline flags; escapes other than
  ``\d \D \w \W \s \S \b \B \n \r \t \f \v \0``, ``\xHH``, ``\uHHHH`` and escaped syntax
  characters; bare ``{``, ``}`` and ``]``; quantifiers ``{n,m}`` with more than 4 digits, or
  with ``n`` and ``m`` of the same length above 1 digit unless ``n`` is 0 (``{2,5}``, ``{0,30}``
  and ``{8,64}`` are in, ``{10,20}`` is not); in character classes, ranges other than from a
  digit, ``a`` or ``A`` to an ASCII letter or digit (``[a-z]``, ``[0-9A-F]`` are in, ``[b-d]``
  is not), ``-`` other than first or last, and unescaped ``[``, ``&``, ``~``, ``|``. Each of these
  limits keeps the automaton small (every nesting level, range start and bound digit is a set of
  states); together they keep it under 4,000 states.
* ``uuid`` (RFC 4122 textual form, any version/variant), ``json-pointer`` (RFC 6901) and
  ``relative-json-pointer`` (draft-bhutton-relative-json-pointer-00, with the ``+``/``-`` index
  manipulation of draft 2020-12): exact.
"""

from __future__ import annotations

from corral.compiler.json_schema.ecma_regex import _py_set
from corral.compiler.utf8 import MAX_CODE_POINT, from_intervals

__all__ = ["FORMATS", "REGEX_FORMAT_DEPTH", "format_pattern"]

# ---------------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------------

def _build_formats() -> dict[str, str]:
    """The :data:`FORMATS` table; each constant says which RFC production it is."""
    hexdig = "[0-9A-Fa-f]"
    # RFC 3339 section 5.6, full-date with the day limits of Appendix C.
    leap_year = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
    month_day = (
        "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
        "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
        "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    )
    full_date = f"(?:[0-9]{{4}}-{month_day}|{leap_year}-02-29)"
    hour = "(?:[01][0-9]|2[0-3])"
    minute = "[0-5][0-9]"
    secfrac = r"(?:\.[0-9]+)?"
    offset = f"(?:[Zz]|[+-]{hour}:{minute})"
    # Leap seconds only at 23:59:60 UTC written with a zero offset (see the module docstring).
    full_time = f"(?:{hour}:{minute}:[0-5][0-9]{secfrac}{offset}|23:59:60{secfrac}(?:[Zz]|[+-]00:00))"
    # RFC 3339 Appendix A (ISO 8601 durations).
    n = "[0-9]+"
    dur_time = f"T(?:{n}H(?:{n}M(?:{n}S)?)?|{n}M(?:{n}S)?|{n}S)"
    dur_date = f"(?:{n}D|{n}M(?:{n}D)?|{n}Y(?:{n}M(?:{n}D)?)?)(?:{dur_time})?"
    duration = f"P(?:{dur_date}|{dur_time}|{n}W)"
    # RFC 3986 section 3.2.2.
    dec_octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{dec_octet}(?:\.{dec_octet}){{3}}"
    h16 = f"{hexdig}{{1,4}}"
    ls32 = f"(?:{h16}:{h16}|{ipv4})"
    ipv6 = "(?:" + "|".join([
        f"(?:{h16}:){{6}}{ls32}",
        f"::(?:{h16}:){{5}}{ls32}",
        f"(?:{h16})?::(?:{h16}:){{4}}{ls32}",
        f"(?:(?:{h16}:){{0,1}}{h16})?::(?:{h16}:){{3}}{ls32}",
        f"(?:(?:{h16}:){{0,2}}{h16})?::(?:{h16}:){{2}}{ls32}",
        f"(?:(?:{h16}:){{0,3}}{h16})?::{h16}:{ls32}",
        f"(?:(?:{h16}:){{0,4}}{h16})?::{ls32}",
        f"(?:(?:{h16}:){{0,5}}{h16})?::{h16}",
        f"(?:(?:{h16}:){{0,6}}{h16})?::",
    ]) + ")"
    # RFC 1123 host names: LDH labels of 1..63 characters.
    label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    hostname = rf"{label}(?:\.{label})*"
    # RFC 5321 section 4.1.2 Mailbox; RFC 6531 adds UTF8-non-ascii to atext, qtext and labels.
    atext = r"A-Za-z0-9!#$%&'*+\-/=?^_`{|}~"
    address_literal = rf"\[(?:{ipv4}|[Ii][Pp][Vv]6:{ipv6})\]"

    def mailbox(non_ascii: bool) -> str:
        extra = [(0x80, MAX_CODE_POINT)] if non_ascii else []
        atom = _py_set(from_intervals(_ranges_of(atext) + extra))
        qtext = _py_set(from_intervals([(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)] + extra))
        letdig = _py_set(from_intervals(_ranges_of("A-Za-z0-9") + extra))
        ldh = _py_set(from_intervals(_ranges_of("A-Za-z0-9-") + extra))
        lab = f"{letdig}(?:{ldh}{{0,61}}{letdig})?"
        local = rf'(?:{atom}+(?:\.{atom}+)*|"(?:{qtext}|\\[ -~])*")'
        return rf"{local}@(?:{lab}(?:\.{lab})*|{address_literal})"

    uri, uri_reference = _uri_patterns(ipv4, ipv6, iri=False)
    iri, iri_reference = _uri_patterns(ipv4, ipv6, iri=True)
    # RFC 6901 and draft-bhutton-relative-json-pointer-00.
    json_pointer = "(?:/(?:[^~/]|~[01])*)*"
    relative_json_pointer = f"(?:0|[1-9][0-9]*)(?:[+-][1-9][0-9]*)?(?:#|{json_pointer})"
    return {
        "date": full_date,
        "time": full_time,
        "date-time": f"{full_date}[Tt]{full_time}",
        "duration": duration,
        "email": mailbox(non_ascii=False),
        "idn-email": mailbox(non_ascii=True),
        "hostname": hostname,
        "ipv4": ipv4,
        "ipv6": ipv6,
        "uri": uri,
        "uri-reference": uri_reference,
        "iri": iri,
        "iri-reference": iri_reference,
        "uri-template": _uri_template_pattern(),
        "uuid": f"{hexdig}{{8}}-{hexdig}{{4}}-{hexdig}{{4}}-{hexdig}{{4}}-{hexdig}{{12}}",
        "json-pointer": json_pointer,
        "relative-json-pointer": relative_json_pointer,
        "regex": _regex_format(),
    }


def _ranges_of(spec: str) -> list[tuple[int, int]]:
    """Code point ranges of a class body written with ``a-z`` ranges and ``\\`` escapes."""
    chars: list[tuple[str, bool]] = []  # (character, written as a plain '-')
    i = 0
    while i < len(spec):
        escaped = spec[i] == "\\"
        chars.append((spec[i + 1] if escaped else spec[i], spec[i] == "-"))
        i += 2 if escaped else 1
    out: list[tuple[int, int]] = []
    k = 0
    while k < len(chars):
        if k + 2 < len(chars) and chars[k + 1][1]:
            out.append((ord(chars[k][0]), ord(chars[k + 2][0])))
            k += 3
        else:
            out.append((ord(chars[k][0]), ord(chars[k][0])))
            k += 1
    return out


# RFC 3987 ucschar and iprivate.
_UCSCHAR = [(0xA0, 0xD7FF), (0xF900, 0xFDCF), (0xFDF0, 0xFFEF)] + [
    (p << 16, (p << 16) | 0xFFFD) for p in range(1, 14)
] + [(0xE1000, 0xEFFFD)]
_IPRIVATE = [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]


def _uri_patterns(ipv4: str, ipv6: str, *, iri: bool) -> tuple[str, str]:
    """RFC 3986 ``URI`` and ``URI-reference`` (RFC 3987 ``IRI`` forms when ``iri``).

    Factored so that each character class occurs few times (the regex compiler pays per
    occurrence for the large IRI classes)::

        URI           = scheme ":" ("//" authority path-abempty / ["/"] [segment-nz *("/" segment)]) tail
        URI-reference = ( [scheme ":"] "//" authority path-abempty / [scheme ":"] path-absolute
                        / scheme ":" path-rootless / path-noscheme / scheme ":" / "" ) tail

    where ``["/"] [segment-nz *("/" segment)]`` is path-absolute / path-rootless / path-empty and
    ``tail = ["?" query] ["#" fragment]``.
    """
    unreserved = _ranges_of(r"A-Za-z0-9\-._~") + (_UCSCHAR if iri else [])
    sub_delims = _ranges_of("!$&'()*+,;=")
    pct = "%[0-9A-Fa-f]{2}"

    def cls(extra: str, private: bool = False) -> str:
        ranges = unreserved + sub_delims + _ranges_of(extra)
        return _py_set(from_intervals(ranges + (_IPRIVATE if private else [])))

    pchar = f"(?:{cls(':@')}|{pct})"
    scheme = r"[A-Za-z][A-Za-z0-9+\-.]*"
    userinfo = f"(?:{cls(':')}|{pct})*"
    ipvfuture = rf"[Vv][0-9A-Fa-f]+\.{cls(':')}+"
    host = rf"(?:\[(?:{ipv6}|{ipvfuture})\]|{ipv4}|(?:{cls('')}|{pct})*)"
    authority = f"(?:{userinfo}@)?{host}(?::[0-9]*)?"
    segments = f"(?:/{pchar}*)*"
    net_path = f"//{authority}{segments}"
    nz_path = f"{pchar}+{segments}"
    noscheme_path = f"(?:{cls('@')}|{pct})+{segments}"
    query = f"(?:{cls(':@/?', private=iri)}|{pct})*"
    fragment = f"(?:{cls(':@/?')}|{pct})*"
    tail = rf"(?:\?{query})?(?:#{fragment})?"
    absolute = f"{scheme}:(?:{net_path}|/?(?:{nz_path})?){tail}"
    reference = (
        f"(?:(?:{scheme}:)?{net_path}|(?:{scheme}:)?/(?:{nz_path})?|{scheme}:{nz_path}|{noscheme_path}|{scheme}:)?{tail}"
    )
    return absolute, reference


def _uri_template_pattern() -> str:
    """RFC 6570 section 2 ``URI-Template`` (level 4)."""
    literal_ranges = [(0x21, 0x21), (0x23, 0x24), (0x26, 0x26), (0x28, 0x3B), (0x3D, 0x3D), (0x3F, 0x5B),
                      (0x5D, 0x5D), (0x5F, 0x5F), (0x61, 0x7A), (0x7E, 0x7E)] + _UCSCHAR + _IPRIVATE
    literals = f"(?:{_py_set(from_intervals(literal_ranges))}|%[0-9A-Fa-f]{{2}})"
    varchar = "(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})"
    varname = rf"{varchar}(?:\.?{varchar})*"
    varspec = rf"{varname}(?::[1-9][0-9]{{0,3}}|\*)?"
    expression = rf"\{{[+#./;?&=,!@|]?{varspec}(?:,{varspec})*\}}"
    return f"(?:{literals}|{expression})*"


REGEX_FORMAT_DEPTH = 4
"""``format: regex``: groups nest at most this deep (deeper nesting makes the language context-free)."""


def _alnum_at_least(c: str) -> str:
    """A class of the ASCII letters and digits from ``c`` on (in code point order)."""
    spans = []
    for lo, hi in (("0", "9"), ("A", "Z"), ("a", "z")):
        if c <= hi:
            spans.append(f"{max(c, lo)}-{hi}")
    return "[" + "".join(spans) + "]"


def _regex_format(depth: int = REGEX_FORMAT_DEPTH) -> str:
    r"""``format: regex``: regular expressions valid both as ECMA-262 patterns and for Python's
    ``re`` (which ``jsonschema``'s format check uses), in the syntax the two share.

    A subset, so that every accepted value compiles in both (the module docstring lists what is
    left out). Groups nest at most ``depth`` deep, which keeps the language regular: each level is
    the level below inside parentheses.
    """
    hexdig = "[0-9A-Fa-f]"
    literal = r"[^\\^$.*+?()\[\]{}|]"
    syntax_escape = r"[\\^$.*+?()\[\]{}|/]"
    escape = rf"\\(?:[dDwWsSnrtfv0]|{syntax_escape}|x{hexdig}{{2}}|u{hexdig}{{4}})"
    # character classes: items are literals, escapes and ranges x-y (x <= y) from a digit, "a" or
    # "A" to an ASCII letter or digit; '-' only first or last; '[', '&', '~' and '|' only escaped
    # (Python warns on some pairs). Each range start is a state of the automaton: few starts.
    ranges = "|".join(f"{c}-{_alnum_at_least(c)}" for c in "0123456789Aa")
    class_literal = r"[^\\\]\[\-&~|]"
    class_escape = rf"\\(?:[dDwWsSnrtfvb0]|{syntax_escape}|[\-&~]|x{hexdig}{{2}}|u{hexdig}{{4}})"
    item = f"(?:{ranges}|{class_literal}|{class_escape})"
    char_class = rf"\[\^?(?:-{item}*|{item}+-?)\]"
    # quantifiers *, +, ?, {n}, {n,}, {n,m} with n <= m (at most 4 digits: n = 0, n and m of one
    # digit each, or m longer than n), each optionally lazy
    bounds = ["[0-9]{1,4},?", "0,[0-9]{1,4}", "[1-9],[1-9][0-9]{1,3}", "[1-9][0-9],[1-9][0-9]{2,3}",
              "[1-9][0-9]{2},[1-9][0-9]{3}"]
    bounds += [f"{a},[{a}-9]" for a in range(1, 10)]
    quantifier = rf"(?:(?:[*+?]|\{{(?:{'|'.join(bounds)})\}})\??)"
    anchor = r"(?:\^|\$|\\[bB])"
    simple = rf"(?:{literal}|\.|{escape}|{char_class})"
    level = rf"(?:{simple}{quantifier}?|{anchor}|\|)*"
    for _ in range(depth):  # groups, lookaheads too (both compile them quantified)
        group = rf"\((?:\?[:=!])?{level}\)"
        level = rf"(?:(?:{simple}|{group}){quantifier}?|{anchor}|\|)*"
    return level


FORMATS: dict[str, str] = _build_formats()
"""``format`` name -> regex (corral's dialect, full match on the decoded value); see the module
docstring for what each one checks and every approximation."""


def format_pattern(name: str) -> str | None:
    """The value regex for the JSON Schema ``format`` ``name``, or ``None`` if corral has none.

    Parameters
    ----------
    name:
        A format name such as ``"date-time"``.

    Returns
    -------
    str or None
        A pattern for :func:`~corral.compiler.json_schema.json_strings.json_string_dfa` with
        ``ecma=False`` (full-match semantics); ``None`` for formats corral does not support
        (``idn-hostname``, unknown names). The caller decides whether that is an error.

    Examples
    --------
    >>> import re
    >>> bool(re.fullmatch(format_pattern("date"), "2024-02-29"))
    True
    >>> format_pattern("idn-hostname") is None
    True
    """
    return FORMATS.get(name)

