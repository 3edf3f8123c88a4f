// Package bench measures Hearth against the official PDS on loopback.
//
// It holds what the load tool (bench/load), the Go benchmarks
// (bench_test.go, records_bench_test.go, blobs_bench_test.go) and the
// side-by-side script (compare.sh) share: an XRPC client that refuses to
// talk to anything but a loopback address, record writes and getRepo
// (records.go), blob uploads and reads (blobs.go), a light subscribeRepos
// subscriber (firehose.go), and readers of a server's memory and CPU time
// from /proc.
//
//	go run ./bench/load -h                      load one PDS, print a table
//	bench/compare.sh                            Hearth and the official PDS, side by side
//	bench/compare.sh records                    the same for record writes, getRepo and the firehose
//	bench/compare.sh blobs                      uploadBlob and getBlob MB/s (BLOBSTORE=s3: both on versitygw)
//	go test -run '^$' -bench . ./bench/         Go benchmarks on the built binary
//	go test -run '^$' -bench InProcess -cpuprofile cpu.out ./bench/   profiles
//
// Tricky bits:
//   - Server CPU is utime+stime of the server's own process. `hearth dev`
//     embeds its PLC directory, so Hearth's figures include PLC work; the
//     official PDS's PLC directory and PostgreSQL are separate processes
//     and are not counted. The comparison is therefore conservative.
//   - RSS is the kernel's view (VmRSS, VmHWM): for Go it includes heap the
//     runtime has not yet returned to the OS, for Node the whole V8 heap.
//   - Both servers run on the same machine as the load; on a small machine
//     the load generator competes for CPU, so prefer server CPU per request
//     over wall-clock throughput when the two disagree.
package bench
