import CQuants
import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore
import Inference

/// `outpost bench --model`: prompt (batched prefill) and decode (one token a step) throughput of
/// the engine on a model, over several repetitions, with the process's peak RSS.
struct ModelBenchmark {
    struct Stats: Codable {
        var min: Double
        var median: Double
        var max: Double

        init(_ values: [Double]) {
            let s = values.sorted()
            min = s.first ?? 0
            max = s.last ?? 0
            median = s.isEmpty ? 0 : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
        }
    }

    struct Report: Codable {
        var model: String
        var kernel: String
        var threads: Int
        var promptTokens: Int
        var genTokens: Int
        var reps: Int
        var loadSeconds: Double
        var promptTokensPerS: Stats
        var genTokensPerS: Stats
        var peakRssBytes: Int
        var modelFileBytes: Int
        var kvCacheBytes: Int
        /// Read bandwidth of this machine at the same thread count (GB/s, best round).
        var readBandwidthGBPerS: Double
        /// Bytes one decode step reads: the weights, plus the KV cache at the mean decode position.
        var bytesPerToken: Int
        /// readBandwidth / bytesPerToken: the decode rate memory would allow.
        var bandwidthBoundTokensPerS: Double
        /// Median decode rate as a fraction of that bound.
        var bandwidthFraction: Double

        enum CodingKeys: String, CodingKey {
            case model, kernel, threads, reps
            case promptTokens = "prompt_tokens"
            case genTokens = "gen_tokens"
            case loadSeconds = "load_seconds"
            case promptTokensPerS = "prompt_tokens_per_s"
            case genTokensPerS = "gen_tokens_per_s"
            case peakRssBytes = "peak_rss_bytes"
            case modelFileBytes = "model_file_bytes"
            case kvCacheBytes = "kv_cache_bytes"
            case readBandwidthGBPerS = "read_bandwidth_gb_s"
            case bytesPerToken = "bytes_per_token"
            case bandwidthBoundTokensPerS = "bandwidth_bound_tokens_per_s"
            case bandwidthFraction = "bandwidth_fraction"
        }
    }

    /// Text the prompt tokens are taken from (repeated as needed).
    static let promptText = """
        The maintenance log of the compressor station records the oil level, the filter state and the \
        temperature of each unit every morning. When a reading leaves its band, the gateway raises an \
        alert, the technician on call checks the unit, and the answer is written back to the log so \
        that the next shift knows what was done and why.
        """

    let modelPath: String
    let threads: Int?
    let promptTokens: Int
    let genTokens: Int
    let reps: Int
    let log: (String) -> Void

