import CQuants
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Inference
import OutpostCore

/// Mat-vec throughput of the CQuants kernels, in GB/s of weight bytes read, beside the machine's
/// read bandwidth measured the same way (threads splitting one large buffer).
///
/// Weights are streamed from memory as the engine streams them: each measurement cycles through
/// as many copies of the matrix as fit in `workingSetBytes` (≥ 256 MiB, far beyond the caches),
/// so a copy is never reused while it could still be cached.
@available(macOS 15.0, *)
struct KernelBenchmark {
    struct WeightType: Sendable {
        let name: String
        let id: Int32
    }

    struct Shape: Sendable {
        let rows: Int
        let cols: Int
        let label: String
    }

    struct Result: Codable, Sendable {
        let type: String
        let shape: String
        let rows: Int
        let cols: Int
        let matrixBytes: Int
        let threads: Int
        /// Best of `KernelBenchmark.rounds` timed rounds.
        let gbPerSecond: Double
        let gbPerSecondMedian: Double
        let microsecondsPerMatVec: Double
        let fractionOfReadBandwidth: Double

        enum CodingKeys: String, CodingKey {
            case type, shape, rows, cols, threads
            case matrixBytes = "matrix_bytes"
            case gbPerSecond = "gb_per_s"
            case gbPerSecondMedian = "gb_per_s_median"
            case microsecondsPerMatVec = "us_per_matvec"
            case fractionOfReadBandwidth = "fraction_of_read_bandwidth"
        }

        func with(readBandwidth: Double) -> Result {
            Result(type: type, shape: shape, rows: rows, cols: cols, matrixBytes: matrixBytes, threads: threads,
                   gbPerSecond: gbPerSecond, gbPerSecondMedian: gbPerSecondMedian,
                   microsecondsPerMatVec: microsecondsPerMatVec, fractionOfReadBandwidth: gbPerSecond / readBandwidth)
        }
    }

    struct Report: Codable, Sendable {
        let kernel: String
        let optimizedBuild: Bool
        let workingSetBytes: Int
        /// Best round per thread count (keys "1", "2", ...), and the median round.
        let readBandwidthGBPerSecond: [String: Double]
        let readBandwidthGBPerSecondMedian: [String: Double]
        let results: [Result]
        /// Per type: one thread on a 256 x 576 matrix that stays in cache, i.e. what the kernel
        /// does when memory is not the limit. Far above the read bandwidth means memory-bound.
        let inCacheGBPerSecond: [String: Double]

        enum CodingKeys: String, CodingKey {
            case kernel, results
            case optimizedBuild = "optimized_build"
            case workingSetBytes = "working_set_bytes"
            case readBandwidthGBPerSecond = "read_bandwidth_gb_per_s"
            case readBandwidthGBPerSecondMedian = "read_bandwidth_gb_per_s_median"
            case inCacheGBPerSecond = "in_cache_gb_per_s"
        }
    }

    /// Every weight type the active kernel path runs, as CQuants' type table names them.
    static var allTypes: [WeightType] {
        (0..<Int32(CQ_TYPE_COUNT)).compactMap { id in
            guard cq_type_supported(id) != 0, let traits = cq_get_type_traits(id) else { return nil }
            return WeightType(name: String(cString: traits.pointee.name), id: id)
        }
    }

    /// SmolLM2-135M's mat-vec shapes (rows = outputs, cols = row length) and a 7B-class square.
    static let shapes: [Shape] = [
        Shape(rows: 576, cols: 576, label: "attn q/o"),
        Shape(rows: 1536, cols: 576, label: "ffn gate/up"),
        Shape(rows: 576, cols: 1536, label: "ffn down"),
        Shape(rows: 49152, cols: 576, label: "output"),
        Shape(rows: 576, cols: 2048, label: "K-quant rows"),
        Shape(rows: 4096, cols: 4096, label: "4096²"),
    ]

    var types: [WeightType]
    var threadCounts: [Int]
    var minSeconds: Double
    var workingSetBytes: Int
    /// Progress lines (stderr).
    var log: (String) -> Void

