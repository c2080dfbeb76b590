"""A tiny model directory for the Go MLX example (go/cmd/mlxweights), and the line the
example must print, computed with numpy and ml_dtypes.

    make_mlx_weights_fixture.py OUT_DIR

Writes OUT_DIR/model.safetensors (model.embed_tokens.weight in F32, model.norm.weight in F16,
an I32 tensor) and prints "BF16 [16 8] sum S": the embeddings rounded to bfloat16 (what
Load(BF16) makes), summed in float64.
"""

import os
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(17)
    emb = rng.standard_normal((16, 8)).astype(np.float32)
    save_file(
        {
            "model.embed_tokens.weight": emb,
            "model.norm.weight": np.ones(8, dtype=np.float16),
            "model.position_ids": np.arange(16, dtype=np.int32),
        },
        os.path.join(out, "model.safetensors"),
    )
    total = emb.astype(ml_dtypes.bfloat16).astype(np.float64).sum()
    print(f"BF16 [16 8] sum {total:.17g}")


if __name__ == "__main__":
    main(sys.argv[1])
