"""The Textual console. Renders snapshots only; never reaches into engine internals."""
