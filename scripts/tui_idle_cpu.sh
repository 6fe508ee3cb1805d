#!/bin/sh
# Idle CPU of the console: start it in tmux on a fresh rehearsal token, let it settle,
# then count the CPU time (clock ticks, usually 1/100 s) it uses in 10 idle seconds.
#   cargo build && sh scripts/tui_idle_cpu.sh [target/debug/officiant]
set -eu
BIN=$(realpath "${1:-target/debug/officiant}")
WORK=$(mktemp -d)
SOCK="officiant-idle-$$"
trap 'tmux -L "$SOCK" kill-server 2>/dev/null || true; rm -rf "$WORK"' EXIT
tmux -L "$SOCK" new-session -d -s idle -x 80 -y 24 -c "$WORK" "$BIN"
sleep 3
PID=$(tmux -L "$SOCK" list-panes -t idle -F '#{pane_pid}')
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
A=$(ticks)
sleep 10
B=$(ticks)
echo "process: $(cat /proc/$PID/comm)"
echo "idle console: $((B - A)) CPU ticks in 10 s (pid $PID, $(getconf CLK_TCK) ticks/s)"
