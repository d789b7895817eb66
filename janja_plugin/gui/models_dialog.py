"""The Models dialog: the catalogue with what is installed, a server address, Download with progress and Cancel."""

from qgis.core import QgsApplication
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core.inference import model_store
from ..processing import profile
from .tasks import ModelDownloadTask

COLUMNS = ["Model", "Version", "Elements", "Cell size", "Size", "Held-out score", "Licence", "Installed"]


def score_text(entry):
    auc = entry.scores.get("protocol_auc_held_out_blocks")
    if auc is not None:
        sd = entry.scores.get("protocol_auc_sd")
        return f"AUC {auc:.3f}" + (f" ± {sd:.3f}" if sd is not None else "") + " (spatial blocks)"
    return "unsupervised (no labels)" if entry.kind != "supervised_classifier" else "—"


class ModelsDialog(QDialog):
    def __init__(self, parent=None, on_installed=None):
        super().__init__(parent)
        self.setWindowTitle("Janja models")
        self.setObjectName("JanjaModelsDialog")
        self.on_installed = on_installed
        self.task = None
        self.catalogue = model_store.load_catalogue()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Models are stored in {profile.profile_models_dir()} (kept across plugin upgrades) "
                                "and checked against the catalogue's sha256 before use."))
        self.table = QTableWidget(len(self.catalogue.entries), len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(QLabel("Server address:"))
        self.server = QLineEdit(profile.base_url_setting())
        self.server.setPlaceholderText("folder URL holding the model files (none is hosted publicly yet)")
        row.addWidget(self.server)
        layout.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        layout.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        buttons = QHBoxLayout()
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.setEnabled(False)
        close = QPushButton("Close")
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch()
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.download_button.clicked.connect(self.start_download)
        self.cancel_button.clicked.connect(self.cancel_download)
        close.clicked.connect(self.close)
        self.resize(900, 320)
        self.fill()

    def fill(self):
        installed = {m.name: m for m in profile.installed_models()}
        recommended = self.catalogue.recommended()
        for r, e in enumerate(self.catalogue.entries):
            here = installed.get(e.name)
            cells = [e.name + (" (recommended)" if recommended is e else ""), e.version, ", ".join(e.elements),
                     f"{e.cell_size:g} m", f"{e.size / 1e6:.1f} MB", score_text(e), e.licence,
                     f"yes ({here.where})" if here else "no"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(e.description if c == 0 else text)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        if self.table.currentRow() < 0 and recommended is not None:
            self.table.selectRow(self.catalogue.entries.index(recommended))

    def start_download(self):
        row = self.table.currentRow()
        if row < 0:
            self.status.setText("Select a model in the list first.")
            return None
        entry = self.catalogue.entries[row]
        profile.set_base_url_setting(self.server.text().strip())
        url = model_store.resolve_base_url(self.catalogue, setting=self.server.text().strip())
        self.task = ModelDownloadTask(entry, url, profile.profile_models_dir(), on_done=self.download_done)
        self.task.progressChanged.connect(lambda value: self.progress.setValue(int(value)))
        self.download_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"Downloading {entry.label()} from {url} …")
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel_download(self):
        if self.task is not None:
            self.task.cancel()

    def download_done(self, task):
        self.download_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if task.error:
            self.progress.setValue(0)
            self.status.setText(task.error)
        else:
            self.progress.setValue(100)
            self.status.setText(f"Installed and verified: {task.path}. janja:prospectivity and janja:workflow "
                                "now list it.")
            if self.on_installed is not None:
                self.on_installed(task.path)
        self.fill()
        self.task = None
