# Worker image: multi-stage build of switchyard-worker; runtime with git, a non-root user,
# and the job tool installed through a build argument.
#
#   docker build -f infra/worker.Dockerfile \
#     --build-arg JOB_TOOL_INSTALL="npm install -g @anthropic-ai/claude-code" -t switchyard-worker .
#
# JOB_TOOL_INSTALL is a shell command run as root in the runtime stage (default: none). The
# project's `job_command` then calls that tool in the session worktree.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p switchyard-worker --locked \
 && cp target/release/switchyard-worker /usr/local/bin/switchyard-worker

FROM debian:bookworm-slim AS runtime
ARG JOB_TOOL_INSTALL=""
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates openssh-client tini \
 && rm -rf /var/lib/apt/lists/*
RUN if [ -n "$JOB_TOOL_INSTALL" ]; then sh -c "$JOB_TOOL_INSTALL"; fi
# The worker runs as root (it must switch users; the task definition drops every other
# capability); each job runs as the unprivileged `switchyard-job` with a clean environment.
RUN useradd --create-home --uid 10001 switchyard \
 && useradd --system --user-group --uid 10002 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin switchyard-job \
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