    func run() -> Report {

        // Read bandwidth is measured before and after the mat-vecs; the better of the two counts,
        // so that a busy spell at either end of the run does not make the kernels look good.
        let probe = AlignedBuffer(bytes: workingSetBytes)
        probe.fillRandom()
        var bandwidth: [Int: Double] = [:]
        var bandwidthMedian: [Int: Double] = [:]
        func measureBandwidth(_ when: String) {
            for t in threadCounts {
                let timing = measureRead(probe, threads: t)
                let best = Double(probe.bytes) / timing.best / 1e9
                let median = Double(probe.bytes) / timing.median / 1e9
                log("read bandwidth \(when), \(t) thread\(t == 1 ? "" : "s"): "
                    + String(printf: "%.2f GB/s (median round %.2f)", best, median))
                bandwidth[t] = max(bandwidth[t] ?? 0, best)
                bandwidthMedian[t] = max(bandwidthMedian[t] ?? 0, median)
            }
        }
        measureBandwidth("before")

        var results: [Result] = []
        var inCache: [String: Double] = [:]
        for type in types {
            let buffer = AlignedBuffer(bytes: workingSetBytes)
            buffer.fillWeights(type: type.id)
            do {
                // 576 columns, or 768 for the K types (whole super-blocks of 256)
                let cols = cq_row_size(type.id, 576) > 0 ? 576 : 768
                let rowBytes = cq_row_size(type.id, Int64(cols))
                let timing = measureMatVec(type: type.id, weights: buffer, rowBytes: rowBytes, rows: 256, cols: cols,
                                           copies: 1, threads: 1)
                inCache[type.name] = Double(rowBytes * 256) / timing.best / 1e9
                log("\(type.name) 256x\(cols) in cache, 1 thread: " + String(printf: "%.2f GB/s", inCache[type.name]!))
            }
            for shape in Self.shapes {
                let rowBytes = cq_row_size(type.id, Int64(shape.cols))
                guard rowBytes > 0 else {
                    log("skipping \(type.name) \(shape.rows)x\(shape.cols): rows are not whole blocks of the type")
                    continue
                }
                let matrixBytes = rowBytes * shape.rows
                let copies = max(1, workingSetBytes / matrixBytes)
                if copies * matrixBytes > workingSetBytes {
                    log("skipping \(type.name) \(shape.rows)x\(shape.cols): one matrix exceeds the working set")
                    continue
                }
                for t in threadCounts {
                    let timing = measureMatVec(type: type.id, weights: buffer, rowBytes: rowBytes, rows: shape.rows,
                                               cols: shape.cols, copies: copies, threads: t)
                    let gbps = Double(matrixBytes) / timing.best / 1e9
                    let r = Result(type: type.name, shape: shape.label, rows: shape.rows, cols: shape.cols,
                                   matrixBytes: matrixBytes, threads: t, gbPerSecond: gbps,
                                   gbPerSecondMedian: Double(matrixBytes) / timing.median / 1e9,
                                   microsecondsPerMatVec: timing.best * 1e6,
                                   fractionOfReadBandwidth: .nan) // set once bandwidth is final
                    results.append(r)
                    log("\(type.name) \(shape.rows)x\(shape.cols), \(t) thread\(t == 1 ? "" : "s"): "
                        + String(printf: "%.2f GB/s (median round %.2f)", gbps, r.gbPerSecondMedian))
                }
            }
        }
        measureBandwidth("after")
        results = results.map { $0.with(readBandwidth: bandwidth[$0.threads] ?? .nan) }
        #if DEBUG
        let optimized = false
        #else
        let optimized = true
        #endif
        return Report(kernel: String(cString: cq_kernel_name()), optimizedBuild: optimized,
                      workingSetBytes: workingSetBytes,
                      readBandwidthGBPerSecond: Dictionary(uniqueKeysWithValues: bandwidth.map { (String($0.key), $0.value) }),
                      readBandwidthGBPerSecondMedian: Dictionary(uniqueKeysWithValues: bandwidthMedian.map { (String($0.key), $0.value) }),
                      results: results, inCacheGBPerSecond: inCache)
    }

    /// Seconds per unit of work over `rounds` timed rounds of at least `minSeconds / rounds`
    /// (and at least `minUnits` units) each: the best round and the median one. The best round
    /// is the figure reported, because on a shared machine other processes only ever slow a
    /// round down.
    struct Timing {
        let best: Double
        let median: Double
    }

    static let rounds = 8

    private func time(minUnits: Int, _ unit: (_ index: Int) -> Void) -> Timing {
        var perUnit: [Double] = []
        var index = 0
        for _ in 0..<Self.rounds {
            var count = 0
            let start = Self.now()
            var elapsed = 0.0
            repeat {
                unit(index)
                index += 1
                count += 1
                elapsed = Self.now() - start
            } while elapsed < minSeconds / Double(Self.rounds) || count < minUnits
            perUnit.append(elapsed / Double(count))
        }
        perUnit.sort()
        return Timing(best: perUnit[0], median: perUnit[perUnit.count / 2])
    }

