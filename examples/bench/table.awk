#!/usr/bin/awk -f
# table.awk - turns `go test -bench -benchmem` output into one Markdown table
# (make bench): package, benchmark, time per op and every other metric the
# benchmark reports, in the order it reports them. Failures pass through.
/^pkg: / { pkg = $2; sub(/^github.com\/loom-sdn\/loom\//, "", pkg); next }
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
	m = ""
	for (i = 3; i + 1 <= NF; i += 2) {
		v = $i; u = $(i + 1)
		if (u == "ns/op") {
			if (v >= 1e9) v = sprintf("%.2f s", v / 1e9)
			else if (v >= 1e6) v = sprintf("%.2f ms", v / 1e6)
			else if (v >= 1e3) v = sprintf("%.1f µs", v / 1e3)
			else v = v " ns"
			t = v
			continue
		}
		m = m (m == "" ? "" : ", ") v " " u
	}
	rows[++n] = "| " pkg " | " name " | " t " | " m " |"
	next
}
/^(--- FAIL|FAIL|panic:)/ { print > "/dev/stderr"; failed = 1 }
END {
	print "| package | benchmark | time/op | other metrics (per op unless named) |"
	print "|---|---|---|---|"
	for (i = 1; i <= n; i++) print rows[i]
	exit failed
}
