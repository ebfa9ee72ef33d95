# docs/benchmarks.png from the data files bench/report.py writes into the results directory:
#   gnuplot -e "dir='build/bench/results'; out='docs/benchmarks.png'" bench/plot.gp
# Each file has a header line "load casgi nginx h2o uvicorn" and one row per load; NaN marks a
# figure that is missing (server not started, no h2c), and its bar is left out.

if (!exists("dir")) dir = "build/bench/results"
if (!exists("out")) out = "docs/benchmarks.png"
# The tallest bar of each panel (report.py passes them), to leave room for the key above it.
if (!exists("tmax")) tmax = 1e6
if (!exists("imax")) imax = 1e5
if (!exists("smax")) smax = 10

set terminal pngcairo size 1500,520 font "sans,10"
set output out
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top center horizontal samplen 1.5 width -1 autotitle columnheader
set grid ytics
set xtics rotate by -20 nomirror
set datafile missing "NaN"
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#9467bd"

set multiplot layout 1,3 title "casgi and its peers, one server core each (higher is better on the left, lower in the middle and right)"

set title "Throughput, req/s or WebSocket msg/s (log; * = per server core)"
set logscale y
set format y "%.0s%c"
set yrange [1000:tmax * 8]
plot for [c=2:5] dir."/throughput.dat" using c:xtic(1)

set title "User-space instructions per request (log)"
set yrange [1000:imax * 8]
plot for [c=2:5] dir."/instructions.dat" using c:xtic(1)
unset logscale y

set title "System calls per request"
set format y "%g"
set yrange [0:smax * 1.3]
plot for [c=2:5] dir."/syscalls.dat" using c:xtic(1)

unset multiplot
