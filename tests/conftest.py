"""Puts tests/ on sys.path so every tier can `import testdata` (no QGIS import here)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
