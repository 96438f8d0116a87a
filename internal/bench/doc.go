// Package bench is Earshot's load benchmark: it drives N concurrent real-time streams
// of recorded speech through the public WebSocket API (gateway/client), measures partial
// and final latency, word error rate, real-time factor, the CPU and memory of the
// service processes and the audio billed, sweeps N to find the knee, and writes JSON,
// Markdown and SVG plots. `earshot bench` is its command line; BenchmarkTransport and
// the capacity test measure the bus and the gateway alone.
package bench
