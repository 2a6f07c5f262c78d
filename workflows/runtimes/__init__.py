"""Model runtimes: one module per node family, all on ONNX Runtime, all pure Python (no Django).

Each runtime is a class built from artifact metadata (the dicts `build.py` writes and the registry
stores) with `run(batch: list[dict]) -> list[dict]`: one output per item, in order; a bad item
gets `{"error", "error_code"}` instead of raising. Sessions are cached per process by sha256
(`sessions.py`). Only `build.py` may import torch/transformers/optimum, and only inside functions:
nothing here imports them at module level, so a worker never loads torch.
"""
