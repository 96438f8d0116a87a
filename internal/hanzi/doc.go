// Package hanzi converts Chinese text between traditional and simplified
// characters, so that a zh-TW client gets the script it reads whatever the
// model wrote, and so that scoring can compare transcripts script-blind.
//
// The conversion is our own: OpenCC's t2s and s2tw chains (longest match at
// each position, stage after stage) over OpenCC's dictionary files, which are
// embedded (1.08 MB of text, almost all of it STPhrases.txt) and Apache-2.0;
// data/README.md names their source and lists the one line we changed. No
// OpenCC code and no third-party module is used, so nothing GPL is linked and
// no flag is registered; nothing is read from disk or the network.
//
// Cost, measured on a 2-core AMD EPYC VM (BenchmarkLoad, BenchmarkTo*): the
// first call of each converter parses its dictionaries, about 0.8 ms and
// 0.5 MB of heap for t2s (ToSimplified), 11 ms and 2.8 MB for s2tw
// (ToTraditional); call Err at startup to pay that before the first stream
// rather than on its first partial. After that a conversion costs about 25 ns
// per Chinese character for t2s and 80 ns for s2tw, and one allocation, for
// the result (0.7 µs and 2 µs for a 26-character partial, 5 µs and 17 µs for
// 200); text without Chinese, or already in the target script, comes back
// as it is without allocating (under 0.1 µs for a sentence of English).
package hanzi
