#!/usr/bin/env python3
"""Train the lip-sync U-Net on one person's talking video (3-5 minutes of speech is typical).

    .venv/bin/python scripts/train_lipsync.py --video TALKING.mp4 --out out/train --epochs 30
    .venv/bin/python scripts/train_lipsync.py --video TALKING.mp4 --out out/train --epochs 60   # resumes at 30

Writes out/train/last.pt (resumable; loaded with weights_only=True) and a preview PNG per epoch
(masked input | prediction | target). Export with scripts/export_onnx.py --checkpoint out/train/last.pt.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from src.core.errors import UserError

    ap = argparse.ArgumentParser(description="Train the lip-sync U-Net on a talking video.")
    ap.add_argument("--video", required=True, help="talking-head video with sound (one face visible)")
    ap.add_argument("--out", default="out/lipsync_train", help="folder for last.pt and previews")
    ap.add_argument("--size", type=int, choices=(160, 320), default=160)
    ap.add_argument("--epochs", type=int, default=30, help="total epochs (a resumed run continues up to this)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this many minutes (at an epoch end)")
    ap.add_argument("--no-resume", action="store_true", help="start from scratch even if last.pt exists")
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        import torch

        from src.core.config import load_config
        from src.training.lipsync_unet.training import train_lipsync

        torch.set_num_threads(max(1, torch.get_num_threads()))
        cfg = load_config(args.config, args.set)
        rep = train_lipsync(args.video, args.out, cfg, size=args.size, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
                            max_minutes=args.minutes, resume=not args.no_resume)  # fmt: skip
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted: the last finished epoch is in last.pt; run again to resume", file=sys.stderr)
        return 130
    print(json.dumps({"checkpoint": str(rep.checkpoint), "epochs": rep.epochs_done, "losses": rep.losses,
                      "frames": rep.frames, "seconds": round(rep.seconds, 1)}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
