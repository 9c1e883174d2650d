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
python "$(dirname "$0")/pathology_table.py" "$results/cpu" "$results/cpu-std" > "$figures/halfcheetah-runs.md"
pen=("$results/cpu")
[ -f "$results/cpu-published/suite.json" ] && pen+=("$results/cpu-published")
python "$(dirname "$0")/pathology_table.py" "${pen[@]}" --task pen-binary > "$figures/pen-binary-runs.md"
# The same algorithms' final return and AUC under exact-variance and std, and the difference.
python "$(dirname "$0")/conventions_table.py" "$results/cpu" "$results/cpu-std" > "$figures/halfcheetah-conventions.md"
wrote="$figures/halfcheetah-runs.md, $figures/pen-binary-runs.md, $figures/halfcheetah-conventions.md"
if [ -f "$results/cpu-door/suite.json" ]; then
  door=("$results/cpu-door")
  [ -f "$results/cpu-door-published/suite.json" ] && door+=("$results/cpu-door-published")
  python "$(dirname "$0")/pathology_table.py" "${door[@]}" --task door-binary > "$figures/door-binary-runs.md"
  wrote="$wrote, $figures/door-binary-runs.md"
fi
# The claims under published beside exact-variance and std.
if [ -f "$results/cpu-published/suite.json" ]; then
  {
    python "$here/priors_table.py" "$results/cpu-published" "$results/cpu" "$results/cpu-std" --task halfcheetah
    python "$here/priors_table.py" "$results/cpu-published" "$results/cpu" --task halfcheetah --versus awac
    python "$here/priors_table.py" "$results/cpu-published" "$results/cpu" --task halfcheetah --versus sac
    python "$here/pathology_table.py" "$results/cpu-published"
    python "$here/competence_table.py" "$results/cpu-published" "$results/cpu" "$results/cpu-std" --task halfcheetah
  } > "$figures/published-halfcheetah.md"
  {
    python "$here/priors_table.py" "$results/cpu-published" "$results/cpu" --task pen-binary --versus bc
    python "$here/priors_table.py" "$results/cpu-published" "$results/cpu" --task pen-binary --versus awac
    python "$here/conventions_table.py" "$results/cpu" "$results/cpu-published" --task pen-binary
    python "$here/pathology_table.py" "$results/cpu-published" --task pen-binary
    python "$here/competence_table.py" "$results/cpu-published" "$results/cpu" --task pen-binary
  } > "$figures/published-pen-binary.md"
  wrote="$wrote, $figures/published-halfcheetah.md, $figures/published-pen-binary.md"
fi
if [ -d "$results/remedies/runs" ] && [ -d "$results/remedies-pen/runs" ]; then
  # The remedies screen (docs/remedies.md; its tables in docs/RESULTS.md "Beyond the paper").
  python "$(dirname "$0")/conventions.py" --out "$results/remedies" "$results/remedies-pen" \
    --report "$(dirname "$figures")/remedies" > /dev/null
  wrote="$wrote, $(dirname "$figures")/remedies/remedies.{md,json,png} and remedies-grid.png"
fi
# Beyond the paper: the chosen remedy the full length, against today's nppac, BC and AWAC (results/cpu).
if [ -f "$results/cpu-remedies/suite.json" ]; then
  {
    python "$here/competence_table.py" "$results/cpu-remedies" "$results/cpu" --task halfcheetah \
      --columns nppac nppac-alpha-init ppac-nn ppac-nn-alpha-init awac \
      --figure "$figures/remedies-halfcheetah-competence.png"
    python "$here/priors_table.py" "$results/cpu-remedies" "$results/cpu" --task halfcheetah --versus awac
  } > "$figures/remedies-halfcheetah.md"
  {
    python "$here/competence_table.py" "$results/cpu-remedies" "$results/cpu" --task pen-binary \
      --columns nppac nppac-alpha-init bc awac --figure "$figures/remedies-pen-binary-competence.png"
    python "$here/priors_table.py" "$results/cpu-remedies" "$results/cpu" --task pen-binary --versus bc
    python "$here/priors_table.py" "$results/cpu-remedies" "$results/cpu" --task pen-binary --versus awac
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
