"""Thin anywidget classes: traits for a view's state and request handlers that call
``inspect`` / ``record`` / ``wire``. No inspection logic lives here."""
