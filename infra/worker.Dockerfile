# Worker image: multi-stage build of switchyard-worker; runtime with git, a non-root user,
# and the job tool installed through a build argument.
#
#   docker build -f infra/worker.Dockerfile \
#     --build-arg JOB_TOOL_INSTALL="npm install -g @anthropic-ai/claude-code" -t switchyard-worker .
#
# JOB_TOOL_INSTALL is a shell command run as root in the runtime stage (default: none). The
# project's `job_command` then calls that tool in the session worktree.
#
# AGENT_CLIS installs the coding agent CLIs a project's `agent` can name, pinned to the
# versions the tests run (`scripts/install-agents.sh`): `claude-code` (npm) and/or `aider`
# (PyPI), e.g. --build-arg AGENT_CLIS="claude-code aider". The worker finds them in
# /opt/agents/bin (SWITCHYARD_AGENT_BIN); the provider key is a project secret (SSM), given
# to the job only.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p switchyard-worker --locked \
 && cp target/release/switchyard-worker /usr/local/bin/switchyard-worker

FROM debian:bookworm-slim AS runtime
ARG JOB_TOOL_INSTALL=""
ARG AGENT_CLIS=""
ARG CLAUDE_CODE_VERSION=2.1.332
ARG AIDER_VERSION=0.86.2
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client tini util-linux \
    $(case " $AGENT_CLIS " in *" claude-code "*) echo nodejs npm;; esac) \
    $(case " $AGENT_CLIS " in *" aider "*) echo python3 python3-venv;; esac) \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /opt/agents/bin \
 && case " $AGENT_CLIS " in *" claude-code "*) \
      npm install --prefix /opt/agents/claude-code --no-audit --no-fund "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" \
      && ln -s /opt/agents/claude-code/node_modules/.bin/claude /opt/agents/bin/claude;; esac \
 && case " $AGENT_CLIS " in *" aider "*) \
      python3 -m venv /opt/agents/aider && /opt/agents/aider/bin/pip install --no-cache-dir "aider-chat==$AIDER_VERSION" \
      && ln -s /opt/agents/aider/bin/aider /opt/agents/bin/aider;; esac \
 && chmod -R a+rX /opt/agents
ENV SWITCHYARD_AGENT_BIN=/opt/agents/bin
RUN if [ -n "$JOB_TOOL_INSTALL" ]; then sh -c "$JOB_TOOL_INSTALL"; fi
# The worker runs as root (it must switch users; the task definition drops every other
# capability); each job slot runs its jobs as its own unprivileged uid (`switchyard-job-0`…`-7`)
# with a clean environment, and no process of a job outlives it (crates/worker/src/identity.rs).
RUN useradd --create-home --uid 10001 switchyard \
 && for i in 0 1 2 3 4 5 6 7; do useradd --system --user-group --uid $((10010 + i)) --home-dir /nonexistent \
      --no-create-home --shell /usr/sbin/nologin switchyard-job-$i; done \
 && mkdir -p /workspace && chown switchyard:switchyard /workspace
# Declared after the chown: Fargate initialises the task's `workspace` bind mount from the
# image's volume, so it stays owned by the worker user (without this it is root-owned and
# the non-root worker cannot clone into it).
VOLUME ["/workspace"]
COPY --from=build /usr/local/bin/switchyard-worker /usr/local/bin/switchyard-worker
WORKDIR /workspace
ENV SWITCHYARD_WORKSPACE=/workspace
# tini forwards ECS's SIGTERM to the worker, which saves and reports running jobs.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/switchyard-worker"]
