"""Desktop-only widgets (Models dialog, Install dependencies); Qt only through qgis.PyQt."""
