"""Exporters: ONNX and standalone PyTorch source."""
