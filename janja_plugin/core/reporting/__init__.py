"""HTML reports, SVG charts and map class breaks shared by every stage."""
