"""What leaves a trained model: a traced TorchScript / ONNX detector (model) and the backbone weights
for another detectron2 model (backbone)."""
