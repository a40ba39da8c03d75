"""Importers: other formats into netcanvas projects."""

from .nnc_import import NncImport, Unmapped, import_sdcproj

__all__ = ["NncImport", "Unmapped", "import_onnx", "import_onnx_file", "import_sdcproj"]


# The ONNX importer needs onnx and torch, the NNC importer neither: it is imported on first use.
def __getattr__(name: str):
    """import_onnx and import_onnx_file, from the ONNX importer imported on first use."""
    if name in ("import_onnx", "import_onnx_file"):
        from . import onnx_import

        return getattr(onnx_import, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
