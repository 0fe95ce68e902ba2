// Package stats owns the numeric building blocks of the intelligence layer:
// time-bucketed, mergeable latency series (DDSketch per bucket, 1% relative
// accuracy), the Mann-Kendall trend test with Sen's slope, and the robust
// median-absolute-deviation anomaly score. It knows nothing about services or
// events and does no I/O; callers serialize access to a Series.
package stats
