"""Trims the ICU data library Qt brings (libicudata.so.NN, 31 MB) to what Tablao's Qt uses (about 5 MB).

QtCore links ICU for a few things only (its imports say which: `readelf --dyn-syms libQt6Core.so.6`): collation
(QCollator, locale-aware sorting), locale-aware case mapping, named text codecs Qt has no built-in code for, and
time-zone names. The rest of ICU's data (break-iterator dictionaries, transliteration, number spell-out, unit,
currency, language and region names, StringPrep profiles, character names, spoof checks, most legacy code pages)
is never loaded by Qt. The app is in English only, so locale data stays for the root locale and English; a user
whose system locale is another one gets root collation (CLDR's default order) and English time-zone names.

The data is one ICU "common data" package (format CmnD: a table of named items) behind the library's single
symbol `icudtNN_dat`. `trim` reads it from the library, keeps the items `kept` accepts and writes a new library of
that one symbol with binutils (`as`, `ld`; binutils also strips the bundle). tests/unit/packaging/test_icu_data.py
checks that Qt works with the trimmed data; tests/e2e/test_bundle.py that the bundle still starts.
"""

from __future__ import annotations

import re
import struct
import subprocess
import tempfile
from pathlib import Path

_MAGIC = b"\xda\x27"
_ALIGN = 16  # ICU aligns every item of a package on 16 bytes

# Locale data kept in every tree (`coll/`, `zone/`, ...; the tree's `pool.res` holds the keys of all its bundles).
_LOCALE = r"(root|en|en_[A-Za-z0-9_]+|pool)\.res"
# Trees Qt reads: collation, time-zone, region and language names (generic time-zone names use the last two).
_TREES = r"(coll|zone|lang|region|curr|unit)"
# Legacy code pages kept: the WHATWG encoding standard's (what HTML, e-mail and clipboards still carry) beyond what
# Qt decodes itself (UTF-*, Latin-1): ISO-8859-*, windows-125x, KOI8, IBM866, Mac Roman and Cyrillic, and the
# Chinese, Japanese, Korean and Thai ones. EBCDIC and other IBM host code pages are left out.
_CODE_PAGES = (
    *("ibm-866_P100-1995", "ibm-878_P100-1996", "ibm-1168_P100-2002"),  # IBM866, KOI8-R, KOI8-U
    # ISO-8859-2, -3, -4, -5, -6, -7, -8, -9, -13, -15, -10, -14
    *("ibm-912_P100-1995", "ibm-913_P100-2000", "ibm-914_P100-1995", "ibm-915_P100-1995", "ibm-1089_P100-1995"),
    *("ibm-9005_X110-2007", "ibm-5012_P100-1999", "ibm-920_P100-1995", "ibm-921_P100-1995", "ibm-923_P100-1998"),
    *("iso-8859_10-1998", "iso-8859_14-1998"),
    # windows-1250 to 1258, windows-874, macintosh, x-mac-cyrillic
    *(f"ibm-{n}_P100-199{7 if n == 5348 else 8}" for n in range(5346, 5355)),
    *("windows-874-2000", "macos-0_2-10.2", "macos-7_3-10.2"),
    # GBK, gb18030, Big5, Shift_JIS, EUC-JP (and JIS X 0212 for ISO-2022-JP), EUC-KR, and the tables they extend
    *("windows-936-2000", "ibm-1386_P100-2001", "gb18030", "windows-950-2000", "ibm-1373_P100-2002"),
    *("ibm-943_P15A-2003", "euc-jp-2007", "jisx-212", "windows-949-2000", "ibm-1363_P11B-1998"),
    "ibm-970_P110_P110-2006_U2",
)
# Whole-package data that is not per locale: normalisation, properties, the converter alias table, calendar,
# time-zone and plural rules, likely subtags. Left out: unames.icu (character names), confusables.cfu (spoof
# checks), *.spp (StringPrep): Qt calls none of the ICU functions that read them. Names of two or three letters
# are languages (locale data), kept above for English only.
_SHARED = r"(?!unames\.icu$|confusables\.cfu$|[a-z]{2,3}(_[A-Za-z0-9_]+)?\.res$)[A-Za-z0-9_]+\.(icu|nrm|res)"
_KEPT = re.compile(
    rf"^({_LOCALE}|{_TREES}/{_LOCALE}|coll/[^/]+\.(icu|nrm)|({'|'.join(map(re.escape, _CODE_PAGES))})\.cnv|{_SHARED})$"
)


