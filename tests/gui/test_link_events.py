"""tablao://job/ID links handed to the running app as open-URL events (how macOS delivers them) reveal the job."""

from __future__ import annotations

from app.link_events import LinkOpener
from app.qt import QApplication, QFileOpenEvent, QUrl


def _open(app: QApplication, url: str) -> None:
    QApplication.sendEvent(app, QFileOpenEvent(QUrl(url)))


def test_links_before_the_window_wait_and_later_ones_go_straight_to_it(qapp: QApplication) -> None:
    links = LinkOpener()
    qapp.installEventFilter(links)
    try:
        _open(qapp, "tablao://job/12")
        _open(qapp, "file:///tmp/scene.blend")  # not a link: left to whoever else handles files
        _open(qapp, "tablao://job/not-a-number")
        assert links.pending == [12]
        revealed: list[int] = []
        links.set_reveal(revealed.append)
        assert revealed == [12] and links.pending == []
        _open(qapp, "TABLAO://job/34/")
        assert revealed == [12, 34]
    finally:
        qapp.removeEventFilter(links)
