#!/bin/sh
# Exact per-direction TCP conversation figures from tshark (the oracle of test/flow/conv-oracle.test.ts):
# one line per tcp.stream and direction: stream, src, sport, dst, dport, frames, frame bytes (frame.len),
# first and last frame.time_epoch. A = the stream's first sender. Usage: tcp-oracle.sh CAPTURE > NAME.tcp-streams.tsv
set -eu
echo "# tshark $(tshark -v 2>/dev/null | head -1 | sed 's/^TShark (Wireshark) //'): tshark -r $(basename "$1") -Y tcp -T fields -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport -e frame.len -e frame.time_epoch | awk (scripts/flows/tcp-oracle.sh)"
echo "#stream	src	sport	dst	dport	frames	bytes	first_epoch	last_epoch"
tshark -r "$1" -Y tcp -T fields -e tcp.stream -e ip.src -e ipv6.src -e tcp.srcport -e ip.dst -e ipv6.dst -e tcp.dstport -e frame.len -e frame.time_epoch 2>/dev/null |
awk -F'\t' '{
  src = $2 $3; dst = $5 $6; key = $1 SUBSEP src SUBSEP $4 SUBSEP dst SUBSEP $7
  if (!(key in frames)) { order[++n] = key; first[key] = $9 }
  frames[key]++; bytes[key] += $8; last[key] = $9
} END {
  for (i = 1; i <= n; i++) { k = order[i]; split(k, f, SUBSEP); printf "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", f[1], f[2], f[3], f[4], f[5], frames[k], bytes[k], first[k], last[k] }
}'
