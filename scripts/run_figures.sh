#!/usr/bin/env bash
# Every figure in the README, one after another (about 100 minutes; run on an otherwise idle machine).
# Each writes out/bench/<name>.json; the README table quotes them with these commands.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
B="$PY scripts/benchmark.py"
mkdir -p out/bench
run() { name=$1; shift; echo "== $name: $*"; "$@" > "out/bench/$name.log" 2>&1 || echo "   failed: see out/bench/$name.log"; }
run benchmark      $B --reenactment --json out/bench/benchmark.json --plot out/bench/benchmark.png
run audio_latency  $B --audio mic --audio-only --json out/bench/audio_latency.json
run render_speed   $B --audio speech --audio-only --json out/bench/render_speed.json
run vowels         $B --vowels --json out/bench/vowels.json
run lipsync        $B --lipsync --json out/bench/lipsync.json
run webrtc_1       $B --output webrtc --viewers 1 --duration 10 --json out/bench/webrtc_1.json
run webrtc_4       $B --output webrtc --viewers 4 --duration 10 --json out/bench/webrtc_4.json
run webrtc_60s     $B --output webrtc --viewers 1 --duration 60 --json out/bench/webrtc_60s.json
run vcam           $B --output vcam --duration 10 --json out/bench/vcam.json
run churn          $B --output churn --json out/bench/churn.json
run unet           $B --unet --json out/bench/unet.json
run autotune       $B --auto-tune --json out/bench/autotune.json
run drift_10min    $PY scripts/bench_audio.py --render-seconds 0 --latency-onsets 0 --drift-seconds 600 --json out/bench/drift_10min.json
run benchmark_10min $B --duration 600 --skip unpaced --skip warp --skip landmarks --json out/bench/benchmark_10min.json --plot out/bench/benchmark_10min.png
run train_figure   $PY scripts/bench_neural.py train-figure --minutes 20 --out out/bench/train_figure  # also out/bench/train_figure/figure.json
run train_figure_live $PY scripts/bench_neural.py train-figure --minutes 20 --lipsync-method live --out out/bench/train_figure_live
echo "done: out/bench/"
