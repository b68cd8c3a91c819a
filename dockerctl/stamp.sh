# stamp.sh: source timestamps for chefd's code build (see dockerctl/sources.go).
#
# Every file of the build context arrives with the same old mtime. This script
# gives each one instead the moment its current content first entered this
# target cache, as recorded in the cache itself ($CHEFD_TARGET/.chefd/sources,
# written before cargo starts). An artifact is then newer than all its inputs
# only if cargo built it after every input took its current content, so cargo
# rebuilds exactly the units built from anything else: whatever earlier builds
# did (failed, cancelled, killed), whoever ran them.
#
#   stamp.sh begin    before cargo: stamp the sources, write the record
#   stamp.sh commit   after cargo succeeded: every unit now matches the
#                     sources, so the next build needs no older stamps
#
# Environment: CHEFD_SRC (context root), CHEFD_TARGET (target dir),
# CHEFD_LIST (this build's list: a header line "chefd-sources 1 KEY", then
# "DIGEST PATH" lines), CHEFD_ALWAYS (NUL-separated paths always stamped),
# CHEFD_RESET=1 (forget the record). A record whose KEY differs (another set
# of manifests, so other artifact names) is forgotten too: every source is
# then new, and no artifact of another unit graph can ever be taken as fresh.
# POSIX sh, awk, find, xargs and touch/date with @seconds.nanoseconds.
set -eu
src=${CHEFD_SRC:?} tgt=${CHEFD_TARGET:?} list=${CHEFD_LIST:?}
dir=$tgt/.chefd
rec=$dir/sources
case ${1:-} in
commit)
	if [ -f "$rec.ok" ]; then mv -f "$rec.ok" "$rec"; fi
	exit 0
	;;
begin) ;;
*)
	echo "stamp.sh: usage: stamp.sh begin|commit" >&2
	exit 2
	;;
esac
mkdir -p "$dir"
rm -f "$rec.ok" "$rec.new"

now=$(date +%s.%N)
case $now in
[0-9]*.[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]) ;;
*) # no nanoseconds: the next whole second, and wait for it
	now=$(($(date +%s) + 1)).000000000
	sleep 1
	;;
esac
# The engine's clock went back (a restored VM, a changed clock): stamp after
# the newest artifact cargo recorded instead, or old artifacts would look
# newer than new content.
stamp=$dir/now
touch -d "@$now" "$stamp"
newest=$(find "$tgt" -maxdepth 5 -path '*/.fingerprint/*' -newer "$stamp" -print | head -n 1)
if [ -n "$newest" ]; then
	while [ -n "$newest" ]; do
		touch -r "$newest" "$stamp"
		newest=$(find "$tgt" -maxdepth 5 -path '*/.fingerprint/*' -newer "$stamp" -print | head -n 1)
	done
	t=$(date -r "$stamp" +%s.%N)
	now=$((${t%.*} + 1)).${t#*.}
	echo "chefd: the engine's clock is behind the target cache's newest artifact; stamping changes at $now" >&2
fi

old=/dev/null
if [ "${CHEFD_RESET:-0}" != 1 ] && [ -f "$rec" ]; then old=$rec; fi
work=$(mktemp -d)
# Old record lines: "DIGEST EPOCH PATH" (EPOCH 0: the context's own mtime).
# An entry keeps its epoch while its digest stays; anything else gets $now.
# At most $max distinct epochs are kept: older ones round up to the oldest
# kept (later, so still safe; it only rebuilds a little more).
awk -v now="$now" -v base=978307200 -v max=16 -v rec="$rec.new" -v ok="$rec.ok" -v work="$work" '
function later(a, b,   x, y) {
	split(a, x, "."); split(b, y, ".")
	if (x[1] + 0 != y[1] + 0) return x[1] + 0 > y[1] + 0
	return x[2] + 0 > y[2] + 0
}
phase != 2 {
	if (FNR == 1) { if ($1 == "chefd-sources" && $2 == "1") oldkey = $3; next }
	r = substr($0, 34); i = index(r, " ")
	if (i < 2) next
	p = substr(r, i + 1); od[p] = substr($0, 1, 32); oe[p] = substr(r, 1, i - 1)
	next
}
FNR == 1 { key = $3; same = (oldkey != "" && oldkey == key); next }
{
	d = substr($0, 1, 32); p = substr($0, 34)
	if (same && (p in od) && od[p] == d) e = oe[p]; else e = now
	n++; P[n] = p; D[n] = d; EP[n] = e
	if (e != "0" && !(e in seen)) { seen[e] = 1; k++; L[k] = e }
}
END {
	for (i = 2; i <= k; i++) {
		v = L[i]
		for (j = i - 1; j >= 1 && later(v, L[j]); j--) L[j + 1] = L[j]
		L[j + 1] = v
	}
	for (i = 1; i <= k; i++) m[L[i]] = (i <= max) ? L[i] : L[max]
	print "chefd-sources 1 " key > rec
	print "chefd-sources 1 " key > ok
	for (i = 1; i <= n; i++) {
		e = EP[i]
		t = (e == "0") ? "" : m[e]
		if (e == "0" && P[i] == ".") t = base  # the root gets the time of the build otherwise
		if (t != "") {
			if (!(t in out)) { nf++; out[t] = work "/t." nf; print t > out[t] }
			print P[i] > out[t]
		}
		if (e != "0") e = m[e]
		print D[i] " " e " " P[i] > rec
		print D[i] " 0 " P[i] > ok
	}
}' "$old" phase=2 "$list"

# stamp EPOCH FILE: give the NUL-separated paths of FILE the mtime EPOCH.
# A symbolic link gets it itself (-h: never what it points to, which may
# loop or be elsewhere). A path that cannot be reached at all (a symbolic
# link looping on its way) is left as it is: cargo cannot read it either.
# Any other failure is an error.
stamp() {
	xargs -0 -r touch -c -h -d "@$1" -- <"$2" 2>/dev/null && return 0
	xargs -0 -r sh -c 'e=$1; shift
		for p do
			touch -c -h -d "@$e" -- "$p" 2>/dev/null && continue
			if [ -e "$p" ] || [ -L "$p" ]; then touch -c -h -d "@$e" -- "$p"; exit 1; fi
			echo "chefd: $p cannot be reached (a symbolic link loops on its way): not stamped" >&2
		done' sh "$1" <"$2"
}
cd "$src"
for f in "$work"/t.*; do
	[ -f "$f" ] || continue
	e=$(head -n 1 "$f")
	tail -n +2 "$f" | tr '\n' '\0' >"$work/paths"
	stamp "$e" "$work/paths"
done
if [ -s "${CHEFD_ALWAYS:-/dev/null}" ]; then
	stamp "$now" "$CHEFD_ALWAYS"
fi
rm -rf "$work"
# The record must be on disk before cargo writes any artifact.
sync "$rec.new" 2>/dev/null || sync
mv -f "$rec.new" "$rec"
sync "$dir" 2>/dev/null || sync
