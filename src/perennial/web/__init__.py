"""The dashboard: server-rendered pages, every asset served by the app itself."""
