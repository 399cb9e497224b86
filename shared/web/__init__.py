"""Pages the app serves to browsers (self-contained: no third-party origin, no data of their own)."""
