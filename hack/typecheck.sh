#!/usr/bin/env bash
# The type checker and the import contracts (pyproject's [tool.mypy] and [tool.importlinter]).
#
# Both tools find code by module name, and our folders are mapped under `workerlab.` by
# pyproject's package-dir (the repo root is never importable: `operator` would shadow the
# standard library). So the packages are mirrored as workerlab/<folder> in a scratch tree, and
# paths in the output are mapped back to the checkout's.
# mypy's cache lives with the other caches, outside the checkout: a fresh clone (CI) finds it
# warm (entries are checked by content hash when the path differs): ~5 s instead of ~80 s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${BIN:-$root/.venv/bin}" && pwd)  # absolute: the tools run from the scratch tree
tree=$root/.build/typecheck
rm -rf "$tree"
mkdir -p "$tree/workerlab"
: > "$tree/workerlab/__init__.py"  # a regular package, so grimp can scan it
for folder in api operator worker common cli labs; do
  (cd "$root" && find "$folder" -name '*.py' -not -path "*/__pycache__/*" -not -path "*/exercise/*" -print0 \
    | xargs -0 cp --parents -t "$tree/workerlab")
done
to_checkout() { sed -e "s#$tree/workerlab/##g" -e "s#^workerlab/##"; }
status=0
# The controller's test double is checked against the KubeClient protocol it stands in for.
cp "$root/tests/unit/operator/test_controller.py" "$tree/test_controller_double.py"
echo "mypy: api, operator (strict), worker, common, cli, labs, the controller's test double"
(cd "$tree" && MYPYPATH="$root/tests" "$bin/mypy" --config-file "$root/pyproject.toml" \
  --cache-dir "${WORKERLAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/workerlab}/mypy" \
  -p workerlab.api -p workerlab.operator -p workerlab.worker -p workerlab.common -p workerlab.cli \
  -p workerlab.labs \
  -m test_controller_double) 2>&1 | to_checkout || status=1
echo "import contracts (lint-imports)"
(cd "$tree" && PYTHONPATH="$tree" "$bin/lint-imports" --no-cache "$root/pyproject.toml") \
  2>&1 | to_checkout || status=1
exit $status
