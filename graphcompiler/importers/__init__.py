"""Importers: other formats into netcanvas projects."""

from .nnc_import import NncImport, Unmapped, import_sdcproj
from .onnx_import import import_onnx, import_onnx_file

__all__ = ["NncImport", "Unmapped", "import_onnx", "import_onnx_file", "import_sdcproj"]
