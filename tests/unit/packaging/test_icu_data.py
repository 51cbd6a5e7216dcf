"""Qt's ICU data trimmed for the bundle (packaging/icu_data.py): what stays, and Qt works with what stays.

The Qt check loads the venv's PySide6 with the trimmed library preloaded (the dynamic loader then takes it for
QtCore's libicudata.so.NN) and compares what Qt's ICU-backed calls give with and without it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.packaging import load_packaging


@pytest.fixture(scope="module")
def icu_data() -> ModuleType:
    return load_packaging("icu_data")


@pytest.mark.parametrize(
    "name",
    [
        "root.res", "en.res", "en_GB.res", "pool.res", "supplementalData.res", "zoneinfo64.res", "metaZones.res",
        "likelySubtags.res", "plurals.res", "cnvalias.icu", "nfkc.nrm", "uts46.nrm", "coll/root.res",
        "coll/ucadata.icu", "coll/en_US_POSIX.res", "coll/pool.res", "zone/en.res", "zone/root.res",
        "region/en.res", "ibm-5348_P100-1997.cnv", "ibm-943_P15A-2003.cnv", "windows-936-2000.cnv",
        "ibm-1386_P100-2001.cnv",
    ],
)  # fmt: skip
def test_kept(icu_data: ModuleType, name: str) -> None:
    assert icu_data.kept(name)


@pytest.mark.parametrize(
    "name",
    [
        "de.res", "zh_Hant.res", "fil.res", "coll/de.res", "coll/zh.res", "zone/fr.res", "brkitr/cjdict.dict",
        "brkitr/root.res", "translit/root.res", "rbnf/en.res", "unames.icu", "confusables.cfu", "rfc3491.spp",
        "ibm-37_P100-1995.cnv", "ibm-1390_P110-2003.cnv",
    ],
)  # fmt: skip
def test_dropped(icu_data: ModuleType, name: str) -> None:
    assert not icu_data.kept(name)


def _venv_icu() -> Path:
    pyside = pytest.importorskip("PySide6")
    found = sorted((Path(pyside.__file__).parent / "Qt" / "lib").glob("libicudata.so.*"))
    if sys.platform != "linux" or not found:
        pytest.skip("PySide6 brings its own ICU on Linux only")
    for tool in ("as", "ld", "readelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"binutils' {tool} is missing (scripts/system-deps.sh installs it)")
    return found[0]


def test_a_package_reads_back_as_written(icu_data: ModuleType, tmp_path: Path) -> None:
    library = _venv_icu()
    number = library.name.rsplit(".", 1)[1]
    header, items = icu_data.read_package(icu_data._rodata(library, f"icudt{number}_dat"))
    assert len(items) > 1000
    some = items[::7]
    assert icu_data.read_package(icu_data.write_package(header, list(reversed(some)))) == (header, some)


PROBE = """
import json
from PySide6.QtCore import QCollator, QLocale, QStringConverter, QStringDecoder, QTimeZone
en = QLocale("en_US")
plain, numeric = QCollator(en), QCollator(en)
numeric.setNumericMode(True)
words = ["b", "A", "a", "B", "é", "e", "Z", "ä", "10", "9"]
names = QTimeZone.NameType
print(json.dumps({
    "sorted": sorted(words, key=plain.sortKey),
    "numeric": sorted(words, key=numeric.sortKey),
    "zones": [
        QTimeZone(b"Europe/Berlin").displayName(QTimeZone.TimeType.StandardTime, names.LongName, en),
        QTimeZone(b"Europe/Berlin").displayName(QTimeZone.TimeType.StandardTime, names.ShortName, en),
        QTimeZone(b"America/New_York").displayName(QTimeZone.TimeType.DaylightTime, names.LongName, en),
    ],
    "upper": [QLocale("tr_TR").toUpper("i"), en.toUpper("straße")],
    "codecs": {name: QStringDecoder(name).isValid() for name in [
        "Shift_JIS", "windows-1252", "KOI8-R", "GBK", "gb18030", "Big5", "EUC-KR", "EUC-JP", "ISO-2022-JP",
        "ISO-8859-15", "macintosh", "IBM037"]},
    "icu": [line.split()[-1] for line in open("/proc/self/maps") if "libicudata" in line][:1],
}))
"""


def _probe(preload: Path | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = str(preload)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_qt_works_with_the_trimmed_data(icu_data: ModuleType, tmp_path: Path) -> None:
    original = _venv_icu()
    trimmed = tmp_path / original.name
    shutil.copyfile(original, trimmed)
    before, after = icu_data.trim(trimmed)
    assert before > 25_000_000 and after < 6_000_000, (before, after)
    full, small = _probe(None), _probe(trimmed)
    assert small["icu"] == [str(trimmed)] and full["icu"] == [str(original)]
    # EBCDIC (IBM037) is one of the code pages left out; every other answer is the same
    assert full["codecs"].pop("IBM037") and not small["codecs"].pop("IBM037")
    assert small == {**full, "icu": small["icu"]}
    assert small["zones"] == ["Central European Standard Time", "CET", "Eastern Daylight Time"]
    assert small["sorted"][:4] == ["10", "9", "a", "A"] and small["numeric"][:2] == ["9", "10"]
