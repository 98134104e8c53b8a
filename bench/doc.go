// Package bench holds gust's end-to-end benchmarks: bench/run (a bash
// script that starts a gust node and the baselines, runs every measured
// target and prints a summary), bench/bare (the bare net/http baseline
// server), bench/loadgen (the load generator and samplers the script drives)
// and bench/sleep (a function that waits, to make load that needs many
// instances). BENCHMARKS.md at the root records a run.
//
// Nothing here is imported by the product, and nothing here asserts on
// time: figures are measured and reported as ratios against a baseline
// taken in the same run, never checked by a unit test.
package bench
