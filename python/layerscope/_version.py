"""The package version: package.json's, as the wheel was built with it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("layerscope")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
