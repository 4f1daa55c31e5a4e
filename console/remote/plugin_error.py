"""The one error a plugin install raises, apart so the unpacker and the installer share it without a circle."""

from __future__ import annotations


class PluginError(Exception):
    """`code` is one of DESIGN's apply errors: plugin_install_failed, artifact_hash_mismatch,
    bundled_version_mismatch."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