    func run() throws -> Report {
        let start = Date()
        let engine = try Engine(path: modelPath, threads: threads)
        let model = engine.model
        let loadSeconds = Date().timeIntervalSince(start)
        var prompt: [Int32] = []
        let piece = model.tokenizer.encode(Self.promptText)
        while prompt.count < promptTokens { prompt += piece }
        prompt = Array(prompt.prefix(promptTokens))

        let session = try engine.makeSession(contextLength: promptTokens + genTokens + 1)
        var promptRates: [Double] = [], genRates: [Double] = []
        // One untimed warm-up pass pages the weights in.
        _ = try session.evaluate(Array(prompt.prefix(8)))
        for rep in 0..<reps {
            session.reset()
            let t0 = DispatchTime.now().uptimeNanoseconds
            var logits = try session.evaluate(prompt)
            let t1 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<genTokens {
                var best = 0
                for i in 1..<logits.count where logits[i] > logits[best] { best = i }
                logits = try session.evaluate([Int32(best)])
            }
            let t2 = DispatchTime.now().uptimeNanoseconds
            promptRates.append(Double(promptTokens) / (Double(t1 - t0) / 1e9))
            genRates.append(Double(genTokens) / (Double(t2 - t1) / 1e9))
            log(String(printf: "rep %d: prompt %.1f tok/s, decode %.1f tok/s", rep + 1, promptRates.last!, genRates.last!))
        }
        let cfg = model.config
        // Peak RSS first: the bandwidth probe's buffer is not the engine's.
        let peakRSS = Self.peakRSS()
        var readBandwidth = Double.nan
        if #available(macOS 15.0, *) {
            readBandwidth = KernelBenchmark(types: [], threadCounts: [session.threadCount], minSeconds: 0.4,
                                            workingSetBytes: 256 << 20, log: { _ in }).readBandwidth(threads: session.threadCount)
        }
        // K and V rows (f16) of every layer up to the mean decode position.
        let meanPosition = Double(promptTokens) + Double(genTokens - 1) / 2 + 1
        let kvBytes = Int(meanPosition * Double(2 * cfg.layerCount * cfg.kvDimension * 2))
        let bytesPerToken = model.weightBytesPerToken + kvBytes
        let genStats = Stats(genRates)
        let bound = readBandwidth * 1e9 / Double(bytesPerToken)
        log(String(printf: "read bandwidth %.2f GB/s, %d bytes per token: bound %.1f tok/s", readBandwidth, bytesPerToken, bound))
        return Report(
            model: modelPath, kernel: String(cString: cq_kernel_name()), threads: session.threadCount,
            promptTokens: promptTokens, genTokens: genTokens, reps: reps, loadSeconds: loadSeconds,
            promptTokensPerS: Stats(promptRates), genTokensPerS: genStats,
            peakRssBytes: peakRSS, modelFileBytes: model.fileSize,
            kvCacheBytes: 2 * cfg.layerCount * session.contextLength * cfg.kvDimension * 2,
            readBandwidthGBPerS: readBandwidth, bytesPerToken: bytesPerToken, bandwidthBoundTokensPerS: bound,
            bandwidthFraction: genStats.median / bound)
    }

    /// `outpost bench --shared-prefix`: two chat requests with the same system prompt and
    /// different questions. The second is evaluated fresh (reset session) and with the session
    /// keeping the shared prefix from the first; the difference is what prefix reuse saves.
    struct SharedPrefixReport: Codable {
        var model: String
        var kernel: String
        var threads: Int
        var reps: Int
        var promptTokens: Int
        var sharedPrefixTokens: Int
        var evaluatedTokens: Int
        var freshPrefillSeconds: Stats
        var reusedPrefillSeconds: Stats
        var savedSeconds: Double
        var savedFraction: Double
        var identicalLogits: Bool

        enum CodingKeys: String, CodingKey {
            case model, kernel, threads, reps
            case promptTokens = "prompt_tokens"
            case sharedPrefixTokens = "shared_prefix_tokens"
            case evaluatedTokens = "evaluated_tokens"
            case freshPrefillSeconds = "fresh_prefill_seconds"
            case reusedPrefillSeconds = "reused_prefill_seconds"
            case savedSeconds = "saved_seconds"
            case savedFraction = "saved_fraction"
            case identicalLogits = "identical_logits"
        }
    }

    /// A gateway's system prompt, repeated by every request.
    static let systemPrompt = """
        You are the maintenance assistant of a compressor station gateway. Answer in one or two short \
        sentences. Use the station's units: bar for pressure, degrees Celsius for temperature, litres for \
        oil. When a reading is outside its band, say which band and what the technician on call should \
        check first. Never invent readings; if the log does not say, answer that the log does not say.
        """

    func runSharedPrefix() throws -> SharedPrefixReport {
        let engine = try Engine(path: modelPath, threads: threads)
        func prompt(_ question: String) throws -> [Int32] {
            try engine.promptTokens(for: [ChatTurn(role: "system", content: Self.systemPrompt),
                                          ChatTurn(role: "user", content: question)])
        }
        let first = try prompt("What was the oil level of unit 3 this morning?")
        let second = try prompt("Which filter state needs a technician to check the unit?")
        let session = try engine.makeSession(contextLength: first.count + second.count + 8)
        _ = try session.evaluate(Array(first.prefix(8))) // pages the weights in
        var fresh: [Double] = [], reused: [Double] = []
        var shared = 0
        var identical = true
        for rep in 0..<reps {
            session.reset()
            var t0 = DispatchTime.now().uptimeNanoseconds
            let freshLogits = try session.evaluate(second)
            fresh.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)

            session.reset()
            _ = try session.evaluate(first)
            t0 = DispatchTime.now().uptimeNanoseconds
            shared = session.reusePrefix(of: second)
            let reusedLogits = try session.evaluate(Array(second[shared...]))
            reused.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            identical = identical && freshLogits == reusedLogits
            log(String(printf: "rep %d: fresh %.1f ms, reusing %d tokens %.1f ms", rep + 1, fresh.last! * 1e3, shared,
                       reused.last! * 1e3))
        }
        let f = Stats(fresh), r = Stats(reused)
        return SharedPrefixReport(
            model: modelPath, kernel: String(cString: cq_kernel_name()), threads: session.threadCount, reps: reps,
            promptTokens: second.count, sharedPrefixTokens: shared, evaluatedTokens: second.count - shared,
            freshPrefillSeconds: f, reusedPrefillSeconds: r, savedSeconds: f.median - r.median,
            savedFraction: f.median > 0 ? (f.median - r.median) / f.median : 0, identicalLogits: identical)
    }

    /// Peak resident set size of this process, in bytes.
    static func peakRSS() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return usage.ru_maxrss
        #endif
    }
}