    /// `threads` threads reading disjoint parts of the whole buffer.
    /// The engine's pool for one multi-threaded measurement, released (its workers joined) right
    /// after it, so that no idle worker spins beside a single-threaded measurement.
    private func withPool<T>(_ threads: Int, _ body: (ThreadPool?) -> T) -> T {
        guard threads > 1 else { return body(nil) }
        let pool = ThreadPool(threads: threads)
        precondition(pool.activeCount == threads, "cannot start \(threads) benchmark threads")
        return withExtendedLifetime(pool) { body(pool) }
    }

    /// Read bandwidth in GB/s (best round) with `threads` threads over a fresh buffer of
    /// `workingSetBytes`, as the kernel table measures it; for the model benchmark's bound.
    func readBandwidth(threads: Int) -> Double {
        let probe = AlignedBuffer(bytes: workingSetBytes)
        probe.fillRandom()
        return Double(probe.bytes) / measureRead(probe, threads: threads).best / 1e9
    }

    private func measureRead(_ buffer: AlignedBuffer, threads: Int) -> Timing {
        let job = ReadJob(base: UnsafeRawPointer(buffer.base), bytes: buffer.bytes, threads: threads)
        return withPool(threads) { pool in
            time(minUnits: 2) { _ in
                if let pool { pool.run { job.run(thread: $0) } } else { job.run(thread: 0) }
            }
        }
    }

    /// One mat-vec per unit, cycling through the copies of the matrix in `weights`.
    private func measureMatVec(type: Int32, weights: AlignedBuffer, rowBytes: Int, rows: Int, cols: Int,
                               copies: Int, threads: Int) -> Timing {
        let xType = cq_vec_dot_type(type)
        var x = [Float](repeating: 0, count: cols)
        var rng = SplitMix64(seed: 7)
        for i in 0..<cols { x[i] = Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }
        let xq = AlignedBuffer(bytes: max(64, cq_row_size(Int32(CQ_TYPE_F32), Int64(cols))))
        _ = cq_quantize_row(xType, x, xq.base, Int64(cols))
        let y = AlignedBuffer(bytes: max(64, rows * 4))
        let job = MatVecJob(type: type, weights: UnsafeRawPointer(weights.base), matrixBytes: rowBytes * rows,
                            rowBytes: rowBytes, xq: UnsafeRawPointer(xq.base),
                            y: y.base.assumingMemoryBound(to: Float.self), rows: rows, cols: cols, threads: threads)
        return withPool(threads) { pool in
            func pass(_ copy: Int) {
                if let pool { pool.run { job.run(thread: $0, copy: copy) } } else { job.run(thread: 0, copy: copy) }
            }
            for c in 0..<min(copies, 4) { pass(c) } // warm up code paths and the page tables
            // Rounds continue through the copies where the previous one stopped, so no copy is
            // read again before all others have been.
            return time(minUnits: min(copies, 64)) { pass(($0 + 4) % copies) }
        }
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// One mat-vec split into contiguous row ranges, one per thread.
private struct MatVecJob: @unchecked Sendable {
    let type: Int32
    let weights: UnsafeRawPointer
    let matrixBytes: Int
    let rowBytes: Int
    let xq: UnsafeRawPointer
    let y: UnsafeMutablePointer<Float>
    let rows: Int
    let cols: Int
    let threads: Int

    func run(thread: Int, copy: Int) {
        let begin = rows * thread / threads, end = rows * (thread + 1) / threads
        _ = cq_matvec(type, weights + copy * matrixBytes, rowBytes, xq, y, Int64(cols), Int64(begin), Int64(end))
    }
}

/// A buffer read in `threads` disjoint 64-byte-aligned parts.
private final class ReadJob: @unchecked Sendable {
    let base: UnsafeRawPointer
    let bytes: Int
    let threads: Int
    /// Where each thread leaves its checksum: one cache line per thread, so they share none.
    let sink: UnsafeMutablePointer<UInt64>

    init(base: UnsafeRawPointer, bytes: Int, threads: Int) {
        self.base = base
        self.bytes = bytes
        self.threads = threads
        sink = .allocate(capacity: threads * 8)
        sink.initialize(repeating: 0, count: threads * 8)
    }

    deinit { sink.deallocate() }

    func run(thread: Int) {
        let lines = bytes / 64
        let begin = lines * thread / threads, end = lines * (thread + 1) / threads
        sink[thread * 8] &+= cq_read_probe(base + begin * 64, (end - begin) * 64)
    }
}
