"""The last-rendered preview widget: the thumbnail, what it shows, and a click that opens the full-size frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from app.models.previews import PreviewSource
from app.qt import (
    QDesktopServices,
    QLabel,
    QMouseEvent,
    QPixmap,
    QResizeEvent,
    QSizePolicy,
    Qt,
    QUrl,
    QVBoxLayout,
    QWidget,
    as_html,
    plain_label,
)

MIN_SIZE = (160, 90)


class PreviewView(QWidget):
    def __init__(
        self,
        source: PreviewSource,
        parent: QWidget | None = None,
        empty_text: str = "Nothing rendered yet",
        opener: Callable[[QUrl], bool] = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.empty_text = empty_text
        self.opener = opener  # opens the full-size frame (the system's image viewer)
        self.image = QLabel(self)
        self.image.setObjectName("preview-image")
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(*MIN_SIZE)
        # the pixmap follows the label's size, never the other way round (no resize loop)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setStyleSheet("background: #303030; color: #b0b0b0;")
        self.caption = plain_label(QLabel(self))
        self.caption.setObjectName("preview-caption")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.caption)
        source.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        info, image = self.source.info, self.source.image
        if info is None or image is None:
            self.image.setPixmap(QPixmap())
            self.image.setText(self.empty_text if self.source.owner is not None else "")
            self.caption.setText("")
            self.image.setToolTip("")
            self.image.setCursor(Qt.CursorShape.ArrowCursor)
            return
        self._scale()
        size = f"{info.frame_width}×{info.frame_height}" if info.frame_width and info.frame_height else ""
        when = info.time.astimezone().strftime("%H:%M:%S")
        name = PurePath(info.frame_path).name
        self.caption.setText(" · ".join(p for p in (name, size, info.worker_name, when) if p))
        if self.source.frame_readable:
            self.image.setToolTip(as_html(f"{info.frame_path}\nClick to open the full-size frame"))
            self.image.setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            self.image.setToolTip(as_html(f"{info.frame_path}\n(not readable from this computer)"))
            self.image.setCursor(Qt.CursorShape.ArrowCursor)

    def _scale(self) -> None:
        image = self.source.image
        if image is None:
            return
        pixmap = QPixmap.fromImage(image)
        box = self.image.contentsRect().size()
        if pixmap.width() > box.width() or pixmap.height() > box.height():
            pixmap = pixmap.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(pixmap)

    def open_frame(self) -> bool:
        """Open the full-size frame in the system's viewer; False when this computer cannot read it."""
        info = self.source.info
        if info is None or not self.source.frame_readable:
            return False
        return bool(self.opener(QUrl.fromLocalFile(info.frame_path)))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.image.geometry().contains(event.position().toPoint()):
            self.open_frame()
        super().mouseReleaseEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self.source.image is not None:
            self._scale()
