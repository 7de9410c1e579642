#!/usr/bin/env python3
"""A scripted model provider for tests and the demo: this machine cannot reach a real model.

It speaks the provider's HTTP API exactly where the agent CLIs call it, and nothing of
Switchyard's own code is imitated here:

* Anthropic Messages (`POST /v1/messages`, streamed as server-sent events when the request
  asks to be; `POST /v1/messages/count_tokens`) for Claude Code;
* OpenAI Chat Completions (`POST /v1/chat/completions`, streamed or not) for aider.

The script is the instruction itself, so a test says what the "model" does in the text it
sends, the way a user would:

* every new instruction gets one edit: the instruction's first line is appended to
  `AGENT_LOG.md` (Claude Code: a `Bash` tool call, then a short final answer; aider: the
  whole file in its "whole" edit format);
* `stall N` in the instruction: after the edit, the answer is held back N seconds (the agent
  prints nothing meanwhile: an inactivity limit fires);
* every request is appended, as one JSON line, to the file named by `--log` (tests read the
  conversation the CLI sent, to see a resumed one carries its history).

Usage: scripted_model.py --port-file PATH [--log PATH] [--port N]
"""

import argparse
import json
import re
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()
LOG_PATH = None
FILE = "AGENT_LOG.md"


def log(entry):
    if LOG_PATH is None:
        return
    with LOG_LOCK, open(LOG_PATH, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def text_of(content):
    """The text of a message's content (a string or a list of blocks)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(block.get("text", ""))
    return "\n".join(parts)


def instruction_line(text):
    """The instruction's first meaningful line, without Claude Code's reminders."""
    text = re.sub(r"<system-reminder>.*?</system-reminder>", "", text, flags=re.S)
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:200]
    return "(empty instruction)"


def stall_of(text):
    m = re.search(r"\bstall (\d+)\b", text)
    return int(m.group(1)) if m else 0


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


# --- Anthropic Messages -------------------------------------------------------------


def anthropic_turn(body):
    """(blocks, stop_reason, stall seconds) for the next assistant turn."""
    messages = body.get("messages", [])
    last = messages[-1] if messages else {"content": ""}
    content = last.get("content")
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"] if isinstance(content, list) else []
    # The user's instruction is the latest user message with text (not a tool result).
    prompt = ""
    for m in reversed(messages):
        if m.get("role") == "user" and text_of(m.get("content")).strip():
            t = text_of(m.get("content"))
            if instruction_line(t) != "(empty instruction)":
                prompt = t
                break
    line = instruction_line(prompt)
    if results:
        summary = f"Done: appended \u201c{line}\u201d to {FILE}."
        return [{"type": "text", "text": summary}], "end_turn", stall_of(prompt)
    command = f"printf '%s\\n' {shell_quote('- ' + line)} >> {FILE}"
    return [
        {"type": "text", "text": f"I will record the instruction in {FILE}."},
        {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": "Bash",
         "input": {"command": command, "description": f"Append the instruction to {FILE}"}},
    ], "tool_use", 0


def sse(handler, event, data):
    handler.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
    handler.wfile.flush()


def anthropic_stream(handler, model, blocks, stop, stall):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("request-id", "req_" + uuid.uuid4().hex[:16])
    handler.send_header("Connection", "close")  # the end of the stream is the end of the body
    handler.close_connection = True
    handler.end_headers()
    mid = "msg_" + uuid.uuid4().hex[:20]
    usage = {"input_tokens": 120, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    sse(handler, "message_start", {"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})
    if stall:
        time.sleep(stall)
    for i, b in enumerate(blocks):
        if b["type"] == "text":
            sse(handler, "content_block_start", {"type": "content_block_start", "index": i,
                                                 "content_block": {"type": "text", "text": ""}})
            sse(handler, "content_block_delta", {"type": "content_block_delta", "index": i,
                                                 "delta": {"type": "text_delta", "text": b["text"]}})
        else:
            sse(handler, "content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                "type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}})
            sse(handler, "content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(b["input"])}})
        sse(handler, "content_block_stop", {"type": "content_block_stop", "index": i})
    sse(handler, "message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                   "usage": {"output_tokens": 42}})
    sse(handler, "message_stop", {"type": "message_stop"})


def anthropic_whole(handler, model, blocks, stop, stall):
    if stall:
        time.sleep(stall)
    reply(handler, 200, {"id": "msg_" + uuid.uuid4().hex[:20], "type": "message", "role": "assistant",
                         "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": None,
                         "usage": {"input_tokens": 120, "output_tokens": 42}})


# --- OpenAI Chat Completions --------------------------------------------------------


def openai_reply(body):
    """aider's turn: the file with the instruction appended, in aider's whole-file format."""
    messages = body.get("messages", [])
    prompt = ""
    for m in reversed(messages):
        if m.get("role") == "user":
            prompt = text_of(m.get("content"))
            break
    line = instruction_line(prompt)
    # aider shows the file's current content in the chat; append a line to it.
    current = ""
    for m in messages:
        t = text_of(m.get("content"))
        found = re.search(re.escape(FILE) + r"\n```[^\n]*\n(.*?)```", t, flags=re.S)
        if found:
            current = found.group(1)
    new = current + f"- {line}\n"
    # aider's "whole" edit format (what it asks of a model it does not know): the file's
    # path, then its whole new content fenced.
    text = f"I will record the instruction in {FILE}.\n\n{FILE}\n```\n{new}```\n"
    return text, stall_of(prompt)


def openai_stream(handler, model, text, stall):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.close_connection = True
    handler.end_headers()
    cid = "chatcmpl-" + uuid.uuid4().hex[:20]
    if stall:
        time.sleep(stall)

    def chunk(delta, finish=None):
        data = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        handler.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        handler.wfile.flush()

    chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r".{1,64}", text, flags=re.S):
        chunk({"content": piece})
    chunk({}, "stop")
    usage = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
             "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": 42, "total_tokens": 162}}
    handler.wfile.write(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
    handler.wfile.flush()


def reply(handler, status, body):
    raw = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(raw)))
    handler.end_headers()
    handler.wfile.write(raw)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: tests read the JSON log instead
        pass

    def do_GET(self):
        reply(self, 200, {"data": [{"id": "scripted", "type": "model"}], "object": "list"})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            reply(self, 400, {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid JSON"}})
            return
        path = self.path.split("?")[0]
        log({"path": path, "at": time.time(), "body": body})
        model = body.get("model", "scripted")
        try:
            if path.endswith("/messages/count_tokens"):
                reply(self, 200, {"input_tokens": 120})
            elif path.endswith("/messages"):
                blocks, stop, stall = anthropic_turn(body)
                (anthropic_stream if body.get("stream") else anthropic_whole)(self, model, blocks, stop, stall)
            elif path.endswith("/chat/completions"):
                text, stall = openai_reply(body)
                if body.get("stream"):
                    openai_stream(self, model, text, stall)
                else:
                    if stall:
                        time.sleep(stall)
                    reply(self, 200, {"id": "chatcmpl-" + uuid.uuid4().hex[:20], "object": "chat.completion",
                                      "created": int(time.time()), "model": model,
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": text}}],
                                      "usage": {"prompt_tokens": 120, "completion_tokens": 42, "total_tokens": 162}})
            else:
                reply(self, 404, {"error": {"message": f"no such endpoint: {path}"}})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent was stopped mid-answer


def main():
    global LOG_PATH
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    args = p.parse_args()
    LOG_PATH = args.log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(args.port_file + ".tmp", args.port_file)
    print(f"scripted model on 127.0.0.1:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
