#!/usr/bin/env bash
# Create one virtual environment per peer system under $PEERS (default /work/peers), outside the repo.
#   bash benchmarks/automl/setup_peers.sh                 # all peers
#   bash benchmarks/automl/setup_peers.sh flaml h2o       # some
# AutoGluon pulls torch: the constraints file pins torch==2.13.0 (the CPU wheel) so pip never fetches a CUDA build.
set -euo pipefail
PEERS=${PEERS:-/work/peers}
PY=${PYTHON:-python3.11}
HERE=$(cd "$(dirname "$0")" && pwd)
FIND_LINKS=${FIND_LINKS:-/opt/wheels}
mkdir -p "$PEERS"
declare -A PKGS=(
  [autogluon]="autogluon.tabular[all]==1.* psutil pyarrow"
  [flaml]="flaml[automl] psutil pyarrow"
  [h2o]="h2o pandas psutil pyarrow"
  [lightgbm]="lightgbm scikit-learn pandas psutil pyarrow"
)
for name in "${@:-autogluon flaml h2o lightgbm}"; do
  for n in $name; do
    echo "== $n -> $PEERS/$n"
    "$PY" -m venv "$PEERS/$n"
    "$PEERS/$n/bin/pip" install --quiet --upgrade pip
    extra=()
    [ -d "$FIND_LINKS" ] && extra=(--find-links "$FIND_LINKS")
    # shellcheck disable=SC2086
    "$PEERS/$n/bin/pip" install --quiet -c "$HERE/constraints.txt" "${extra[@]}" ${PKGS[$n]}
  done
done
