"""A desktop notification's body holding farm text (a job's or task's name, an activity line), shown as written.

Qt sends a tray icon's message to a freedesktop notification server over D-Bus wherever a StatusNotifierItem
watcher runs (KDE, GNOME with its extension, most Linux panels); such servers read the body as markup (`<b>`,
`<i>`, `<a href>`, `<img src>`), so a job named `<img src="file:///...">` would load that file and one named
`<a href=...>` would put a link a click away. There the body is escaped. Windows, macOS and Qt's own balloon (X11
without a watcher) show the body as plain text, where an escape would read `&lt;`: there it is left as it is.
Everywhere, control characters and line breaks become spaces and bidirectional controls go: a name would
otherwise break the line or read backwards.
"""

from __future__ import annotations

import html
import sys
import unicodedata

from app.qt import session_bus_has

# the D-Bus name Qt looks for when it picks its D-Bus tray icon over its own balloon (qgenericunixthemes.cpp)
STATUS_NOTIFIER_WATCHER = "org.kde.StatusNotifierWatcher"

# embeddings, overrides and isolates; marks (U+200E, U+200F) only steer neutral characters and are kept
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKING = ("Cc", "Zl", "Zp", "Cs")  # controls, line and paragraph separators, bytes that were not UTF-8


def body_takes_markup(platform: str = sys.platform) -> bool:
    """Whether a tray icon's message body reaches a notification server that reads markup (see the module's
    docstring). Asked once per tray icon: Qt too decides its way once per process."""
    if platform in ("win32", "darwin"):
        return False
    return session_bus_has(STATUS_NOTIFIER_WATCHER)


def one_line(text: str) -> str:
    """`text` without control characters (made spaces) and bidirectional controls (dropped)."""
    if text.isprintable():  # nearly always: one pass in C
        return text
    return "".join("" if c in _BIDI_CONTROLS else " " if unicodedata.category(c) in _LINE_BREAKING else c for c in text)


def notification_body(text: str, *, markup: bool) -> str:
    """`text` to hand to QSystemTrayIcon.showMessage as the body, so it shows as written."""
    text = one_line(text)
    # quote=False: the spec's markup escapes only &, < and >; a quote stays a quote on every server
    return html.escape(text, quote=False) if markup else text
