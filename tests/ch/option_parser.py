#!/usr/bin/env python3
"""cloud-hypervisor's option grammar (its `option_parser` crate, v48 and later).

Used by the cloud-hypervisor stand-in (tests/ch/cloud-hypervisor) to read
`--platform` and `--api-socket` exactly as the real binary would, and by
tests/inject_ch_test.py to show what a launcher's command line turns into.

The rules, as the crate implements them (see ../../../shared/reference/injection.md):

- `split_commas(s)`: `s` is trimmed, then split on `,` outside `[...]` and
  outside `"..."`; a `"` toggles quoting and is KEPT in the piece; inside
  quotes nothing else is special; an unmatched `]`, or brackets or quotes
  left open at the end, are a syntax error.
- `OptionParser.parse(s)`: every piece is split at its first `=`; the name
  must be registered; the value is trimmed.  `get()` removes quotes
  (`dequote`), but list conversions do NOT.
- `StringList` (`oem_strings`): the value is trimmed, then every leading
  and trailing `[` / `]` is stripped (greedily, `trim_matches`), and the
  rest goes through `split_commas` again: quotes stay in the strings,
  `[a, b]` keeps the space of ` b`, `[a,,b]` gives an empty string, and a
  string ending in `]` loses it (or unbalances the list).

Rust's `str::trim` removes Unicode White_Space, which differs slightly
from Python's `str.strip` (e.g. U+001C..U+001F are not White_Space), so
`rust_trim` below uses Rust's set.

Run `python3 tests/ch/option_parser.py` for the self-tests.
"""
import unittest

