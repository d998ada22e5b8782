#!/usr/bin/env bash
# One-command demo against the Webex API simulator (run through `make demo`).
#
# Starts the simulator with the demo fixture on 127.0.0.1, upgrades the three demo customers
# with playbooks/upgrade_21_1.yml, writes the license report at provider level, runs the
# upgrade again and checks that it changed nothing. Each run starts from a new inventory
# file in .build/demo, so a second `make demo` shows the same output. The simulator is
# stopped on every exit path.
#
# `make build-check` runs it again against the collection installed from the built tarball,
# through these variables: DEMO_ANSIBLE_BIN_DIR (where ansible-playbook is),
# DEMO_COLLECTIONS_PATH (ANSIBLE_COLLECTIONS_PATH) and DEMO_PLAYBOOK_DIR (the playbooks/
# folder of the installed collection). DEMO_DIR sets the output folder.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir="${repo_root}/.venv/bin"
demo_dir="${DEMO_DIR:-${repo_root}/.build/demo}"
ansible_bin_dir="${DEMO_ANSIBLE_BIN_DIR:-${bin_dir}}"
playbook_dir="${DEMO_PLAYBOOK_DIR:-${repo_root}/playbooks}"
collections_path="${DEMO_COLLECTIONS_PATH:-${repo_root}/.build/collections}"
inventory="${playbook_dir}/inventory/demo"
ready_prefix="Webex API simulator listening on "
simulator_pid=""

stop_simulator() {
  if [[ -n "${simulator_pid}" ]] && kill -0 "${simulator_pid}" 2>/dev/null; then
    kill -TERM "${simulator_pid}"
    wait "${simulator_pid}" 2>/dev/null || true
    echo "Simulator stopped."
  fi
}
trap stop_simulator EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "${repo_root}"
rm -rf "${demo_dir}"
mkdir -p "${demo_dir}"

# Start the simulator on a free port and read its URL from the line it prints when ready.
"${bin_dir}/python" -m tests.simulator --fixture tests/simulator/fixtures/demo.json \
  --host 127.0.0.1 --port 0 >"${demo_dir}/simulator.out" 2>"${demo_dir}/simulator.err" &
simulator_pid=$!
api_url=""
for _ in $(seq 1 300); do
  if line=$(grep -m1 "^${ready_prefix}" "${demo_dir}/simulator.out" 2>/dev/null); then
    api_url=${line#"${ready_prefix}"}
    break
  fi
  if ! kill -0 "${simulator_pid}" 2>/dev/null; then
    echo "The simulator exited before it was ready:" >&2
    cat "${demo_dir}/simulator.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "${api_url}" ]]; then
  echo "The simulator did not print its URL within 30 seconds. See ${demo_dir}/simulator.err" >&2
  exit 1
fi
echo "Simulator running at ${api_url} (pid ${simulator_pid})"

export WEBEX_API_URL="${api_url}"
export WEBEX_INVENTORY_DB="${demo_dir}/inventory.db"
export ANSIBLE_COLLECTIONS_PATH="${collections_path}"
export ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_RETRY_FILES_ENABLED=0

echo
echo "=== 1. Upgrade every customer (3 in parallel) ==="
"${ansible_bin_dir}/ansible-playbook" -i "${inventory}" "${playbook_dir}/upgrade_21_1.yml" --forks 3

echo
echo "=== 2. License report at provider level (hierarchy Keystone) ==="
"${ansible_bin_dir}/ansible-playbook" -i "${inventory}" "${playbook_dir}/license_inventory.yml" \
  -e webex_report_hierarchy=Keystone -e "webex_report_dir=${demo_dir}/report"
echo
cat "${demo_dir}/report/licenses.txt"
echo
echo "Report files: $(cd "${demo_dir}/report" && echo *) in ${demo_dir}/report"

echo
echo "=== 3. Upgrade again: nothing may change ==="
"${ansible_bin_dir}/ansible-playbook" -i "${inventory}" "${playbook_dir}/upgrade_21_1.yml" --forks 3 \
  | tee "${demo_dir}/upgrade-again.log"
recap=$(sed -n '/^PLAY RECAP/,$p' "${demo_dir}/upgrade-again.log" | grep ' : ok=')
if grep -v ' changed=0 ' <<<"${recap}"; then
  echo "The second upgrade reported changes (recap lines above), so it is not idempotent." >&2
  exit 1
fi
echo "Second upgrade: changed=0 for every host."
