#!/usr/bin/env bash
# Regenerate every table and figure of docs/RESULTS.md from the committed run files.
#
#   benchmarks/results_figures.sh [RESULTS_DIR] [FIGURES_DIR]   (defaults: results docs/figures/results)
#
# Needs nppac on PATH (the project's .venv activated).
#
# The suites themselves (hours on a 2-core CPU) are run with
#   nice nppac suite run benchmarks/suites/cpu.toml     --out ~/nppac-results/cpu     --workers 2
#   nice nppac suite run benchmarks/suites/cpu_std.toml --out ~/nppac-results/cpu-std --workers 2
#   nice nppac suite run benchmarks/suites/cpu_door.toml --out ~/nppac-results/cpu-door --workers 2
#   nice nppac suite run benchmarks/suites/cpu_door_published.toml --out ~/nppac-results/cpu-door-published --workers 2
#   nice nppac suite run benchmarks/suites/cpu_published.toml --out ~/nppac-results/cpu-published --workers 2
#   nice nppac suite run benchmarks/suites/cpu_remedies.toml --out ~/nppac-results/cpu-remedies --workers 2
# and copied into results/ with `nppac suite export ~/nppac-results/SUITE results/SUITE`.
set -euo pipefail
results=${1:-results} figures=${2:-docs/figures/results}
nppac=${NPPAC:-nppac}
here="$(dirname "$0")"
mkdir -p "$figures"
# Each suite's report, where `nppac suite report` puts it: RESULTS/SUITE/report.{md,json} and figures/TASK.png.
for suite in cpu cpu-std cpu-door cpu-door-published cpu-published cpu-remedies; do
  if [ -f "$results/$suite/suite.json" ]; then
    $nppac suite report "$results/$suite" > /dev/null
  fi
done
# The three prior variants on halfcheetah under exact-variance (cpu) and std (cpu-std), grouped by algo and σ0 scale.
runs=()
for suite in cpu cpu-std; do
  for algo in nppac ppac-nn nppac-nn-std; do
    for dir in "$results/$suite/halfcheetah/$algo"/seed-*; do
      [ -f "$dir/status.json" ] && grep -q '"finished"' "$dir/status.json" && runs+=("$dir")
    done
  done
