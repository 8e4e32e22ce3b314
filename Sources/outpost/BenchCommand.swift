import ArgumentParser
import CQuants
import FoundationEssentials
import OutpostCore

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark the compute kernels (--kernels) or, with the inference engine, the model.",
        discussion: """
        --kernels measures mat-vec throughput per weight type at SmolLM2-135M's shapes and at \
        4096x4096, in GB/s of weight bytes read, beside the read bandwidth of this machine measured \
        the same way. Build with `swift build -c release` first; debug builds are not representative.
        """
    )

    @Flag(name: .long, help: "Benchmark the mat-vec kernels instead of the model.")
    var kernels = false

    @Flag(name: .long, help: "Print JSON on stdout.")
    var json = false

    @Flag(name: .customLong("shared-prefix"), help: "Benchmark prefix KV reuse: a second chat request with the same system prompt, evaluated fresh and reusing the first request's cache.")
    var sharedPrefix = false

    @Option(name: .long, help: "Threads: one count for the model benchmark (default: the online CPUs), comma-separated counts for --kernels (default: 1,2).")
    var threads: String?

    @Option(name: .long, help: "GGUF model file for the model benchmark (default: $OUTPOST_MODEL or the fetched default model).")
    var model: String?

    @Option(name: .customLong("prompt-tokens"), help: "Prompt tokens evaluated as one batch per repetition (model benchmark).")
    var promptTokens = 128

    @Option(name: .customLong("gen-tokens"), help: "Tokens decoded one at a time per repetition (model benchmark).")
    var genTokens = 128

    @Option(name: .long, help: "Repetitions of the model benchmark.")
    var reps = 5

    @Option(name: .long, help: "Comma-separated weight types for --kernels (default: every type the kernel path runs).")
    var types: String?

    @Option(name: .long, help: "Minimum seconds per measurement.")
    var minTime = 0.8

    @Option(name: .long, help: "MiB of weights (and of the read-bandwidth buffer) streamed per measurement; at least 256.")
    var workingSetMib = 512

    func run() async throws {
        if let error = cq_kernel_init_error() { throw CLIError(String(cString: error)) }
        guard kernels else { return try runModel() }
        let threadCounts = try (threads ?? "1,2").split(separator: ",").map { part -> Int in
            guard let t = Int(part.trimmingWhitespace()), (1...256).contains(t) else {
                throw CLIError("--threads takes thread counts like 1,2; '\(part)' is not one")
            }
            return t
        }
        let known = KernelBenchmark.allTypes
        let chosen = try (types ?? known.map(\.name).joined(separator: ",")).split(separator: ",").map { part -> KernelBenchmark.WeightType in
            let name = part.trimmingWhitespace().uppercased()
            guard let t = known.first(where: { $0.name.uppercased() == name }) else {
                throw CLIError("--types: unknown weight type '\(part)'; use one of \(known.map(\.name).joined(separator: ", "))")
            }
            return t
        }
        guard workingSetMib >= 256 else {
            throw CLIError("--working-set-mib must be at least 256 so that weights are streamed from memory, not cache")
        }
        guard minTime > 0 else { throw CLIError("--min-time must be positive") }
        guard #available(macOS 15.0, *) else { throw CLIError("bench --kernels needs macOS 15 or Linux") }

        let benchmark = KernelBenchmark(
            types: chosen, threadCounts: threadCounts, minSeconds: minTime, workingSetBytes: workingSetMib << 20,
            log: { StandardStreams.err("bench: \($0)\n") })
        let report = benchmark.run()
        if json {
            try JSONOutput.print(report)
        } else {
            print(Self.render(report))
        }
    }

    /// Prefill and decode throughput of the engine on a model.
    private func runModel() throws {
        var threadCount: Int?
        if let threads {
            guard let t = Int(threads.trimmingWhitespace()), (1...256).contains(t) else {
                throw CLIError("--threads takes one thread count for the model benchmark; '\(threads)' is not one")
            }
            threadCount = t
        }
        guard promptTokens > 0, genTokens > 0, reps > 0 else {
            throw CLIError("--prompt-tokens, --gen-tokens and --reps must be positive")
        }
        let benchmark = ModelBenchmark(
            modelPath: try DefaultPaths.modelPath(model), threads: threadCount, promptTokens: promptTokens,
            genTokens: genTokens, reps: reps,
            log: { StandardStreams.err("bench: \($0)\n") })
        if sharedPrefix {
            let r = try CLIError.catching { try benchmark.runSharedPrefix() }
            if json {
                try JSONOutput.print(r)
            } else {
                print("""
                    model:   \(r.model)
                    kernel:  \(r.kernel), \(r.threads) thread(s)
                    prompt:  \(r.promptTokens) tokens, \(r.sharedPrefixTokens) shared with the previous request (system prompt), \(r.evaluatedTokens) evaluated
                    """ + "\n" + String(printf: "prefill: fresh %.1f ms, reusing the prefix %.1f ms (medians of %d): %.1f ms saved (%.0f%%)\n",
                    r.freshPrefillSeconds.median * 1e3, r.reusedPrefillSeconds.median * 1e3, r.reps,
                    r.savedSeconds * 1e3, r.savedFraction * 100)
                    + "logits:  " + (r.identicalLogits ? "identical to a fresh evaluation" : "DIFFER from a fresh evaluation"))
            }
            return
        }
        let report = try CLIError.catching { try benchmark.run() }
        if json {
            try JSONOutput.print(report)
        } else {
            print("model:   \(report.model) " + String(printf: "(loaded in %.3f s)", report.loadSeconds))
            print("kernel:  \(report.kernel), \(report.threads) thread(s)")
            print(String(printf: """
                prefill: %d tokens, %.1f tok/s median (min %.1f, max %.1f)
                decode:  %d tokens, %.1f tok/s median (min %.1f, max %.1f)
                memory:  %.1f MB read per token, %.2f GB/s read bandwidth: bound %.1f tok/s, decode at %.0f%% of it
                peak RSS %.1f MiB (model file %.1f MiB, KV cache %.1f MiB)
                """,
                report.promptTokens, report.promptTokensPerS.median, report.promptTokensPerS.min, report.promptTokensPerS.max,
                report.genTokens, report.genTokensPerS.median, report.genTokensPerS.min, report.genTokensPerS.max,
                Double(report.bytesPerToken) / 1e6, report.readBandwidthGBPerS, report.bandwidthBoundTokensPerS,
                report.bandwidthFraction * 100,
                Double(report.peakRssBytes) / 1_048_576, Double(report.modelFileBytes) / 1_048_576,
                Double(report.kvCacheBytes) / 1_048_576))
        }
    }

    static func render(_ r: KernelBenchmark.Report) -> String {
        let counts = r.readBandwidthGBPerSecond.keys.compactMap(Int.init).sorted()
        var lines: [String] = []
        lines.append("kernel path: \(r.kernel)\(r.optimizedBuild ? "" : "  (DEBUG BUILD: figures not representative; use swift build -c release)")")
        lines.append("weights streamed from a \(r.workingSetBytes >> 20) MiB working set per measurement; "
            + "figures are the best of \(KernelBenchmark.rounds) timed rounds (--json also has the median)")
        lines.append("read bandwidth is the better of a measurement before and one after the mat-vecs")
        lines.append("read bandwidth: " + counts.map {
            String(printf: "%.2f GB/s with %d thread", r.readBandwidthGBPerSecond[String($0)] ?? .nan, $0) + ($0 == 1 ? "" : "s")
        }.joined(separator: ", "))
        let inCache = r.results.map(\.type).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
            .compactMap { t in r.inCacheGBPerSecond[t].map { "\(t) " + String(printf: "%.1f", $0) } }
        lines.append("in-cache rate, 1 thread, 256 x 576 (GB/s): " + inCache.joined(separator: ", "))
        lines.append("")
        var header = "type  shape          rows x cols     MiB   "
        for t in counts { header += "  \(t)T GB/s  %bw  µs/matvec" }
        lines.append(header)
        var seen = Set<String>()
        for res in r.results {
            let key = "\(res.type) \(res.rows) \(res.cols)"
            if !seen.insert(key).inserted { continue }
            var line = res.type.padded(to: 6)
                + res.shape.padded(to: 15)
                + "\(res.rows) x \(res.cols)".padded(to: 14)
                + String(printf: "%7.2f", Double(res.matrixBytes) / 1_048_576)
            for t in counts {
                if let m = r.results.first(where: { $0.type == res.type && $0.rows == res.rows && $0.cols == res.cols && $0.threads == t }) {
                    line += String(printf: "  %9.2f %4.0f%% %9.1f", m.gbPerSecond, m.fractionOfReadBandwidth * 100, m.microsecondsPerMatVec)
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
