#!/bin/sh
# A stand-in for an AI coding agent, used by `make demo`.
# Reads the instruction on stdin (also in the file $SWITCHYARD_INSTRUCTION_FILE) and edits the site in
# the session's worktree. An instruction containing "(long)" works for a minute unless
# interrupted; SIGINT saves a partial change first, as a real agent should.
instruction=$(cat)
case "$instruction" in
  *"(long)"*)
    trap 'echo "<!-- redesign: partial, interrupted -->" >> index.html; echo "interrupted; partial redesign saved"; exit 130' INT TERM
    echo "<!-- redesign in progress -->" >> index.html
    i=0
    while [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    ;;
esac
sleep 0.3
printf '<p>%s</p>\n' "$instruction" >> index.html
printf -- '- %s\n' "$instruction" >> CHANGELOG.md
echo "Edited index.html and CHANGELOG.md: $instruction"
