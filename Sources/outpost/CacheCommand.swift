import AnswerCache
import ArgumentParser
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Inference
import OutpostCore
import Synchronization

/// `outpost cache …`: local tools over a cache file. (`stats` and `invalidate` over the agent's
/// socket come with the local API.)
struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Answer cache tools.",
        subcommands: [CacheStats.self, CacheInvalidate.self, Bench.self, Check.self, CrashFill.self]
    )
}

/// Monotonic nanoseconds, cheap enough to bracket one fill.
private func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU time of the whole process (all threads), in seconds.
private func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

private func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    StandardStreams.out(try encoder.encode(value) + Data("\n".utf8))
}

/// The key of the n-th synthetic question (the bench and crash-fill share them).
private func syntheticKey(_ n: Int) -> CacheKey {
    CacheKey.derive(modelFingerprint: "outpost-cache-bench", chatTemplate: "chatml",
                    messages: [ChatMessage(role: "user", content: "synthetic question \(n)")],
                    sampling: SamplingParameters(), namespace: Query.defaultNamespace)
}

private func fresh(_ path: String) {
    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
}

extension Cache {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure fills made durable per second and fill/hit latency on a real SQLite file.",
            discussion: "Writes DIR/outpost-cache-bench.sqlite afresh. fills_per_s counts fills written to SQLite per second from the first fill to the end of the final flush; fill_p99_us is the caller's cost of one fill; hit_p99_us one memory-tier lookup.")

        @Option(help: "Directory for the benchmark's cache file.") var dir: String
        @Option(help: "Number of distinct answers to fill.") var entries = 100_000
        @Option(help: "Fills that trigger a flush (the cache's default unless given).") var batchSize: Int?
        @Option(help: "zstd level for stored answers (the cache's default unless given).") var compressionLevel: Int32?
        @Option(help: "Answers at least this long (bytes) are compressed (the cache's default unless given).")
        var compressionThreshold: Int?
        @Flag(help: "Print JSON.") var json = false

        struct Result: Encodable {
            let fills_per_s: Double
            let fill_p50_us: Double
            let fill_p99_us: Double
            let hit_p50_us: Double
            let hit_p99_us: Double
            let flushed: Int
            let fills_dropped: Int
            let flushes: Int
            let flush_latency_max_us: Int
            let elapsed_s: Double
            /// CPU time (all threads) from the first fill to the end of the final flush, per fill made durable.
            let cpu_us_per_fill: Double
            let entries: Int
            let db_bytes: Int
        }

        func run() throws {
            guard entries > 0 else { throw ValidationError("--entries must be positive") }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = URL(fileURLWithPath: dir).appendingPathComponent("outpost-cache-bench.sqlite").path
            fresh(path)
            var configuration = AnswerCache.Configuration(path: path)
            configuration.queueCapacity = max(configuration.queueCapacity, entries)
            configuration.memoryBudgetBytes = 1 << 30
            configuration.diskBudgetBytes = 16 << 30
            if let batchSize { configuration.batchSize = batchSize }
            if let compressionLevel { configuration.compressionLevel = compressionLevel }
            if let compressionThreshold { configuration.compressionThreshold = compressionThreshold }

            // Keys and answers are made before timing: realistic text of 100–1,500 bytes, some of
            // it over the compression threshold.
            let words = ["the", "gateway", "answers", "questions", "with", "a", "local", "model", "and", "keeps",
                         "them", "in", "cache", "temperature", "sensor", "reading", "is", "normal", "pump", "valve"]
            var rng = SplitMix64(seed: 42)
            let keys = (0..<entries).map(syntheticKey)
            let answers: [Answer] = (0..<min(entries, 1024)).map { _ in
                let count = 20 + Int(rng.next() % 280)
                let text = (0..<count).map { _ in words[Int(rng.next() % UInt64(words.count))] }.joined(separator: " ")
                return Answer(text: text, promptTokens: 30, completionTokens: count)
            }

            let cache = try AnswerCache(configuration: configuration)
            var fillNanos = [UInt64](repeating: 0, count: entries)
            let cpuStart = processCPUSeconds()
            let start = nowNanos()
            for i in 0..<entries {
                let t0 = nowNanos()
                cache.fill(keys[i], answer: answers[i % answers.count])
                fillNanos[i] = nowNanos() - t0
            }
            cache.flush()
            let elapsed = Double(nowNanos() - start) / 1e9
            let cpu = processCPUSeconds() - cpuStart
            let afterFill = cache.stats()

            var hitNanos = [UInt64](repeating: 0, count: entries)
            var misses = 0
            for i in 0..<entries {
                let t0 = nowNanos()
                let result = cache.lookup(keys[(i &* 7919) % entries])
                hitNanos[i] = nowNanos() - t0
                if case .fresh = result {} else { misses += 1 }
            }
            cache.close()
            if misses > 0 { StandardStreams.err("warning: \(misses) lookups were not fresh hits\n") }
            let dbBytes = ["", "-wal"].reduce(0) { total, suffix in
                total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int) ?? 0)
            }
            let result = Result(
                fills_per_s: (Double(afterFill.flushed) / elapsed).rounded(),
                fill_p50_us: percentile(fillNanos, 0.50), fill_p99_us: percentile(fillNanos, 0.99),
                hit_p50_us: percentile(hitNanos, 0.50), hit_p99_us: percentile(hitNanos, 0.99),
                flushed: afterFill.flushed, fills_dropped: afterFill.fillsDropped, flushes: afterFill.flushes,
                flush_latency_max_us: afterFill.flushLatencyMaxMicros, elapsed_s: elapsed,
                cpu_us_per_fill: (cpu / Double(max(1, afterFill.flushed)) * 1e8).rounded() / 100, entries: entries,
                db_bytes: dbBytes)
            if json {
                try printJSON(result)
            } else {
                print("""
                    fills made durable: \(result.flushed) in \(String(printf: "%.3f", elapsed)) s = \(Int(result.fills_per_s)) fills/s
                    fill latency: p50 \(result.fill_p50_us) µs, p99 \(result.fill_p99_us) µs
                    memory hit latency: p50 \(result.hit_p50_us) µs, p99 \(result.hit_p99_us) µs
                    flushes: \(result.flushes), slowest \(result.flush_latency_max_us) µs; dropped: \(result.fills_dropped)
                    database: \(result.db_bytes) bytes
                    """)
            }
        }

        private func percentile(_ nanos: [UInt64], _ p: Double) -> Double {
            let sorted = nanos.sorted()
            let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
            return (Double(sorted[max(0, index)]) / 10).rounded() / 100
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every *.sqlite cache file in a directory: integrity and counts. Changes nothing.")

        @Option(help: "Directory holding the cache file(s).") var dir: String
        @Flag(help: "Print JSON.") var json = false

        struct Result: Encodable {
            let ok: Bool
            let files: [CacheCheckReport]
            let errors: [String]
        }

        func run() throws {
            let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".sqlite") }.sorted()
            var reports: [CacheCheckReport] = []
            var errors: [String] = []
            for name in names {
                let path = URL(fileURLWithPath: dir).appendingPathComponent(name).path
                do { reports.append(try AnswerCache.check(path: path)) } catch { errors.append(error.message) }
            }
            if names.isEmpty { errors.append("no *.sqlite file in \(dir)") }
            let result = Result(ok: errors.isEmpty && reports.allSatisfy(\.ok), files: reports, errors: errors)
            if json {
                try printJSON(result)
            } else {
                for r in reports {
                    print("\(r.path): integrity \(r.integrity.joined(separator: "; ")), \(r.entries) entries, \(r.tombstones) tombstones, \(r.bytes) bytes in use")
                }
                for e in errors { print("error: \(e)") }
            }
            if !result.ok { throw ExitCode(1) }
        }
    }

    /// For the crash test: fills at full speed until killed, printing a line after everything
    /// it made durable. `flushed S` means fills 0…S are committed (less those invalidated);
    /// `invalidating-key S` / `invalidating-tag G` are printed before an invalidation starts and
    /// `invalidated-key S` / `invalidated-tag G` once it is committed.
    struct CrashFill: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crash-fill", abstract: "Fill until killed (crash test).", shouldDisplay: false)

        @Option var dir: String
        @Option var entries = Int.max

        func run() throws {
            let path = URL(fileURLWithPath: dir).appendingPathComponent("crash.sqlite").path
            let readings = Mutex<[UInt64]>([])
            var configuration = AnswerCache.Configuration(path: path)
            configuration.onDurable = { event in
                guard case .flushed(_, let newest?) = event else { return }
                let seq = readings.withLock { hlcs -> Int in
                    // Fills are stamped in order, so the readings are sorted.
                    var low = 0, high = hlcs.count
                    while low < high {
                        let mid = (low + high) / 2
                        if hlcs[mid] <= newest.rawValue { low = mid + 1 } else { high = mid }
                    }
                    return low - 1
                }
                writeLine("flushed \(seq)")
            }
            let cache = try AnswerCache(configuration: configuration)
            var i = 0
            while i < entries {
                let tags = ["group-\(i / 1000)"]
                let hlc = cache.clock.tick()
                // Recorded before the fill, so the flusher can always map the reading to a sequence number.
                readings.withLock { $0.append(hlc.rawValue) }
                switch cache.fill(syntheticKey(i), answer: Answer(text: "answer \(i)"), tags: tags, startedAt: hlc) {
                case .queued, .coalesced:
                    break
                case .dropped, .discarded, .closed:
                    // Queue full: retry this sequence number with a new reading.
                    readings.withLock { _ = $0.removeLast() }
                    usleep(100)
                    continue
                }
                // Each invalidation is announced before it starts and confirmed once durable, so a
                // reader knows which may have happened when the process is killed.
                if i % 1000 == 500, i >= 1000 {
                    writeLine("invalidating-key \(i - 300)")
                    try cache.invalidate(.key(syntheticKey(i - 300)))
                    writeLine("invalidated-key \(i - 300)")
                }
                if i % 1000 == 0, i >= 2000 {
                    writeLine("invalidating-tag \(i / 1000 - 2)")
                    try cache.invalidate(.tag("group-\(i / 1000 - 2)"))
                    writeLine("invalidated-tag \(i / 1000 - 2)")
                }
                i += 1
            }
            cache.close()
        }
    }
}

private func writeLine(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    bytes.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(1, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}