done
if [ ${#runs[@]} -gt 0 ]; then
  $nppac compare "${runs[@]}" --group-by algo,prior_sigma --out "$figures/halfcheetah-conventions.png" > /dev/null
fi
# Run by run: the pathology on halfcheetah (exact-variance and std) and on pen-binary (std and published).
$nppac suite report --table pathology "$results/cpu" "$results/cpu-std" > "$figures/halfcheetah-runs.md"
pen=("$results/cpu")
[ -f "$results/cpu-published/suite.json" ] && pen+=("$results/cpu-published")
$nppac suite report --table pathology "${pen[@]}" --task pen-binary > "$figures/pen-binary-runs.md"
# The same algorithms' final return and AUC under exact-variance and std, and the difference.
$nppac suite report --table conventions "$results/cpu" "$results/cpu-std" > "$figures/halfcheetah-conventions.md"
wrote="$figures/halfcheetah-runs.md, $figures/pen-binary-runs.md, $figures/halfcheetah-conventions.md"
if [ -f "$results/cpu-door/suite.json" ]; then
  door=("$results/cpu-door")
  [ -f "$results/cpu-door-published/suite.json" ] && door+=("$results/cpu-door-published")
  $nppac suite report --table pathology "${door[@]}" --task door-binary > "$figures/door-binary-runs.md"
  wrote="$wrote, $figures/door-binary-runs.md"
fi
# The claims under published beside exact-variance and std.
if [ -f "$results/cpu-published/suite.json" ]; then
  {
    $nppac suite report --table priors "$results/cpu-published" "$results/cpu" "$results/cpu-std" --task halfcheetah
    $nppac suite report --table priors "$results/cpu-published" "$results/cpu" --task halfcheetah --versus awac
    $nppac suite report --table priors "$results/cpu-published" "$results/cpu" --task halfcheetah --versus sac
    $nppac suite report --table pathology "$results/cpu-published"
    $nppac suite report --table competence "$results/cpu-published" "$results/cpu" "$results/cpu-std" --task halfcheetah
  } > "$figures/published-halfcheetah.md"
  {
    $nppac suite report --table priors "$results/cpu-published" "$results/cpu" --task pen-binary --versus bc
    $nppac suite report --table priors "$results/cpu-published" "$results/cpu" --task pen-binary --versus awac
    $nppac suite report --table conventions "$results/cpu" "$results/cpu-published" --task pen-binary
    $nppac suite report --table pathology "$results/cpu-published" --task pen-binary
    $nppac suite report --table competence "$results/cpu-published" "$results/cpu" --task pen-binary
  } > "$figures/published-pen-binary.md"
  wrote="$wrote, $figures/published-halfcheetah.md, $figures/published-pen-binary.md"
fi
# The screens (docs/conventions.md, docs/remedies.md): each one's report and figures in FIGURES_DIR/../SCREEN.
screens=("conventions-love:conventions-love conventions-love-pen" "anchor:anchor" "remedies:remedies remedies-pen")
for entry in "${screens[@]}"; do
  name="${entry%%:*}" outs=()
  for folder in ${entry#*:}; do
    [ -f "$results/$folder/suite.json" ] && outs+=("$results/$folder")
  done
  if [ ${#outs[@]} -gt 0 ]; then
    $nppac suite report --table screen "${outs[@]}" --out "$(dirname "$figures")/$name" 2> /dev/null
    wrote="$wrote, $(dirname "$figures")/$name/$name.{md,json,png} and $name-grid.png"
  fi
done
# Beyond the paper: the chosen remedy the full length, against today's nppac, BC and AWAC (results/cpu).
if [ -f "$results/cpu-remedies/suite.json" ]; then
  {
    $nppac suite report --table competence "$results/cpu-remedies" "$results/cpu" --task halfcheetah \
      --columns nppac --columns nppac-alpha-init --columns ppac-nn --columns ppac-nn-alpha-init --columns awac \
      --figure "$figures/remedies-halfcheetah-competence.png"
    $nppac suite report --table priors "$results/cpu-remedies" "$results/cpu" --task halfcheetah --versus awac
  } > "$figures/remedies-halfcheetah.md"
  {
    $nppac suite report --table competence "$results/cpu-remedies" "$results/cpu" --task pen-binary \
      --columns nppac --columns nppac-alpha-init --columns bc --columns awac \
      --figure "$figures/remedies-pen-binary-competence.png"
    $nppac suite report --table priors "$results/cpu-remedies" "$results/cpu" --task pen-binary --versus bc
    $nppac suite report --table priors "$results/cpu-remedies" "$results/cpu" --task pen-binary --versus awac
  } > "$figures/remedies-pen-binary.md"
  wrote="$wrote, $figures/remedies-{halfcheetah,pen-binary}.md and -competence.png"
fi
# The long tier (docs/RESULTS.md "The long tier"): every seed, final, AUC, when a level is reached and kept, dips.
if [ -f "$results/cpu-long/suite.json" ]; then
  for task_level in pen-binary:0.9 halfcheetah:1.0; do
    task="${task_level%%:*}"
    if [ -d "$results/cpu-long/$task" ]; then
      python "$here/long_tier.py" "$results/cpu-long" --task "$task" --level "${task_level##*:}" \
        --figure "$figures/long-$task.png" > "$figures/long-$task.md"
      wrote="$wrote, $figures/long-$task.{md,png}"
    fi
  done
fi
# The verdict table at the top of docs/RESULTS.md: every claim from the reports and runs above.
python "$here/verdicts.py" "$results" > "$figures/verdicts.md"
python "$here/verdicts.py" "$results" --cells > "$figures/verdicts-cells.md"
wrote="$wrote, $figures/verdicts.md and verdicts-cells.md"
echo "wrote each suite's report.{md,json} and figures/ under $results, $figures/halfcheetah-conventions.{png,json}, $wrote"
