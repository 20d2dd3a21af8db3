#!/usr/bin/env python3
"""Export the lip-sync U-Net to ONNX (dynamic batch) and check ONNX Runtime against PyTorch.

    .venv/bin/python scripts/export_onnx.py --checkpoint out/train/last.pt --out out/unet160.onnx
    .venv/bin/python scripts/export_onnx.py --random --size 320 --out out/unet320_random.onnx

The file is written only when max |ONNX Runtime - PyTorch| <= 1e-4 on a random batch.
Then set animation.lipsync_unet.onnx_path to it.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    from src.core.errors import UserError

    ap = argparse.ArgumentParser(description="Export the lip-sync U-Net to ONNX with a parity check.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a checkpoint from scripts/train_lipsync.py (last.pt)")
    src.add_argument("--random", action="store_true", help="random weights (speed tests)")
    ap.add_argument("--size", type=int, choices=(160, 320), default=160, help="with --random: 160 or 320")
    ap.add_argument("--out", required=True, help="output .onnx path")
    args = ap.parse_args(argv)
    try:
        from src.training.lipsync_unet.export import export_unet

        res = export_unet(args.out, None if args.random else args.checkpoint, size=args.size)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