def kept(name: str) -> bool:
    """Whether an item of the package (its name without the `icudtNNl/` prefix) stays."""
    return _KEPT.match(name) is not None


def read_package(data: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The package's header and its items (name with prefix, bytes with their padding), from a CmnD package."""
    header_size = struct.unpack_from("<H", data, 0)[0]
    if data[2:4] != _MAGIC or data[12:16] != b"CmnD" or data[8] != 0:
        raise ValueError("not a little-endian ICU common data package")
    count = struct.unpack_from("<I", data, header_size)[0]
    entries = [struct.unpack_from("<II", data, header_size + 4 + 8 * i) for i in range(count)]
    ends = [offset for _, offset in entries[1:]] + [len(data) - header_size]
    items = []
    for (name_offset, data_offset), end in zip(entries, ends, strict=True):
        start = header_size + name_offset
        name = data[start : data.index(b"\0", start)].decode("ascii")
        items.append((name, data[header_size + data_offset : header_size + end]))
    return data[:header_size], items


def write_package(header: bytes, items: list[tuple[str, bytes]]) -> bytes:
    """A CmnD package of these items (ICU finds an item by a binary search over the sorted names)."""
    items = sorted(items, key=lambda item: item[0].encode("ascii"))
    table_size = 4 + 8 * len(items)
    names = b""
    name_offsets = []
    for name, _ in items:
        name_offsets.append(table_size + len(names))
        names += name.encode("ascii") + b"\0"
    offset = table_size + len(names)
    offset += -(len(header) + offset) % _ALIGN
    body = bytearray(b"\0" * (offset - table_size - len(names)))
    table = struct.pack("<I", len(items))
    for (_, item), name_offset in zip(items, name_offsets, strict=True):
        table += struct.pack("<II", name_offset, offset)
        padded = item + b"\0" * (-len(item) % _ALIGN)
        body += padded
        offset += len(padded)
    return header + table + names + bytes(body)


def _rodata(path: Path, symbol: str) -> bytes:
    """The bytes of the one data symbol of the library (its value and size, from readelf)."""
    symbols = subprocess.run(
        ["readelf", "--dyn-syms", "-W", str(path)], capture_output=True, text=True, check=True
    ).stdout
    sections = subprocess.run(["readelf", "-S", "-W", str(path)], capture_output=True, text=True, check=True).stdout
    for line in symbols.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[7] == symbol and fields[6] != "UND":
            address, size, index = int(fields[1], 16), int(fields[2], 0), fields[6]
            break
    else:
        raise ValueError(f"{path} has no symbol {symbol}")
    for line in sections.splitlines():
        match = re.match(r"\s*\[\s*(\d+)\]\s+\S+\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if match and match.group(1) == index:
            offset = int(match.group(3), 16) + address - int(match.group(2), 16)
            return path.read_bytes()[offset : offset + size]
    raise ValueError(f"{path}: no section {index}")


def trim(library: Path) -> tuple[int, int]:
    """Replace libicudata.so.NN by one holding only the kept items; returns (size before, size after)."""
    number = re.fullmatch(r"libicudata\.so\.(\d+)", library.name)
    if number is None:
        raise ValueError(f"{library} is not named libicudata.so.NN")
    symbol = f"icudt{number.group(1)}_dat"
    before = library.stat().st_size
    header, items = read_package(_rodata(library, symbol))
    prefix = f"icudt{number.group(1)}l/"
    package = write_package(header, [(n, d) for n, d in items if kept(n.removeprefix(prefix))])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "data.dat").write_bytes(package)
        (folder / "data.s").write_text(
            "\t.section .rodata\n"
            f"\t.globl {symbol}\n"
            f"\t.type {symbol}, @object\n"
            "\t.balign 16\n"
            f"{symbol}:\n"
            '\t.incbin "data.dat"\n'
            f"\t.size {symbol}, . - {symbol}\n"
            '\t.section .note.GNU-stack,"",@progbits\n'
        )
        subprocess.run(["as", "-o", "data.o", "data.s"], cwd=folder, check=True)
        built = folder / library.name
        subprocess.run(
            ["ld", "-shared", "-z", "noexecstack", "--hash-style=both", "-soname", library.name, "-o", built.name,
             "data.o"],
            cwd=folder,
            check=True,
        )  # fmt: skip
        library.unlink()  # a fresh file: the bundle's other names for it are symbolic links
        library.write_bytes(built.read_bytes())
        library.chmod(0o755)
    return before, library.stat().st_size
