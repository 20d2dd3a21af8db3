"""The `audio.language: auto` check's scores on English and other speech (src/bench/english_fit.py).

    PYTHONPATH=$PWD python scripts/english_fit.py [--speech-60s]   # writes out/bench/english_fit.json
"""

import json
import sys
import time
from pathlib import Path

from src.bench.benchmark import BENCH_DIR, PROJECT_ROOT
from src.bench.english_fit import measure_english_fit
from src.core.config import AppConfig

if __name__ == "__main__":
    config = AppConfig()
    report = measure_english_fit(config, PROJECT_ROOT / "assets" / "speech_en.wav")
    if "--speech-60s" in sys.argv:  # the check's cost on 60 s of speech: the analysis with and without it
        import tempfile

        from src.audio.lipsync.track import analyse_file
        from src.audio.lipsync.vowels import load_templates
        from src.bench.audio import long_speech

        with tempfile.TemporaryDirectory() as tmp:
            wav, _ = long_speech(Path(tmp), 60.0)
            t = {}
            for check in (False, True, False, True):
                t0 = time.perf_counter()
                analyse_file(wav, config, load_templates(config.audio), recognise=True, check_english=check)
                t.setdefault(str(check), []).append(round(time.perf_counter() - t0, 2))
            report["speech_60s_analysis_s"] = {"without_check": t["False"], "with_check": t["True"]}
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    (BENCH_DIR / "english_fit.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "files"}, indent=2, ensure_ascii=False))
    sys.exit(0)
