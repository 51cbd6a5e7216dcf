"""The one place the desktop app imports Qt from, so a binding change or a shim touches one file."""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractTableModel,
    QByteArray,
    QElapsedTimer,
    QEvent,
    QEventLoop,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QProcess,
    QProcessEnvironment,
    QRegularExpression,
    QSettings,
    QSize,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QBrush,
    QCloseEvent,
    QColor,
    QDesktopServices,
    QFileOpenEvent,
    QFont,
    QFontDatabase,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QShortcut,
    QStandardItemModel,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
)
from PySide6.QtGui import Qt as _GuiQt
from PySide6.QtNetwork import QLocalServer, QLocalSocket
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QStatusBar,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QSystemTrayIcon,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextEdit,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "QAbstractItemView",
    "QAbstractTableModel",
    "QAction",
    "QApplication",
    "QBrush",
    "QButtonGroup",
    "QByteArray",
    "QCheckBox",
    "QCloseEvent",
    "QColor",
    "QComboBox",
    "QDesktopServices",
    "QDialog",
    "QDialogButtonBox",
    "QDockWidget",
    "QDoubleSpinBox",
    "QElapsedTimer",
    "QEvent",
    "QEventLoop",
    "QFileDialog",
    "QFileOpenEvent",
    "QFont",
    "QFontDatabase",
    "QFormLayout",
    "QFrame",
    "QGroupBox",
    "QGuiApplication",
    "QHBoxLayout",
    "QHeaderView",
    "QIcon",
    "QImage",
    "QInputDialog",
    "QItemSelectionModel",
    "QKeySequence",
    "QLabel",
    "QLineEdit",
    "QListWidget",
    "QListWidgetItem",
    "QLocalServer",
    "QLocalSocket",
    "QMainWindow",
    "QMenu",
    "QMessageBox",
    "QModelIndex",
    "QMouseEvent",
    "QObject",
    "QPainter",
    "QPersistentModelIndex",
    "QPixmap",
    "QPlainTextEdit",
    "QPoint",
    "QProcess",
    "QProcessEnvironment",
    "QPushButton",
    "QRadioButton",
    "QRegularExpression",
    "QResizeEvent",
    "QScrollArea",
    "QSettings",
    "QShortcut",
    "QSize",
    "QSizePolicy",
    "QSortFilterProxyModel",
    "QSpinBox",
    "QSplitter",
    "QStandardItemModel",
    "QStatusBar",
    "QStyle",
    "QStyleOptionProgressBar",
    "QStyleOptionViewItem",
    "QStyledItemDelegate",
    "QSystemTrayIcon",
    "QTabWidget",
    "QTableView",
    "QTableWidget",
    "QTableWidgetItem",
    "QTextCharFormat",
    "QTextCursor",
    "QTextDocument",
    "QTextEdit",
    "QTimer",
    "QToolBar",
    "QToolButton",
    "QUrl",
    "QVBoxLayout",
    "QWidget",
    "Qt",
    "Signal",
    "Slot",
    "as_html",
    "plain_label",
    "session_bus_has",
]


# Qt takes a label's, a tooltip's or a message box's text for HTML when its first line looks like some ("<b>", an
# "<img src=...>", "&lt;"): a job named `<img src="/dev/zero">` made every wrangler's app load that "image" and
# abort (an audit). Text from the farm goes through one of these two.


def plain_label(label: QLabel) -> QLabel:
    """`label` showing its text as written, never as HTML."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def as_html(text: str) -> str:
    """`text` as the HTML that shows it as written (escaped, its line breaks kept): for a tooltip, a message box's
    or an input dialog's label, where no plain-text switch is offered."""
    return str(_GuiQt.convertFromPlainText(text, Qt.WhiteSpaceMode.WhiteSpaceNormal))  # spaces stay breakable


def session_bus_has(service: str) -> bool:
    """Whether a program holds the D-Bus name `service` on the session bus: False without a bus (Windows, macOS, a
    bare X session) or without Qt's D-Bus module."""
    try:  # imported here: only a Linux notification asks, and QtDBus may be missing from a trimmed Qt
        from PySide6.QtDBus import QDBusConnection
    except ImportError:
        return False
    bus = QDBusConnection.sessionBus()
    names = bus.interface() if bus.isConnected() else None
    if names is None:
        return False
    reply = names.isServiceRegistered(service)
    return reply.isValid() and bool(reply.value())