# Unicode White_Space, which Rust's str::trim removes.
RUST_WHITESPACE = frozenset(
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000")


class OptionParserError(ValueError):
    """Any error the crate reports (unknown option, invalid syntax, ...)."""


def rust_trim(s):
    """Rust's str::trim: strips Unicode White_Space at both ends."""
    start, end = 0, len(s)
    while start < end and s[start] in RUST_WHITESPACE:
        start += 1
    while end > start and s[end - 1] in RUST_WHITESPACE:
        end -= 1
    return s[start:end]


def split_commas(s):
    """Splits on ',' outside brackets and quotes; quotes are kept."""
    out = []
    depth = 0
    in_quotes = False
    current = []
    for c in rust_trim(s):
        if c == '"':
            in_quotes = not in_quotes
        elif in_quotes:
            pass
        elif c == "[":
            depth += 1
        elif c == "]":
            if depth < 1:
                raise OptionParserError("Invalid syntax: %s" % s)
            depth -= 1
        elif c == "," and depth == 0:
            out.append("".join(current))
            current = []
            continue
        current.append(c)
    out.append("".join(current))
    if in_quotes or depth != 0:
        raise OptionParserError("Invalid syntax: %s" % s)
    return out


def dequote(s):
    """The crate's dequote: drops quotes, `""` outside quotes gives one `"`."""
    prev = ""
    in_quotes = False
    out = []
    for c in s:
        if c == '"':
            if prev == '"' and not in_quotes:
                out.append('"')
            in_quotes = not in_quotes
        else:
            out.append(c)
        prev = c
    if in_quotes:
        raise OptionParserError("unbalanced quotes: %s" % s)
    return "".join(out)


def string_list(value):
    """StringList::from_str (used for oem_strings): no dequoting."""
    inner = rust_trim(value).strip("[]")
    return split_commas(inner)


class OptionParser:
    """OptionParser: register names with add(), then parse()."""

    def __init__(self, *names, valueless=()):
        self.values = {}
        self.requires_value = {}
        for n in names:
            self.add(n)
        for n in valueless:
            self.requires_value[n] = False

    def add(self, name):
        assert not any(c in name for c in '"[]=,'), "forbidden character in option name"
        self.requires_value[name] = True
        return self

    def parse(self, text, ignore_unknown=False):
        """Sets the options named in text, in order; raises at the first error
        (options before it stay set, as in the crate)."""
        if not rust_trim(text):
            return self
        for option in split_commas(text):
            name, eq, value = option.partition("=")
            if name not in self.requires_value:
                if ignore_unknown:
                    continue
                raise OptionParserError("Unknown option: %s" % name)
            if self.requires_value[name]:
                if not eq:
                    raise OptionParserError("Invalid syntax: %s" % option)
                self.values[name] = rust_trim(value)
            else:
                self.values[name] = ""
        return self

    def is_set(self, name):
        return name in self.values

    def raw(self, name):
        """The stored value (trimmed, quotes kept), or None."""
        v = self.values.get(name)
        return v if v else None

    def get(self, name):
        """OptionParser::get: None when unset or empty, else dequoted."""
        v = self.raw(name)
        return None if v is None else dequote(v)

    def string_list(self, name):
        """convert::<StringList>(name): None when unset or empty."""
        v = self.raw(name)
        return None if v is None else string_list(v)


# The keys `--platform` takes (v53; tdx and sev_snp are build features,
# accepted here so that a launcher passing them is not mistaken for a bug).
PLATFORM_KEYS = (
    "num_pci_segments", "iommu_segments", "iommu_address_width", "serial_number",
    "uuid", "oem_strings", "tdx", "sev_snp", "system_manufacturer",
    "system_product_name", "system_version", "system_serial_number", "system_uuid",
    "system_sku", "system_sku_number", "system_family", "chassis_asset_tag",
    "iommufd", "iommufd_fd", "vfio_p2p_dma")


def parse_platform(value):
    """What cloud-hypervisor makes of `--platform VALUE`: a dict of the
    options given (oem_strings as a list, others as get() returns them).
    Raises OptionParserError where cloud-hypervisor refuses to start."""
    p = OptionParser(*PLATFORM_KEYS)
    p.parse(value)
    out = {}
    for k in PLATFORM_KEYS:
        if not p.is_set(k):
            continue
        out[k] = p.string_list(k) if k == "oem_strings" else p.get(k)
    return out


def parse_platform_arg(arg):
    """Like parse_platform, for the argument as bytes that a launcher passes
    to execve: the kernel cuts it at the first NUL, and clap refuses an
    argument that is not UTF-8."""
    if isinstance(arg, str):
        arg = arg.encode("utf-8", "surrogateescape")
    arg = arg.split(b"\0", 1)[0]
    try:
        text = arg.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OptionParserError("invalid UTF-8 was detected in one or more arguments") from e
    return parse_platform(text)


def parse_api_socket(value):
    """`--api-socket VALUE` as cloud-hypervisor reads it: ('path', P) or
    ('fd', N).  Parse errors are ignored (`unwrap_or_default`), keeping the
    options set before the error; with neither option the whole value is
    the path."""
    p = OptionParser("path", "fd")
    try:
        p.parse(value)
    except OptionParserError:
        pass
    if p.get("fd") is not None:
        return ("fd", int(p.get("fd")))
    if p.get("path") is not None:
        return ("path", p.get("path"))
    return ("path", value)


class SelfTest(unittest.TestCase):
    """The documented cases (injection.md), and a few from the crate's own tests."""

    def oem(self, value):
        return parse_platform(value)["oem_strings"]

    def test_split_on_commas_outside_brackets(self):
        self.assertEqual(parse_platform("serial_number=abc,oem_strings=[a,b],uuid=u"),
                         {"serial_number": "abc", "oem_strings": ["a", "b"], "uuid": "u"})
        self.assertEqual(split_commas("a=1,b=[1,2],c=[[1,2],[3,4]]"),
                         ["a=1", "b=[1,2]", "c=[[1,2],[3,4]]"])

    def test_quotes_protect_commas_and_are_kept_in_lists(self):
        self.assertEqual(self.oem('oem_strings=["a,b"]'), ['"a,b"'])
        self.assertEqual(self.oem('oem_strings=[x,"a,b",y]'), ["x", '"a,b"', "y"])
        # ... but get() of a plain value removes them.
        self.assertEqual(parse_platform('serial_number="a,b"')["serial_number"], "a,b")

    def test_a_quote_toggles(self):
        # Inside quotes brackets are not special.
        self.assertEqual(self.oem('oem_strings=[a,"]",b]'), ["a", '"]"', "b"])
        with self.assertRaises(OptionParserError):
            parse_platform('oem_strings=[a"b]')

    def test_equals_inside_value(self):
        self.assertEqual(self.oem("oem_strings=[k=v=w,io.systemd.credential:A=b=c]"),
                         ["k=v=w", "io.systemd.credential:A=b=c"])
        self.assertEqual(parse_platform("serial_number=a=b")["serial_number"], "a=b")

    def test_leading_space_kept(self):
        self.assertEqual(self.oem("oem_strings=[a, b]"), ["a", " b"])
        # Spaces at the ends of the whole list are trimmed.
        self.assertEqual(self.oem("oem_strings=[ a,b ]"), ["a", "b"])

    def test_empty_string_from_double_comma(self):
        self.assertEqual(self.oem("oem_strings=[a,,b]"), ["a", "", "b"])

    def test_outer_brackets_stripped_greedily(self):
        self.assertEqual(self.oem("oem_strings=[[x]]"), ["x"])
        self.assertEqual(self.oem("oem_strings=[a,x]"), ["a", "x"])
        # A value ending in ']' breaks the list.
        with self.assertRaises(OptionParserError):
            parse_platform("oem_strings=[a,[x]]")
        with self.assertRaises(OptionParserError):
            parse_platform("oem_strings=[a,x]]")

    def test_unknown_option_and_bad_syntax(self):
        with self.assertRaises(OptionParserError):
            parse_platform("oem_strings=[a],bogus=1")
        with self.assertRaises(OptionParserError):
            parse_platform("oem_strings")
        with self.assertRaises(OptionParserError):
            parse_platform("oem_strings=[a")

    def test_dequote(self):
        self.assertEqual(dequote('a\u03b2"a"""'), 'a\u03b2a"')

    def test_argv_bytes(self):
        # execve cuts at the NUL: the rest is lost, here with the closing bracket.
        self.assertEqual(parse_platform_arg(b"oem_strings=[a]\0,b]")["oem_strings"], ["a"])
        with self.assertRaises(OptionParserError):
            parse_platform_arg(b"oem_strings=[a\0b]")
        with self.assertRaises(OptionParserError):
            parse_platform_arg(b"oem_strings=[\xff]")

    def test_api_socket(self):
        self.assertEqual(parse_api_socket("path=/run/x/api.sock"), ("path", "/run/x/api.sock"))
        self.assertEqual(parse_api_socket("/run/x/api.sock"), ("path", "/run/x/api.sock"))
        self.assertEqual(parse_api_socket("fd=3"), ("fd", 3))
        # A comma in the path cuts it silently.
        self.assertEqual(parse_api_socket("path=/run/a,b/api.sock"), ("path", "/run/a"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
