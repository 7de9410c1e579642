#!/usr/bin/env bash
# Installs the coding agent CLIs the agent tests and `make demo AGENT=…` run, pinned, from
# their public registries, into .agents/: Claude Code from the npm registry (its native
# binary, fetched with Python: no Node.js needed), aider from PyPI. The worker
# finds them in .agents/bin (SWITCHYARD_AGENT_BIN). Idempotent: installed pinned versions are
# kept. Prints the bin directory.
set -euo pipefail
cd "$(dirname "$0")/.."
CLAUDE_CODE_VERSION=2.1.332
AIDER_VERSION=0.86.2
dir=.agents
mkdir -p "$dir/bin"
bin="$PWD/$dir/bin"

want="$CLAUDE_CODE_VERSION (Claude Code)"
if [ "$("$bin/claude" --version 2>/dev/null || true)" != "$want" ]; then
  # Claude Code is a native binary in a per-platform npm package; fetched from the npm
  # registry with Python (integrity checked), so no Node.js is needed.
  case "$(uname -m)" in
    x86_64|amd64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "install-agents: no Claude Code binary for $(uname -m)" >&2; exit 1 ;;
  esac
  libc=""; if ldd --version 2>&1 | grep -qi musl; then libc="-musl"; fi
  mkdir -p "$dir/claude-code"
  python3 scripts/fetch_npm_binary.py "@anthropic-ai/claude-code-linux-$arch$libc" "$CLAUDE_CODE_VERSION" claude "$dir/claude-code/claude"
  ln -sfn "$PWD/$dir/claude-code/claude" "$bin/claude"
  [ "$("$bin/claude" --version)" = "$want" ] || { echo "install-agents: claude is not $want" >&2; exit 1; }
fi

if [ "$("$dir/aider/bin/python" -c 'import importlib.metadata as m; print(m.version("aider-chat"))' 2>/dev/null || true)" != "$AIDER_VERSION" ]; then
  # Jobs run as an unprivileged user: the venv's interpreter must be one it may run (a
  # pyenv under /root is not), so the system's python3 first.
  py=/usr/bin/python3; [ -x "$py" ] || py=$(command -v python3)
  rm -rf "$dir/aider"
  "$py" -m venv "$dir/aider"
  "$dir/aider/bin/pip" install --quiet --disable-pip-version-check "aider-chat==$AIDER_VERSION" >&2
  ln -sfn "$PWD/$dir/aider/bin/aider" "$bin/aider"
  # Byte-compiled now, as root: the job user cannot write __pycache__ in this venv, and
  # a first run that compiles litellm takes tens of seconds.
  "$dir/aider/bin/python" -m compileall -q "$dir/aider/lib" >/dev/null 2>&1 || true
fi

# Jobs run as an unprivileged user: it must be able to run the CLIs.
chmod -R a+rX "$dir"
echo "$bin"
