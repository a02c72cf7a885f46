"""Import ONNX recognisers into trainable PyTorch registry backbones (weights from the initializers)."""

from training.onnx_import.importer import OnnxImportError, import_onnx, load_onnx_weights

__all__ = ["OnnxImportError", "import_onnx", "load_onnx_weights"]
