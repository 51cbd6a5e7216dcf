"""The managers tab: every Manager of the farm with its state and workers."""

from __future__ import annotations

from app.models.farm_models import ManagersModel
from app.models.sync import FarmSync
from app.qt import Qt, QVBoxLayout, QWidget
from app.ui.tables import make_view


class ManagersPanel(QWidget):
    def __init__(self, sync: FarmSync, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ManagersModel(sync.store, self)
        self.view, self.proxy = make_view(self.model, self)
        self.view.setObjectName("managers-table")
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
