"""From a trained checkpoint to a deployable model pack: ONNX export, parity, INT8, TensorRT, pack writing."""
