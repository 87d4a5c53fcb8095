"""Reads a tora adapter folder with Python's safetensors and json only, as a Python tool would,
and prints one line per tensor: name, shape, sum of its values (float64); then the methods."""

import json
import sys

import numpy as np
from safetensors.numpy import load_file

folder = sys.argv[1]
with open(f"{folder}/adapter_config.json", encoding="utf-8") as handle:
    config = json.load(handle)
tensors = load_file(f"{folder}/adapters.safetensors")
for name in sorted(tensors):
    value = tensors[name]
    shape = "x".join(str(d) for d in value.shape)
    print(f"tensor {name} {shape} {float(np.asarray(value, dtype=np.float64).sum()):.9g}")
for layer in config["layers"]:
    print(f"layer {layer['target']} {layer['config']['method']}")
