#!/usr/bin/env bash
# One call on the lent GPU machine (see docs/training.md). Expects next to it: faceunlock-train.xz
# (release build with `--features cuda`), lfw-pack/ (`faceunlock-train pack`) and mnv2.safetensors
# (../shared/models/mobilenet_v2_imagenet.safetensors). Writes logs, the runs' small files and the
# exported ONNX files to $OUT.
#
#   session.sh MINUTES
#
# Trains the joint model within MINUTES and, beside it on the same GPU, the ID-only ablation on the
# same data and seed, one epoch at a time (resuming), never past the joint run's epoch count: both
# end with the same number of epochs. ARC=0.3 trains both with ArcFace's angular margin instead of
# a softmax on ReLU outputs (docs/ablation.md, session 14).
set -u
cd "$(dirname "$0")"
MINUTES=${1:?minutes for the joint run}
PEOPLE=${PEOPLE:-300}
VIEWS=${VIEWS:-60}
STEPS=${STEPS:-100}
xz -d -k -f faceunlock-train.xz && chmod +x faceunlock-train
T=./faceunlock-train
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; echo "$(nproc) cores"
$T synth --people "$PEOPLE" --views "$VIEWS" --seed 1 --out /tmp/synth 2>&1 | tail -1 | tee "$OUT/synth.log"
common=(--synth /tmp/synth --packed lfw-pack --imagenet mnv2.safetensors --batch 64 --seed 1 --steps-per-epoch "$STEPS" ${ARC:+--arc-margin "$ARC"})
epochs_done() { grep -o '"epochs_done": [0-9]*' "$1/state.json" 2>/dev/null | grep -o '[0-9]*$' || echo 0; }

$T train --out /tmp/joint "${common[@]}" --epochs 125 --max-minutes "$MINUTES" > "$OUT/joint.log" 2>&1 &
joint=$!
done_id=0
while :; do
  running=0; kill -0 "$joint" 2>/dev/null && running=1
  done_joint=$(epochs_done /tmp/joint)
  if [ "$done_id" -lt "$done_joint" ]; then
    $T train --out /tmp/idonly --id-only "${common[@]}" --epochs $((done_id + 1)) >> "$OUT/idonly.log" 2>&1
    [ "$(epochs_done /tmp/idonly)" -gt "$done_id" ] || { echo "ID-only training failed, see idonly.log"; break; }
    done_id=$(epochs_done /tmp/idonly)
  elif [ "$running" = 0 ]; then
    break
  else
    sleep 2
  fi
done
wait "$joint"
echo "joint: $(epochs_done /tmp/joint) epochs; ID-only: $done_id epochs"
tail -1 "$OUT/joint.log"; tail -1 "$OUT/idonly.log"
for run in joint idonly; do
  $T export --run /tmp/$run --out "$OUT/$run.onnx" 2>&1 | tail -1
  cp /tmp/$run/metrics.csv "$OUT/$run-metrics.csv"
done
tar czf "$OUT/runs.tgz" -C /tmp joint/config.json joint/state.json joint/train.jsonl joint/val.jsonl joint/test.jsonl idonly/config.json idonly/state.json
