#!/usr/bin/env bash
# Renders a trade-off report page (report.html from `kd report` / `kd bench variants
# --report-dir`) the way a person sees it — Debian's headless Chromium, a 1500-px-wide
# window — to a PNG, then checks the picture with benchmarks/check_report_png.py (plots
# drawn, Pareto front visible, the teacher's table row there).
# Usage: benchmarks/render_report.sh REPORT_DIR [OUT.png] [check flags: --teacher --off-front]
# Exit: 0 rendered and checked; 1 the check failed; 2 usage; 77 chromium is not installed
# (install it with: apt-get install -y chromium).
set -euo pipefail
dir=${1:?usage: benchmarks/render_report.sh REPORT_DIR [OUT.png] [--teacher] [--off-front]}
png=${2:-$dir/report.png}
shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$dir/report.html" ] || { echo "render_report: $dir/report.html: no such file" >&2; exit 2; }
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "render_report: chromium is not installed (apt-get install -y chromium)" >&2; exit 77; }
html=$(cd "$dir" && pwd)/report.html
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: containers run as root, where Chromium's sandbox refuses to start.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
    --window-size=1500,1500 --screenshot="$png" "file://$html" >/dev/null 2>&1
[ -s "$png" ] || { echo "render_report: chromium wrote no $png" >&2; exit 1; }
python3 "$here/check_report_png.py" "$png" "$@"
