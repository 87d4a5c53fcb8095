"""Writes tests/mtsam/data/processing_reference.safetensors: an image and low-resolution masks
put through the reference's pre- and post-processing with PyTorch (what the mtsam tests compare
with). Run with the project's Python: .venv/bin/python3 tests/mtsam/make_processing_reference.py
"""

import pathlib

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ENCODER = 64  # the encoder's square input side
torch.manual_seed(0)

# An image larger than the encoder, so that the antialiased down-scaling matters.
image = torch.rand(1, 3, 75, 100)
scale = ENCODER / max(image.shape[-2:])
size = (int(image.shape[-2] * scale + 0.5), int(image.shape[-1] * scale + 0.5))
resized = F.interpolate(image, size, mode="bilinear", align_corners=False, antialias=True)
padded = F.pad(resized, (0, ENCODER - size[1], 0, ENCODER - size[0]))

# Masks at a quarter of the encoder side, back to the image: up to the encoder side, crop to the
# resized image, then to the original size.
masks = torch.randn(1, 2, ENCODER // 4, ENCODER // 4)
up = F.interpolate(masks, (ENCODER, ENCODER), mode="bilinear", align_corners=False)
mapped = F.interpolate(up[..., : size[0], : size[1]], tuple(image.shape[-2:]), mode="bilinear",
                       align_corners=False)

out = pathlib.Path(__file__).parent / "data" / "processing_reference.safetensors"
save_file({"image": image.contiguous(), "prepared": padded.contiguous(),
           "masks": masks.contiguous(), "mapped": mapped.contiguous()}, str(out))
print(out, size)
