#!/usr/bin/env bash
# Installs the coding agent CLIs the agent tests and `make demo AGENT=…` run, pinned, from
# their public registries, into .agents/ (the worker finds them through SWITCHYARD_AGENT_BIN).
# Idempotent: an installed pinned version is kept. Prints the bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."
CLAUDE_CODE_VERSION=2.1.332
dir=.agents
bin="$PWD/$dir/node_modules/.bin"
want="$CLAUDE_CODE_VERSION (Claude Code)"
if [ "$("$bin/claude" --version 2>/dev/null || true)" != "$want" ]; then
  command -v npm >/dev/null || { echo "install-agents: npm is needed (Node.js 18+) to install Claude Code" >&2; exit 1; }
  mkdir -p "$dir"
  # The package's postinstall links the platform's native binary in place of its stub.
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2
  [ "$("$bin/claude" --version)" = "$want" ] || { echo "install-agents: claude is not $want" >&2; exit 1; }
fi
# Jobs run as an unprivileged user: it must be able to run the CLI.
chmod -R a+rX "$dir"
echo "$bin"
