#!/usr/bin/env bash
# Bundle a trained expert and its demonstration set into the package (AWAC protocol).
#
#   scripts/bundle_expert.sh TASK RUN_DIR      # RUN_DIR: an `nppac expert train --out` directory
#
# Copies RUN_DIR/expert.safetensors to src/nppac/assets/experts/TASK.safetensors, measures
# its deterministic return over 10 episodes (recorded in TASK.json as eval_10), collects
# 10 noisy (σ = 0.15) trajectories into src/nppac/assets/demos/TASK.npz and prints
# `nppac data inspect` of them.
set -euo pipefail
task=$1 run=$2
nppac=${NPPAC:-nppac}
root=$(cd "$(dirname "$0")/.." && pwd)
experts=$root/src/nppac/assets/experts demos=$root/src/nppac/assets/demos
mkdir -p "$experts" "$demos"
cp "$run/expert.safetensors" "$experts/$task.safetensors"
$nppac expert evaluate --task "$task" --expert bundled --episodes 10 --seed 100 --json --quiet > "$experts/$task.eval.json"
python3 - "$run/expert.json" "$experts/$task.eval.json" "$experts/$task.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
info.pop("run", None)
info["eval_10"] = {k: v for k, v in json.load(open(sys.argv[2])).items() if k.startswith("return_")}
json.dump(info, open(sys.argv[3], "w"), indent=2)
PY
rm "$experts/$task.eval.json"
$nppac demos collect --task "$task" --expert bundled --episodes 10 --action-noise 0.15 --seed 0 \
    --out "$demos/$task.npz" --quiet > /dev/null
$nppac data inspect "$demos/$task.npz" --task "$task" --json
