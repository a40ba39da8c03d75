"""Importers: other formats into netcanvas projects."""

from .onnx_import import import_onnx, import_onnx_file

__all__ = ["import_onnx", "import_onnx_file"]
