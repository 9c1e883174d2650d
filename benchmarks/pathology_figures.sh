#!/usr/bin/env bash
# Fit a GP and an MLE-NN reference policy on one demonstration set and draw the
# pathology figures (variance map, Proposition-1 gradient probe) with their JSON.
#
#   benchmarks/pathology_figures.sh DEMOS TASK OUT_DIR [--allow-pickle]
#   e.g. benchmarks/pathology_figures.sh src/nppac/assets/demos/halfcheetah.npz halfcheetah docs/figures/halfcheetah
#        benchmarks/pathology_figures.sh path/to/pen2_sparse.npy pen-binary docs/figures/pen --allow-pickle
# PRIOR_FLAGS adds flags to both `prior fit` calls (e.g. PRIOR_FLAGS="--iters 200 --threads 1").
set -euo pipefail
demos=$1 task=$2 out=$3
shift 3
nppac=${NPPAC:-nppac}
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$nppac prior fit --data "$demos" --task "$task" --kind gp --out "$work/gp" --json ${PRIOR_FLAGS:-} "$@" > "$out/prior_gp_metrics.json"
$nppac prior fit --data "$demos" --task "$task" --kind nn --out "$work/nn" --json ${PRIOR_FLAGS:-} "$@" > "$out/prior_nn_metrics.json"
$nppac diagnose variance --data "$demos" --priors "$work/gp" "$work/nn" --out "$out/variance.png" "$@" > /dev/null
$nppac diagnose gradients --data "$demos" --prior "$work/gp" --prior "$work/nn" --out "$out/gradients.png" "$@" > /dev/null
echo "wrote $out/{variance,gradients}.{png,json} and prior_{gp,nn}_metrics.json"
